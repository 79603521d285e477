/* SPDX-License-Identifier: Apache-2.0 */
/* m2mtls bench: shared pieces (see bench.h). */
#define _XOPEN_SOURCE 700 /* nftw */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <openssl/conf.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/store.h>
#include <openssl/x509v3.h>
#include <m2mtls/policy.h>
#include "bench.h"
#include "pki.h"
#include "tool.h"

/* ---- output ------------------------------------------------------------------ */

void bench_machine_init(bench_machine *m, const char *token)
{
    memset(m, 0, sizeof *m);
    m->cpus = sysconf(_SC_NPROCESSORS_ONLN);
    snprintf(m->openssl, sizeof m->openssl, "%s", OpenSSL_version(OPENSSL_VERSION));
    snprintf(m->token, sizeof m->token, "%s", token != NULL ? token : "none");
    snprintf(m->cpu, sizeof m->cpu, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon != NULL) {
            colon++;
            while (*colon == ' ' || *colon == '\t')
                colon++;
            colon[strcspn(colon, "\n")] = '\0';
            snprintf(m->cpu, sizeof m->cpu, "%s", colon);
            break;
        }
    }
    if (f != NULL)
        fclose(f);
}

bench_table *bench_table_new(const char *title)
{
    bench_table *t = calloc(1, sizeof *t);
    if (t == NULL) {
        fprintf(stderr, "m2mtls bench: out of memory\n");
        exit(1);
    }
    snprintf(t->title, sizeof t->title, "%s", title);
    return t;
}

void bench_table_free(bench_table *t)
{
    if (t != NULL)
        free(t->cells);
    free(t);
}

void bench_col(bench_table *t, const char *key, const char *head, ...)
{
    if (t->ncols >= BENCH_COLS)
        return;
    va_list ap;
    va_start(ap, head);
    t->key[t->ncols] = key;
    vsnprintf(t->head[t->ncols], sizeof t->head[0], head, ap);
    va_end(ap);
    t->ncols++;
}

int bench_row(bench_table *t)
{
    if (t->nrows == t->cap) {
        int cap = t->cap ? t->cap * 2 : 16;
        bench_cell *c = realloc(t->cells, (size_t)cap * BENCH_COLS * sizeof *c);
        if (c == NULL) {
            fprintf(stderr, "m2mtls bench: out of memory\n");
            exit(1);
        }
        t->cells = c;
        t->cap = cap;
    }
    memset(&t->cells[(size_t)t->nrows * BENCH_COLS], 0, BENCH_COLS * sizeof *t->cells);
    return t->nrows++;
}

static bench_cell *cell(bench_table *t, int row, int col)
{
    return &t->cells[(size_t)row * BENCH_COLS + (size_t)col];
}

void bench_str(bench_table *t, int row, int col, const char *s)
{
    bench_cell *c = cell(t, row, col);
    snprintf(c->text, sizeof c->text, "%s", s);
    c->is_num = 0;
}

void bench_num(bench_table *t, int row, int col, double v, const char *fmt)
{
    bench_cell *c = cell(t, row, col);
    /* -Wformat=2: the formats are this file's callers' literals */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(c->text, sizeof c->text, fmt, v);
#pragma GCC diagnostic pop
    c->is_num = 1;
    c->num = v;
}

static void csv_field(FILE *f, const char *s)
{
    if (strpbrk(s, ",\"\n") == NULL) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void print_text(FILE *f, const bench_machine *m, bench_table *t)
{
    fprintf(f, "machine: %ld CPUs (%s), %s, token: %s\n", m->cpus, m->cpu, m->openssl, m->token);
    fprintf(f, "%s\n", t->title);
    size_t w[BENCH_COLS];
    int right[BENCH_COLS]; /* figures right-aligned, words left */
    for (int c = 0; c < t->ncols; c++) {
        w[c] = strlen(t->head[c]);
        right[c] = 0;
        for (int r = 0; r < t->nrows; r++) {
            if (strlen(cell(t, r, c)->text) > w[c])
                w[c] = strlen(cell(t, r, c)->text);
            right[c] |= cell(t, r, c)->is_num;
        }
    }
    for (int c = 0; c < t->ncols; c++)
        fprintf(f, "%s%*s", c ? "  " : "", right[c] ? (int)w[c] : -(int)w[c], t->head[c]);
    fputc('\n', f);
    for (int c = 0; c < t->ncols; c++) {
        fprintf(f, "%s", c == 0 ? "" : "  ");
        for (size_t i = 0; i < w[c]; i++)
            fputc('-', f);
    }
    fputc('\n', f);
    for (int r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++)
            fprintf(f, "%s%*s", c ? "  " : "", right[c] ? (int)w[c] : -(int)w[c], cell(t, r, c)->text);
        fputc('\n', f);
    }
    if (t->note[0])
        fprintf(f, "%s\n", t->note);
}

void bench_print(FILE *f, const bench_machine *m, bench_table **t, int n, int format)
{
    if (format == BENCH_JSON) {
        fprintf(f, "{\"machine\": {\"cpus\": %ld, \"cpu\": ", m->cpus);
        tool_json_str(f, m->cpu);
        fprintf(f, ", \"openssl\": ");
        tool_json_str(f, m->openssl);
        fprintf(f, ", \"token\": ");
        tool_json_str(f, m->token);
        fprintf(f, "}, \"tables\": [");
        for (int i = 0; i < n; i++) {
            fprintf(f, "%s\n  {\"title\": ", i ? "," : "");
            tool_json_str(f, t[i]->title);
            if (t[i]->note[0]) {
                fprintf(f, ", \"note\": ");
                tool_json_str(f, t[i]->note);
            }
            fprintf(f, ", \"rows\": [");
            for (int r = 0; r < t[i]->nrows; r++) {
                fprintf(f, "%s\n    {", r ? "," : "");
                for (int c = 0; c < t[i]->ncols; c++) {
                    const bench_cell *x = cell(t[i], r, c);
                    fprintf(f, "%s\"%s\": ", c ? ", " : "", t[i]->key[c]);
                    if (x->is_num)
                        fprintf(f, "%.10g", x->num);
                    else if (x->text[0] == '\0')
                        fprintf(f, "null");
                    else
                        tool_json_str(f, x->text);
                }
                fprintf(f, "}");
            }
            fprintf(f, "]}");
        }
        fprintf(f, "\n]}\n");
        return;
    }
    for (int i = 0; i < n; i++) {
        if (format == BENCH_CSV) {
            fprintf(f, "# machine: %ld CPUs (%s), %s, token: %s\n# ", m->cpus, m->cpu, m->openssl, m->token);
            csv_field(f, t[i]->title);
            fputc('\n', f);
            for (int c = 0; c < t[i]->ncols; c++)
                fprintf(f, "%s%s", c ? "," : "", t[i]->key[c]);
            fputc('\n', f);
            for (int r = 0; r < t[i]->nrows; r++) {
                for (int c = 0; c < t[i]->ncols; c++) {
                    const bench_cell *x = cell(t[i], r, c);
                    if (c)
                        fputc(',', f);
                    if (x->is_num)
                        fprintf(f, "%.10g", x->num);
                    else
                        csv_field(f, x->text);
                }
                fputc('\n', f);
            }
        } else {
            print_text(f, m, t[i]);
        }
        if (i + 1 < n)
            fputc('\n', f);
    }
}

/* ---- measuring ---------------------------------------------------------------- */

double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define MAX_THREADS 256
typedef struct worker {
    const bench_op *op;
    pthread_barrier_t *ready;
    atomic_int *stop;
    long count;
    double cpu;     /* CPU time of the measured loop (user + system) */
    int failed;
    char err[256];
} worker;

static int cpu_clock; /* bench_use_cpu_clock */

void bench_use_cpu_clock(int on)
{
    cpu_clock = on;
}

static double thread_cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void *work(void *arg)
{
    worker *w = arg;
    void *state = w->op->start(w->op->arg, w->err, sizeof w->err);
    if (state == NULL)
        w->failed = 1;
    pthread_barrier_wait(w->ready);
    double c0 = thread_cpu();
    while (!w->failed && !atomic_load_explicit(w->stop, memory_order_relaxed)) {
        if (!w->op->step(state, w->err, sizeof w->err)) {
            w->failed = 1;
            break;
        }
        w->count++;
    }
    w->cpu = thread_cpu() - c0;
    if (state != NULL)
        w->op->stop(state);
    return NULL;
}

double bench_rate(const bench_op *op, int threads, double seconds, char *err, size_t len)
{
    if (threads < 1 || threads > MAX_THREADS) {
        snprintf(err, len, "threads: 1 to %d", MAX_THREADS);
        return -1;
    }
    pthread_t tid[MAX_THREADS];
    worker w[MAX_THREADS];
    pthread_barrier_t ready;
    atomic_int stop = 0;
    pthread_barrier_init(&ready, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++) {
        w[i] = (worker){ .op = op, .ready = &ready, .stop = &stop };
        if (pthread_create(&tid[i], NULL, work, &w[i]) != 0) {
            /* cannot happen in practice; keep the barrier consistent */
            fprintf(stderr, "m2mtls bench: pthread_create failed\n");
            exit(1);
        }
    }
    pthread_barrier_wait(&ready);
    double t0 = bench_now();
    struct timespec slice = { 0, 2000000 };
    while (bench_now() - t0 < seconds)
        nanosleep(&slice, NULL);
    atomic_store(&stop, 1);
    double t1 = bench_now();
    long total = 0;
    double cpu = 0;
    int failed = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
        if (w[i].failed && !failed) {
            failed = 1;
            snprintf(err, len, "%s", w[i].err);
        }
        total += w[i].count;
        cpu += w[i].cpu;
    }
    pthread_barrier_destroy(&ready);
    if (failed)
        return -1;
    /* CPU clock: what the threads would do with a CPU each, whatever else
     * the machine runs (a thread waiting for a lock costs no CPU time) */
    if (cpu_clock)
        return cpu > 0 ? (double)total * threads / cpu : 0;
    return (double)total / (t1 - t0);
}

#define ROUNDS_MAX 32
int bench_compare(const bench_op *ops, int nops, int threads, double seconds, double *out, char *err, size_t len)
{
    int rounds = (int)(seconds / 0.25);
    if (rounds < 1)
        rounds = 1;
    if (rounds > ROUNDS_MAX)
        rounds = ROUNDS_MAX;
    double slice = seconds / rounds;
    double (*r)[ROUNDS_MAX] = calloc((size_t)nops, sizeof *r);
    if (r == NULL)
        return 0;
    for (int k = 0; k < rounds; k++)
        for (int v = 0; v < nops; v++) {
            /* the order turns each round, so no variant always runs first */
            int i = (v + k) % nops;
            if ((r[i][k] = bench_rate(&ops[i], threads, slice, err, len)) < 0) {
                free(r);
                return 0;
            }
        }
    for (int v = 0; v < nops; v++)
        out[v] = bench_median(r[v], rounds);
    free(r);
    return 1;
}

/* ---- the throw-away token ------------------------------------------------------- */

const char *bench_path(const char *dir, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", dir, name);
    return buf;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p) != 0 && errno != ENOENT;
}

int bench_rmtree(const char *dir)
{
    return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0;
}

static int write_text(const char *file, const char *text, int mode)
{
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, mode);
    size_t n = strlen(text);
    int ok = fd >= 0 && write(fd, text, n) == (ssize_t)n;
    if (fd >= 0)
        close(fd);
    return ok;
}

const char *bench_pkcs11_provider(const char *given, char *buf, size_t len)
{
    const char *cache = getenv("M2MTLS_PKCS11_PROVIDER_CACHE");
    if (given != NULL)
        return given;
    snprintf(buf, len, "%s/pkcs11.so", cache != NULL && *cache ? cache : "/var/cache/m2mtls/pkcs11-provider");
    return buf;
}

EVP_PKEY *bench_load_key(OSSL_LIB_CTX *ctx, const char *uri, char *why, size_t len)
{
    OSSL_STORE_CTX *st = OSSL_STORE_open_ex(uri, ctx, NULL, NULL, NULL, NULL, NULL, NULL);
    EVP_PKEY *k = NULL;
    while (st != NULL && k == NULL && !OSSL_STORE_eof(st)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(st);
        if (info == NULL)
            break;
        if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            k = OSSL_STORE_INFO_get1_PKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(st);
    if (k == NULL) {
        char buf[256];
        snprintf(why, len, "%s: %s", uri, tool_ssl_error(buf, sizeof buf));
    }
    ERR_clear_error();
    return k;
}

/* A library context of its own from the openssl.cnf text BODY (written to
 * DIR/NAME). NULL with WHY. */
static OSSL_LIB_CTX *own_libctx(const char *dir, const char *name, const char *body, char *why, size_t len)
{
    char p[4200], buf[256];
    OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();
    if (ctx == NULL || !write_text(bench_path(dir, name, p, sizeof p), body, 0644)
        || !OSSL_LIB_CTX_load_config(ctx, p)) {
        snprintf(why, len, "%.300s: %s", p, tool_ssl_error(buf, sizeof buf));
        OSSL_LIB_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

#define CNF_HEAD "openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n[provider_sect]\n" \
                 "default = default_sect\n%s = prov_sect\n[default_sect]\nactivate = 1\n[prov_sect]\nmodule = %s\n" \
                 "pkcs11-module-path = %s\npkcs11-module-token-pin = file:%s/pin\n"

/* pkcs11-provider in a context of its own, when its module is there. Its
 * own defaults, session key cache included; no-deinit: the module is shared
 * with the rest of the process. */
static void p11prov_setup(bench_env *e, const char *given)
{
    char path[4200], conf[16384], ver[256] = "", vfile[4300];
    const char *so = bench_pkcs11_provider(given, path, sizeof path);
    if (access(so, R_OK) != 0) {
        snprintf(e->p11prov_why, sizeof e->p11prov_why,
                 "absent (%s: %s; tools/bench/get-pkcs11-provider.sh fetches it, or --pkcs11-provider PATH)", so,
                 strerror(errno));
        return;
    }
    snprintf(conf, sizeof conf, CNF_HEAD "pkcs11-module-quirks = no-deinit\nactivate = 1\n", "pkcs11", so, e->module,
             e->dir);
    char why[512];
    if ((e->p11prov = own_libctx(e->dir, "openssl-p11prov.cnf", conf, why, sizeof why)) == NULL) {
        snprintf(e->p11prov_why, sizeof e->p11prov_why, "cannot load %s: %s", so, why);
        return;
    }
    /* the version the fetch script wrote next to the module, else the path */
    snprintf(vfile, sizeof vfile, "%s", so);
    char *slash = strrchr(vfile, '/');
    FILE *f = NULL;
    if (slash != NULL) {
        snprintf(slash + 1, sizeof vfile - (size_t)(slash + 1 - vfile), "VERSION");
        f = fopen(vfile, "r");
    }
    if (f != NULL && fgets(ver, sizeof ver, f) != NULL)
        ver[strcspn(ver, "\n")] = '\0';
    if (f != NULL)
        fclose(f);
    snprintf(e->p11prov_desc, sizeof e->p11prov_desc, "%s", ver[0] ? ver : so);
}

int bench_env_setup(bench_env *e, const char *module, const char *provider, const char *pkcs11_provider)
{
    char p[4200], conf[16384], why[256];
    memset(e, 0, sizeof *e);
    snprintf(e->module, sizeof e->module, "%s", p11_default_module(module));
    snprintf(e->provider, sizeof e->provider, "%s", tool_find_provider(provider));
    if (access(e->provider, R_OK) != 0 || access(e->module, R_OK) != 0) {
        int prov = access(e->provider, R_OK) != 0;
        fprintf(stderr, "m2mtls bench: %s: %s (%s)\n", prov ? e->provider : e->module, strerror(errno),
                prov ? "give --provider PATH to m2mtls.so" : "install softhsm2 or give --module");
        return 0;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(e->dir, sizeof e->dir, "%s/m2mtls-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(e->dir) == NULL) {
        fprintf(stderr, "m2mtls bench: cannot make a temporary directory: %s\n", strerror(errno));
        return 0;
    }
    e->made = 1;
    snprintf(conf, sizeof conf, "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n",
             e->dir);
    if (mkdir(bench_path(e->dir, "tokens", p, sizeof p), 0700) != 0
        || !write_text(bench_path(e->dir, "softhsm2.conf", p, sizeof p), conf, 0600)
        || !write_text(bench_path(e->dir, "pin", p, sizeof p), BENCH_PIN "\n", 0600)) {
        fprintf(stderr, "m2mtls bench: cannot write in %s: %s\n", e->dir, strerror(errno));
        return 0;
    }
    setenv("SOFTHSM2_CONF", bench_path(e->dir, "softhsm2.conf", p, sizeof p), 1);
    p11 m;
    char info[256] = "";
    if (!p11_open(&m, e->module) || !p11_module_info(&m, info, sizeof info)
        || !p11_init_token(&m, BENCH_TOKEN, "bench-so-pin", BENCH_PIN, &e->slot)
        || !p11_generate_p256(&m, e->slot, BENCH_PIN, "ec", (const unsigned char *)"\x01", 1)
        || !p11_generate_rsa2048(&m, e->slot, BENCH_PIN, "rsa", (const unsigned char *)"\x02", 1)) {
        fprintf(stderr, "m2mtls bench: %s (module %s)\n", m.error, e->module);
        p11_close(&m);
        return 0;
    }
    p11_close(&m);
    snprintf(e->token_desc, sizeof e->token_desc, "%s, %s", info, e->module);

    snprintf(conf, sizeof conf, CNF_HEAD "activate = 1\n", "m2mtls", e->provider, e->module, e->dir);
    if (!write_text(bench_path(e->dir, "openssl.cnf", p, sizeof p), conf, 0644))
        return 0;
    if (!OSSL_LIB_CTX_load_config(NULL, p)) {
        fprintf(stderr, "m2mtls bench: cannot load the provider %s: %s\n", e->provider,
                tool_ssl_error(why, sizeof why));
        return 0;
    }
    snprintf(conf, sizeof conf, CNF_HEAD "pkcs11-module-cache-keys = false\nactivate = 1\n", "m2mtls", e->provider,
             e->module, e->dir);
    if ((e->nocache = own_libctx(e->dir, "openssl-nocache.cnf", conf, why, sizeof why)) == NULL) {
        fprintf(stderr, "m2mtls bench: cannot load the provider %s: %s\n", e->provider, why);
        return 0;
    }
    p11prov_setup(e, pkcs11_provider);
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    int ok = ec != NULL && rsa != NULL
             && tool_write_pem(bench_path(e->dir, "ec.key.pem", e->ec_file, sizeof e->ec_file), NULL, ec)
             && tool_write_pem(bench_path(e->dir, "rsa.key.pem", e->rsa_file, sizeof e->rsa_file), NULL, rsa);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
    if (!ok)
        fprintf(stderr, "m2mtls bench: cannot make the software keys: %s\n", tool_ssl_error(why, sizeof why));
    return ok;
}

void bench_env_cleanup(bench_env *e)
{
    if (e->made)
        bench_rmtree(e->dir);
    e->made = 0;
}

/* ---- certificates ------------------------------------------------------------------ */

/* ---- handshakes ------------------------------------------------------------------ */

const char *const bench_proto_name[BENCH_PROTOS] = { "TLS 1.2 ECDHE-ECDSA-AES128-SHA256", "TLS 1.3",
                                                     "DTLS 1.2 ECDHE-ECDSA-AES128-CCM8" };

SSL_CTX *bench_ssl_ctx(OSSL_LIB_CTX *libctx, int proto, int server, X509 *cert, EVP_PKEY *key, X509 *root,
                       m2mtls_policy *policy, int resume)
{
    const SSL_METHOD *meth = proto == BENCH_DTLS12 ? (server ? DTLS_server_method() : DTLS_client_method())
                                                   : (server ? TLS_server_method() : TLS_client_method());
    SSL_CTX *ctx = SSL_CTX_new_ex(libctx, NULL, meth);
    int v = proto == BENCH_TLS12 ? TLS1_2_VERSION : proto == BENCH_TLS13 ? TLS1_3_VERSION : DTLS1_2_VERSION;
    int ok = ctx != NULL && m2mtls_ctx_apply_ts0003_profile(ctx) && SSL_CTX_set_min_proto_version(ctx, v)
             && SSL_CTX_set_max_proto_version(ctx, v) && SSL_CTX_use_certificate(ctx, cert)
             && SSL_CTX_use_PrivateKey(ctx, key);
    if (!ok)
        goto fail;
    /* Without it, libssl would build its own chain from the verify store on
     * every handshake in the plain variant only: work that is not verification. */
    SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
    if (resume) {
        SSL_CTX_set_session_cache_mode(ctx, server ? SSL_SESS_CACHE_SERVER : SSL_SESS_CACHE_CLIENT);
        SSL_CTX_set_num_tickets(ctx, 1);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(ctx, 0);
    }
    if (policy != NULL) {
        if (!m2mtls_ctx_install(ctx, policy)) {
            fprintf(stderr, "m2mtls bench: %s\n", m2mtls_last_error());
            SSL_CTX_free(ctx);
            return NULL;
        }
        return ctx;
    }
    if (!X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), root))
        goto fail;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    if (server && !SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"bench", 5))
        goto fail;
    return ctx;
fail:;
    char why[256];
    fprintf(stderr, "m2mtls bench: SSL_CTX: %s\n", tool_ssl_error(why, sizeof why));
    SSL_CTX_free(ctx);
    return NULL;
}

int bench_link_open(bench_link *l, int dtls, char *err, size_t len)
{
    memset(l, 0, sizeof *l);
    l->dtls = dtls;
    l->fd[0] = l->fd[1] = -1;
    if (!dtls)
        return 1;
    struct sockaddr_in a[2];
    for (int i = 0; i < 2; i++) {
        socklen_t n = sizeof a[i];
        memset(&a[i], 0, sizeof a[i]);
        a[i].sin_family = AF_INET;
        a[i].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if ((l->fd[i] = socket(AF_INET, SOCK_DGRAM, 0)) < 0 || bind(l->fd[i], (struct sockaddr *)&a[i], sizeof a[i]) != 0
            || getsockname(l->fd[i], (struct sockaddr *)&a[i], &n) != 0) {
            snprintf(err, len, "UDP socket on 127.0.0.1: %s", strerror(errno));
            bench_link_close(l);
            return 0;
        }
    }
    for (int i = 0; i < 2; i++) {
        if (connect(l->fd[i], (struct sockaddr *)&a[1 - i], sizeof a[1 - i]) != 0 || !BIO_socket_nbio(l->fd[i], 1)
            || (l->addr[i] = BIO_ADDR_new()) == NULL
            || !BIO_ADDR_rawmake(l->addr[i], AF_INET, &a[i].sin_addr, sizeof a[i].sin_addr, a[i].sin_port)) {
            snprintf(err, len, "UDP socket on 127.0.0.1: %s", strerror(errno));
            bench_link_close(l);
            return 0;
        }
    }
    return 1;
}

void bench_link_close(bench_link *l)
{
    for (int i = 0; i < 2; i++) {
        if (l->fd[i] >= 0)
            close(l->fd[i]);
        BIO_ADDR_free(l->addr[i]);
        l->fd[i] = -1;
        l->addr[i] = NULL;
    }
}

static void ssl_reason(char *err, size_t len, const char *what)
{
    char buf[256];
    snprintf(err, len, "%s: %s", what, tool_ssl_error(buf, sizeof buf));
}

int bench_handshake(SSL_CTX *sctx, SSL_CTX *cctx, bench_link *l, const char *peer, SSL_SESSION **sess, char *err,
                    size_t len)
{
    SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
    int ok = 0;
    if (s == NULL || c == NULL) {
        ssl_reason(err, len, "SSL_new");
        goto out;
    }
    if (l->dtls) {
        char junk[2048];
        for (int i = 0; i < 2; i++) /* nothing left over from the last one */
            while (recv(l->fd[i], junk, sizeof junk, 0) > 0)
                ;
        BIO *sb = BIO_new_dgram(l->fd[0], BIO_NOCLOSE), *cb = BIO_new_dgram(l->fd[1], BIO_NOCLOSE);
        if (sb == NULL || cb == NULL) {
            BIO_free(sb);
            BIO_free(cb);
            ssl_reason(err, len, "BIO_new_dgram");
            goto out;
        }
        BIO_ctrl_set_connected(sb, l->addr[1]);
        BIO_ctrl_set_connected(cb, l->addr[0]);
        SSL_set_bio(s, sb, sb);
        SSL_set_bio(c, cb, cb);
    } else {
        BIO *sb = NULL, *cb = NULL;
        if (!BIO_new_bio_pair(&sb, 0, &cb, 0)) {
            ssl_reason(err, len, "BIO_new_bio_pair");
            goto out;
        }
        SSL_set_bio(s, sb, sb);
        SSL_set_bio(c, cb, cb);
    }
    SSL_set_accept_state(s);
    SSL_set_connect_state(c);
    if (peer != NULL && !m2mtls_ssl_set_peer(c, peer)) {
        snprintf(err, len, "m2mtls_ssl_set_peer: %s", m2mtls_last_error());
        goto out;
    }
    int resuming = sess != NULL && *sess != NULL;
    if (resuming && !SSL_set_session(c, *sess)) {
        ssl_reason(err, len, "SSL_set_session");
        goto out;
    }
    int sd = 0, cd = 0;
    double deadline = bench_now() + 5;
    for (long i = 0; !(sd && cd); i++) {
        if (!cd) {
            int r = SSL_do_handshake(c);
            if (r == 1)
                cd = 1;
            else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ) {
                const char *why = peer != NULL ? m2mtls_ssl_reject_reason(c) : NULL;
                if (why != NULL)
                    snprintf(err, len, "client: %s", why);
                else
                    ssl_reason(err, len, "client handshake");
                goto out;
            }
        }
        if (!sd) {
            int r = SSL_do_handshake(s);
            if (r == 1)
                sd = 1;
            else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ) {
                const char *why = peer != NULL ? m2mtls_ssl_reject_reason(s) : NULL;
                if (why != NULL)
                    snprintf(err, len, "server: %s", why);
                else
                    ssl_reason(err, len, "server handshake");
                goto out;
            }
        }
        if ((i & 255) == 255 && bench_now() > deadline) {
            snprintf(err, len, "handshake timed out");
            goto out;
        }
    }
    if (SSL_session_reused(c) != resuming || SSL_session_reused(s) != resuming) {
        const char *why = peer == NULL ? NULL
                          : m2mtls_ssl_reject_reason(s) ? m2mtls_ssl_reject_reason(s) : m2mtls_ssl_reject_reason(c);
        snprintf(err, len, "%s (%s verifier)%s%s",
                 resuming ? "the session was not resumed" : "a full handshake resumed a session",
                 peer != NULL ? "m2mtls" : "plain", why ? ": " : "", why ? why : "");
        goto out;
    }
    if (peer != NULL && (m2mtls_ssl_peer_id(s) == NULL || m2mtls_ssl_peer_id(c) == NULL)) {
        const char *why = m2mtls_ssl_reject_reason(s) ? m2mtls_ssl_reject_reason(s) : m2mtls_ssl_reject_reason(c);
        snprintf(err, len, "%s handshake without the identity label%s%s", resuming ? "resumed" : "full",
                 why ? ": " : "", why ? why : "");
        goto out;
    }
    /* Keep the session: the first one, and in TLS 1.3 the newest ticket each
     * time (a TLS 1.3 client uses a ticket once: OpenSSL makes a resumed
     * session non-resumable, as RFC 8446 C.4 recommends). */
    if (sess != NULL && (*sess == NULL || SSL_version(c) == TLS1_3_VERSION)) {
        if (SSL_version(c) == TLS1_3_VERSION) { /* the ticket comes after the handshake */
            unsigned char b;
            int r = SSL_read(c, &b, 1);
            if (r <= 0 && SSL_get_error(c, r) != SSL_ERROR_WANT_READ) {
                ssl_reason(err, len, "reading the session ticket");
                goto out;
            }
        }
        SSL_SESSION *got = SSL_get1_session(c);
        if (got == NULL || !SSL_SESSION_is_resumable(got)) {
            SSL_SESSION_free(got);
            snprintf(err, len, "the server gave no resumable session");
            goto out;
        }
        SSL_SESSION_free(*sess);
        *sess = got;
    }
    if (sess != NULL) { /* close_notify: freed without it, a TLS 1.2 session is no longer resumable */
        SSL_shutdown(c);
        SSL_shutdown(s);
    }
    ok = 1;
out:
    SSL_free(s);
    SSL_free(c);
    ERR_clear_error();
    return ok;
}
