/* SPDX-License-Identifier: Apache-2.0 */
/* m2mtls bench policy: what a big policy costs.
 *  - Load time and peak memory of a policy of N `peer` lines (10,000 /
 *    100,000 / 1,000,000, or --peers N), each size loaded in a forked child
 *    of its own (VmHWM of the child), so sizes do not pollute each other.
 *  - The verifier's cost per full mutual handshake at each size, the same
 *    certificates (ECDSA P-256 leaves under one root) in memory: plain
 *    SSL_VERIFY_PEER versus m2mtls_ctx_install with the N-peer policy on the
 *    server, TLS 1.2 and TLS 1.3, client = peer N/2 (a real look-up).
 *    Wall clock: the variants alternate in short rounds, median round (in
 *    the same child). Instructions, when valgrind is installed: this
 *    command runs itself under callgrind (--instr-atstart=no, so loading the
 *    policy runs uninstrumented) and counts a fixed number of handshakes of
 *    each variant; instruction counts do not depend on what else the
 *    machine does. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <m2mtls/policy.h>
#include "bench.h"
#include "pki.h"
#include "tool.h"
extern char **environ;

#define SERVER_ID   "/in-cse"
#define SERVER_FQDN "in-cse.sp.example.com"

typedef struct pki {
    X509 *root, *server, *client;
    EVP_PKEY *server_key, *client_key;
} pki;

static void pki_free(pki *k)
{
    X509_free(k->root);
    X509_free(k->server);
    X509_free(k->client);
    EVP_PKEY_free(k->server_key);
    EVP_PKEY_free(k->client_key);
}

static long status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            v = strtol(line + n + 1, NULL, 10);
            break;
        }
    if (f != NULL)
        fclose(f);
    return v;
}

/* The files of one size in DIR: root.pem, server.{pem,key}, client.{pem,key}
 * (peer N/2 of the policy), server.policy (N peers), client.policy. */
static int write_size(const char *dir, size_t peers, pki *k)
{
    char p[4200], id[64], san[80];
    EVP_PKEY *root_key = EVP_EC_gen("P-256");
    snprintf(id, sizeof id, "//sp.example.com/CSE-1/C%08zu", peers / 2);
    snprintf(san, sizeof san, "URI:%s", id);
    k->server_key = EVP_EC_gen("P-256");
    k->client_key = EVP_EC_gen("P-256");
    int ok = root_key && k->server_key && k->client_key
             && (k->root = tool_issue("bench root", root_key, NULL, NULL, NULL)) != NULL
             && (k->server = tool_issue("in-cse", k->server_key, k->root, root_key, "DNS:" SERVER_FQDN)) != NULL
             && (k->client = tool_issue("client", k->client_key, k->root, root_key, san)) != NULL
             && tool_write_pem(bench_path(dir, "root.pem", p, sizeof p), k->root, NULL)
             && tool_write_pem(bench_path(dir, "server.pem", p, sizeof p), k->server, NULL)
             && tool_write_pem(bench_path(dir, "server.key", p, sizeof p), NULL, k->server_key)
             && tool_write_pem(bench_path(dir, "client.pem", p, sizeof p), k->client, NULL)
             && tool_write_pem(bench_path(dir, "client.key", p, sizeof p), NULL, k->client_key);
    EVP_PKEY_free(root_key);
    if (!ok)
        return 0;
    FILE *f = fopen(bench_path(dir, "server.policy", p, sizeof p), "w");
    if (f == NULL)
        return 0;
    fprintf(f, "local-id %s\ncert server.pem\nkey server.key\nanchor root root.pem\n", SERVER_ID);
    for (size_t i = 0; i < peers; i++)
        fprintf(f, "peer //sp.example.com/CSE-1/C%08zu uri://sp.example.com/CSE-1/C%08zu root\n", i, i);
    if (fclose(f) != 0)
        return 0;
    f = fopen(bench_path(dir, "client.policy", p, sizeof p), "w");
    if (f == NULL)
        return 0;
    fprintf(f, "local-id %s\ncert client.pem\nkey client.key\nanchor root root.pem\npeer %s dns:%s root\n", id,
            SERVER_ID, SERVER_FQDN);
    return fclose(f) == 0;
}

/* The four contexts of one protocol: [0] plain server, [1] plain client,
 * [2] m2mtls server, [3] m2mtls client. */
static int make_ctxs(const pki *k, int proto, m2mtls_policy *sp, m2mtls_policy *cp, SSL_CTX *ctx[4])
{
    ctx[0] = bench_ssl_ctx(NULL, proto, 1, k->server, k->server_key, k->root, NULL, 0);
    ctx[1] = bench_ssl_ctx(NULL, proto, 0, k->client, k->client_key, k->root, NULL, 0);
    ctx[2] = bench_ssl_ctx(NULL, proto, 1, k->server, k->server_key, k->root, sp, 0);
    ctx[3] = bench_ssl_ctx(NULL, proto, 0, k->client, k->client_key, k->root, cp, 0);
    return ctx[0] && ctx[1] && ctx[2] && ctx[3];
}

static void free_ctxs(SSL_CTX *ctx[4])
{
    for (int i = 0; i < 4; i++)
        SSL_CTX_free(ctx[i]);
}

typedef struct hs_pair {
    SSL_CTX *s, *c;
    const char *peer;
} hs_pair;

static void *pair_start(void *arg, char *err, size_t len)
{
    (void)err;
    (void)len;
    return arg;
}

static int pair_step(void *state, char *err, size_t len)
{
    hs_pair *h = state;
    bench_link l = { 0 };
    return bench_handshake(h->s, h->c, &l, h->peer, NULL, err, len);
}

static void pair_stop(void *state)
{
    (void)state;
}

/* What a child measured. */
typedef struct size_result {
    int ok;
    double load_s;
    long rss_before_kib, hwm_kib, rss_after_kib;
    double rate[2][2];     /* [tls13][m2mtls] handshakes/s */
    char err[256];
} size_result;

static void load_child(const char *dir, const pki *k, double seconds, size_result *r)
{
    char p[4200], cpath[4200];
    r->rss_before_kib = status_kib("VmRSS");
    double t0 = bench_now();
    m2mtls_policy *sp = m2mtls_policy_load(bench_path(dir, "server.policy", p, sizeof p));
    r->load_s = bench_now() - t0;
    r->hwm_kib = status_kib("VmHWM");
    r->rss_after_kib = status_kib("VmRSS");
    m2mtls_policy *cp = m2mtls_policy_load(bench_path(dir, "client.policy", cpath, sizeof cpath));
    if (sp == NULL || cp == NULL) {
        snprintf(r->err, sizeof r->err, "%s", m2mtls_last_error());
        return;
    }
    for (int v13 = 0; v13 < 2; v13++) {
        SSL_CTX *ctx[4];
        if (!make_ctxs(k, v13 ? BENCH_TLS13 : BENCH_TLS12, sp, cp, ctx)) {
            snprintf(r->err, sizeof r->err, "cannot make the TLS contexts");
            free_ctxs(ctx);
            return;
        }
        hs_pair pairs[2] = { { ctx[0], ctx[1], NULL }, { ctx[2], ctx[3], SERVER_ID } };
        bench_op ops[2] = { { pair_start, pair_step, pair_stop, &pairs[0] },
                            { pair_start, pair_step, pair_stop, &pairs[1] } };
        int ok = bench_compare(ops, 2, 1, seconds, r->rate[v13], r->err, sizeof r->err);
        free_ctxs(ctx);
        if (!ok)
            return;
    }
    m2mtls_policy_free(sp);
    m2mtls_policy_free(cp);
    r->ok = 1;
}

static int run_child(const char *dir, const pki *k, double seconds, size_result *r)
{
    int fd[2];
    memset(r, 0, sizeof *r);
    fflush(NULL);
    if (pipe(fd) != 0)
        return 0;
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return 0;
    }
    if (pid == 0) {
        close(fd[0]);
        size_result res = { 0 };
        load_child(dir, k, seconds, &res);
        ssize_t w = write(fd[1], &res, sizeof res);
        _exit(w == (ssize_t)sizeof res ? 0 : 1);
    }
    close(fd[1]);
    ssize_t n = 0, got;
    while (n < (ssize_t)sizeof *r && (got = read(fd[0], (char *)r + n, sizeof *r - (size_t)n)) > 0)
        n += got;
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (n != (ssize_t)sizeof *r) {
        snprintf(r->err, sizeof r->err, "the measuring child died (status %d)", status);
        r->ok = 0;
    }
    return r->ok;
}

/* ---- instruction counts under callgrind ---------------------------------------------- */

int bench_policy_callgrind_child(const char *dir, int count)
{
    char p[4200], why[512];
    pki k = { 0 };
    BIO *b;
    /* the files write_size made */
    const char *names[5] = { "root.pem", "server.pem", "server.key", "client.pem", "client.key" };
    for (int i = 0; i < 5; i++) {
        if ((b = BIO_new_file(bench_path(dir, names[i], p, sizeof p), "r")) == NULL)
            return 1;
        if (i == 0)
            k.root = PEM_read_bio_X509(b, NULL, NULL, NULL);
        else if (i == 1)
            k.server = PEM_read_bio_X509(b, NULL, NULL, NULL);
        else if (i == 2)
            k.server_key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
        else if (i == 3)
            k.client = PEM_read_bio_X509(b, NULL, NULL, NULL);
        else
            k.client_key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
        BIO_free(b);
    }
    m2mtls_policy *sp = m2mtls_policy_load(bench_path(dir, "server.policy", p, sizeof p));
    m2mtls_policy *cp = m2mtls_policy_load(bench_path(dir, "client.policy", p, sizeof p));
    if (sp == NULL || cp == NULL) {
        fprintf(stderr, "%s\n", m2mtls_last_error());
        return 1;
    }
    int rc = 0, started = 0;
    for (int v13 = 0; v13 < 2 && rc == 0; v13++) {
        SSL_CTX *ctx[4];
        if (!make_ctxs(&k, v13 ? BENCH_TLS13 : BENCH_TLS12, sp, cp, ctx)) {
            free_ctxs(ctx);
            rc = 1;
            break;
        }
        bench_link l = { 0 };
        for (int m2 = 0; m2 < 2 && rc == 0; m2++) {
            SSL_CTX *s = ctx[2 * m2], *c = ctx[2 * m2 + 1];
            const char *peer = m2 ? SERVER_ID : NULL;
            for (int i = 0; i < 3; i++) /* warm up: lazy initialisation is not a handshake's cost */
                if (!bench_handshake(s, c, &l, peer, NULL, why, sizeof why))
                    rc = 1;
            if (!started) {
                CALLGRIND_START_INSTRUMENTATION;
                started = 1;
            }
            CALLGRIND_ZERO_STATS;
            for (int i = 0; i < count && rc == 0; i++)
                if (!bench_handshake(s, c, &l, peer, NULL, why, sizeof why))
                    rc = 1;
            CALLGRIND_DUMP_STATS_AT(m2 ? "m2mtls" : "plain");
        }
        free_ctxs(ctx);
    }
    if (rc != 0)
        fprintf(stderr, "a handshake failed: %s\n", why);
    m2mtls_policy_free(sp);
    m2mtls_policy_free(cp);
    pki_free(&k);
    return rc;
}

static const char *find_valgrind(char *buf, size_t len)
{
    const char *path = getenv("PATH");
    char dirs[8192];
    snprintf(dirs, sizeof dirs, "%s", path ? path : "/usr/bin:/bin");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(buf, len, "%s/valgrind", d);
        if (access(buf, X_OK) == 0)
            return buf;
    }
    return NULL;
}

/* Ir of one callgrind dump ("totals:" or "summary:" line). */
static double dump_total(const char *file)
{
    FILE *f = fopen(file, "r");
    char line[512];
    double v = -1;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "totals:", 7) == 0 || (v < 0 && strncmp(line, "summary:", 8) == 0))
            v = strtod(strchr(line, ':') + 1, NULL);
    if (f != NULL)
        fclose(f);
    return v;
}

/* instr[tls13][m2mtls] per handshake; 0 if it could not be measured. */
static int callgrind_size(const char *valgrind, const char *self, const char *dir, int count, double instr[2][2],
                          char *err, size_t len)
{
    char out[4200], arg_out[4300], countbuf[32];
    bench_path(dir, "callgrind.out", out, sizeof out);
    snprintf(arg_out, sizeof arg_out, "--callgrind-out-file=%s", out);
    snprintf(countbuf, sizeof countbuf, "%d", count);
    char *argv[] = { (char *)valgrind, "--tool=callgrind", "--instr-atstart=no", arg_out, (char *)self, "bench",
                     "policy", "--callgrind-child", (char *)dir, "--count", countbuf, NULL };
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    char log[4200];
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, bench_path(dir, "callgrind.log", log, sizeof log),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    int status = 0;
    fflush(NULL);
    int rc = posix_spawn(&pid, valgrind, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        snprintf(err, len, "cannot run %s: %s", valgrind, strerror(rc));
        return 0;
    }
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(err, len, "the callgrind run failed (see %s)", log);
        return 0;
    }
    for (int i = 0; i < 4; i++) { /* dumps 1..4: 1.2 plain, 1.2 m2mtls, 1.3 plain, 1.3 m2mtls */
        char file[4300];
        snprintf(file, sizeof file, "%s.%d", out, i + 1);
        double v = dump_total(file);
        if (v <= 0) {
            snprintf(err, len, "no instruction count in %s", file);
            return 0;
        }
        instr[i / 2][i % 2] = v / count;
        remove(file);
    }
    remove(out);
    remove(log);
    return 1;
}

int bench_policy(const bench_args *a, bench_machine *mach, bench_table **tables, int *ntables)
{
    size_t sizes[3] = { 10000, 100000, 1000000 };
    int nsizes = 3;
    if (a->peers > 0) {
        sizes[0] = a->peers;
        nsizes = 1;
    }
    char vbuf[4200];
    const char *valgrind = a->callgrind && HAVE_CALLGRIND ? find_valgrind(vbuf, sizeof vbuf) : NULL;
    bench_machine_init(mach, "none (not used)");
    char dir[4096], p[4200], why[9000];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/m2mtls-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "m2mtls bench: cannot make a temporary directory: %s\n", strerror(errno));
        return 1;
    }
    bench_table *load = bench_table_new("policy load, each size in a process of its own");
    bench_col(load, "peers", "peers");
    bench_col(load, "file_mib", "file MiB");
    bench_col(load, "load_s", "load s");
    bench_col(load, "peak_rss_mib", "peak RSS MiB");
    bench_col(load, "added_mib", "added by the load MiB");
    snprintf(load->note, sizeof load->note,
             "peak RSS: VmHWM of the process that loaded the policy (OpenSSL and the command included); added: "
             "VmHWM after the load minus VmRSS before it.");
    bench_table *ver = bench_table_new("");
    snprintf(ver->title, sizeof ver->title,
             "verifier cost per full mutual handshake (client + server), plain SSL_VERIFY_PEER vs m2mtls with the "
             "N-peer policy; wall clock: median of alternating rounds, %g s per figure%s",
             a->seconds, valgrind ? "; instructions: callgrind" : "");
    bench_col(ver, "peers", "peers");
    bench_col(ver, "protocol", "protocol");
    bench_col(ver, "plain_per_s", "plain/s");
    bench_col(ver, "m2mtls_per_s", "m2mtls/s");
    bench_col(ver, "wall_overhead_pct", "wall overhead %%");
    if (valgrind != NULL) {
        bench_col(ver, "plain_instr", "plain instr");
        bench_col(ver, "m2mtls_instr", "m2mtls instr");
        bench_col(ver, "added_instr", "added instr");
        bench_col(ver, "instr_overhead_pct", "instr overhead %%");
    }
    if (valgrind == NULL)
        snprintf(ver->note, sizeof ver->note, "%s", a->callgrind ? "valgrind not found: wall clock only (noisy)." : "");
    else
        snprintf(ver->note, sizeof ver->note,
                 "instructions: %d handshakes of each variant under callgrind after 3 warm-up ones, per handshake; "
                 "they do not depend on the machine's load. Wall-clock figures on a busy machine vary by several %%.",
                 a->count);
    tables[(*ntables)++] = load;
    tables[(*ntables)++] = ver;
    int rc = 1;
    for (int i = 0; i < nsizes; i++) {
        pki k = { 0 };
        size_result r;
        if (!write_size(dir, sizes[i], &k)) {
            fprintf(stderr, "m2mtls bench policy: cannot write the files of %zu peers in %s\n", sizes[i], dir);
            pki_free(&k);
            goto out;
        }
        struct stat st;
        double file_mib = stat(bench_path(dir, "server.policy", p, sizeof p), &st) == 0 ? (double)st.st_size / 1048576 : 0;
        if (!run_child(dir, &k, a->seconds, &r)) {
            fprintf(stderr, "m2mtls bench policy: %zu peers: %s\n", sizes[i], r.err);
            pki_free(&k);
            goto out;
        }
        pki_free(&k);
        double instr[2][2];
        int have_instr = valgrind != NULL && callgrind_size(valgrind, a->self, dir, a->count, instr, why, sizeof why);
        if (valgrind != NULL && !have_instr)
            fprintf(stderr, "m2mtls bench policy: %zu peers: %s\n", sizes[i], why);
        int row = bench_row(load);
        bench_num(load, row, 0, (double)sizes[i], "%.0f");
        bench_num(load, row, 1, file_mib, "%.1f");
        bench_num(load, row, 2, r.load_s, "%.3f");
        bench_num(load, row, 3, (double)r.hwm_kib / 1024, "%.1f");
        bench_num(load, row, 4, (double)(r.hwm_kib - r.rss_before_kib) / 1024, "%.1f");
        for (int v13 = 0; v13 < 2; v13++) {
            row = bench_row(ver);
            bench_num(ver, row, 0, (double)sizes[i], "%.0f");
            bench_str(ver, row, 1, v13 ? bench_proto_name[BENCH_TLS13] : bench_proto_name[BENCH_TLS12]);
            bench_num(ver, row, 2, r.rate[v13][0], "%.0f");
            bench_num(ver, row, 3, r.rate[v13][1], "%.0f");
            bench_num(ver, row, 4, 100.0 * (r.rate[v13][0] - r.rate[v13][1]) / r.rate[v13][0], "%+.2f");
            if (valgrind == NULL)
                continue;
            if (!have_instr) {
                for (int c = 5; c < 9; c++)
                    bench_str(ver, row, c, "failed");
                continue;
            }
            bench_num(ver, row, 5, instr[v13][0], "%.0f");
            bench_num(ver, row, 6, instr[v13][1], "%.0f");
            bench_num(ver, row, 7, instr[v13][1] - instr[v13][0], "%+.0f");
            bench_num(ver, row, 8, 100.0 * (instr[v13][1] - instr[v13][0]) / instr[v13][0], "%+.2f");
        }
        remove(bench_path(dir, "server.policy", p, sizeof p)); /* up to 85 MB */
    }
    rc = 0;
out:
    bench_rmtree(dir);
    return rc;
}
