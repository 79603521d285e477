/*
 * bench_verify: what the m2mtls verifier costs.
 *
 *  1. Policy load: time and memory to load a policy of N peers.
 *  2. Full handshakes per second, in memory (BIO pairs, one thread, no
 *     sockets: only CPU is measured), with the same certificates and chain:
 *     plain SSL_VERIFY_PEER against the root versus m2mtls_ctx_install with
 *     the N-peer policy, for TLS 1.2 (ECDHE-ECDSA-AES128-SHA256) and TLS 1.3.
 *     Both sides verify (mutual authentication); the difference per
 *     handshake is the verifier's cost. The variants alternate in short
 *     rounds; each figure is the median round.
 *
 * usage: bench_verify [--peers N] [--seconds S] [--json]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <m2mtls/policy.h>
#include "../pki.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f != NULL) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void die(const char *what)
{
    fprintf(stderr, "bench_verify: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

typedef struct pki_set {
    pki_cert root, server, client;
    char *dir;
} pki_set;

/* The client is peer number N/2 of the policy, so the look-up is a real one. */
static void make_pki(pki_set *s, size_t peers, char *client_id, size_t len)
{
    snprintf(client_id, len, "//sp.example.com/CSE-1/C%08zu", peers / 2);
    pki_san server_san[] = { { PKI_SAN_DNS, "in-cse.sp.example.com", 0 }, { PKI_SAN_END, NULL, 0 } };
    pki_san client_san[] = { { PKI_SAN_URI, client_id, 0 }, { PKI_SAN_END, NULL, 0 } };
    if (!pki_root("bench root", &s->root) || !pki_leaf(&s->root, "in-cse", server_san, &s->server)
        || !pki_leaf(&s->root, "client", client_san, &s->client) || (s->dir = pki_tmpdir()) == NULL)
        die("cannot make the test PKI");
    if (!pki_write_cert(s->dir, "root.pem", s->root.cert) || !pki_write_cert(s->dir, "server.pem", s->server.cert)
        || !pki_write_key(s->dir, "server.key", s->server.key) || !pki_write_cert(s->dir, "client.pem", s->client.cert)
        || !pki_write_key(s->dir, "client.key", s->client.key))
        die("cannot write the test PKI");
}

static char *write_policy(const pki_set *s, const char *name, const char *own, size_t peers)
{
    char *path = pki_path(s->dir, name);
    FILE *f = path ? fopen(path, "w") : NULL;
    if (f == NULL)
        die("cannot write a policy");
    fprintf(f, "local-id /CSE-1\ncert %s.pem\nkey %s.key\nanchor root root.pem\n", own, own);
    fprintf(f, "peer /in-cse dns:in-cse.sp.example.com root\n");
    for (size_t i = 0; i < peers; i++)
        fprintf(f, "peer //sp.example.com/CSE-1/C%08zu uri://sp.example.com/CSE-1/C%08zu root\n", i, i);
    if (fclose(f) != 0)
        die("cannot write a policy");
    return path;
}

static SSL_CTX *make_ctx(const pki_set *s, int server, int tls13, m2mtls_policy *p)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (ctx == NULL)
        die("SSL_CTX_new");
    SSL_CTX_set_min_proto_version(ctx, tls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, tls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-SHA256");
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    /* Without this, libssl would build its own chain from the verify store on
     * every handshake in the plain variant only: work that is not verification. */
    SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
    const pki_cert *own = server ? &s->server : &s->client;
    if (!SSL_CTX_use_certificate(ctx, own->cert) || !SSL_CTX_use_PrivateKey(ctx, own->key))
        die("credential");
    if (p != NULL) {
        if (!m2mtls_ctx_install(ctx, p))
            die(m2mtls_last_error());
        return ctx;
    }
    X509_STORE *st = SSL_CTX_get_cert_store(ctx);
    X509_STORE_add_cert(st, s->root.cert);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    return ctx;
}

/* One full handshake over a BIO pair; 1 when both sides finished. */
static int handshake(SSL_CTX *sctx, SSL_CTX *cctx, const char *expect_server)
{
    SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
    BIO *sb = NULL, *cb = NULL;
    int ok = 0;
    if (s == NULL || c == NULL || !BIO_new_bio_pair(&sb, 0, &cb, 0))
        goto out;
    SSL_set_bio(s, sb, sb);
    SSL_set_bio(c, cb, cb);
    SSL_set_accept_state(s);
    SSL_set_connect_state(c);
    if (expect_server != NULL && !m2mtls_ssl_set_peer(c, expect_server))
        goto out;
    int sd = 0, cd = 0;
    for (int i = 0; i < 100 && !(sd && cd); i++) {
        if (!cd) {
            int r = SSL_do_handshake(c);
            if (r == 1)
                cd = 1;
            else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
                goto out;
        }
        if (!sd) {
            int r = SSL_do_handshake(s);
            if (r == 1)
                sd = 1;
            else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
                goto out;
        }
    }
    ok = sd && cd && !SSL_session_reused(c);
    if (ok && expect_server != NULL) /* the labels must be there, or nothing was measured */
        ok = m2mtls_ssl_peer_id(s) != NULL && m2mtls_ssl_peer_id(c) != NULL;
out:
    SSL_free(s);
    SSL_free(c);
    ERR_clear_error();
    return ok;
}

/* Handshakes per second over one round of about SECONDS. */
static double rate(SSL_CTX *sctx, SSL_CTX *cctx, const char *expect, double seconds)
{
    long n = 0;
    double t0 = now_s(), t;
    do {
        for (int i = 0; i < 10; i++, n++)
            if (!handshake(sctx, cctx, expect))
                die("a handshake failed");
        t = now_s() - t0;
    } while (t < seconds);
    return (double)n / t;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The two variants alternate in short rounds and each reports its median
 * round: load from elsewhere on the machine hits both alike. */
#define ROUNDS_MAX 64
static void compare(SSL_CTX *ps, SSL_CTX *pc, SSL_CTX *ms, SSL_CTX *mc, double seconds, double out[2])
{
    int rounds = (int)(seconds / 0.25);
    if (rounds < 1)
        rounds = 1;
    if (rounds > ROUNDS_MAX)
        rounds = ROUNDS_MAX;
    double plain[ROUNDS_MAX], ours[ROUNDS_MAX], slice = seconds / (2.0 * rounds);
    for (int r = 0; r < rounds; r++) {
        plain[r] = rate(ps, pc, NULL, slice);
        ours[r] = rate(ms, mc, "/in-cse", slice);
    }
    qsort(plain, (size_t)rounds, sizeof plain[0], cmp_double);
    qsort(ours, (size_t)rounds, sizeof ours[0], cmp_double);
    out[0] = plain[rounds / 2];
    out[1] = ours[rounds / 2];
}

int main(int argc, char **argv)
{
    size_t peers = 1000000;
    double seconds = 3;
    int json = 0, count = 0, only_m2mtls = -1, tls13 = 0;
    static const struct option opts[] = { { "peers", required_argument, NULL, 'p' },
                                          { "seconds", required_argument, NULL, 's' },
                                          { "json", no_argument, NULL, 'j' },
                                          { "count", required_argument, NULL, 'c' },
                                          { "only", required_argument, NULL, 'o' },
                                          { "tls1.3", no_argument, NULL, '3' },
                                          { NULL, 0, NULL, 0 } };
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'p')
            peers = strtoul(optarg, NULL, 10);
        else if (ch == 's')
            seconds = strtod(optarg, NULL);
        else if (ch == 'j')
            json = 1;
        else if (ch == 'c')
            count = atoi(optarg);
        else if (ch == 'o' && (strcmp(optarg, "plain") == 0 || strcmp(optarg, "m2mtls") == 0))
            only_m2mtls = strcmp(optarg, "m2mtls") == 0;
        else if (ch == '3')
            tls13 = 1;
        else {
            fprintf(stderr, "usage: bench_verify [--peers N] [--seconds S] [--json]\n"
                            "       bench_verify --only plain|m2mtls --count N [--tls1.3] [--peers N]\n"
                            "  (the second form runs exactly N handshakes of one variant, for\n"
                            "   instruction counts: valgrind --tool=callgrind)\n");
            return 2;
        }
    }
    pki_set s = { 0 };
    char client_id[64];
    make_pki(&s, peers, client_id, sizeof client_id);
    char *server_policy = write_policy(&s, "server.policy", "server", peers);
    char *client_policy = write_policy(&s, "client.policy", "client", 0);

    long rss0 = rss_kib();
    double t0 = now_s();
    m2mtls_policy *sp = m2mtls_policy_load(server_policy);
    double load_s = now_s() - t0;
    long rss1 = rss_kib();
    m2mtls_policy *cp = m2mtls_policy_load(client_policy);
    if (sp == NULL || cp == NULL)
        die(m2mtls_last_error());
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);

    if (count > 0 && only_m2mtls >= 0) { /* fixed work, no clock: for callgrind */
        SSL_CTX *sc = make_ctx(&s, 1, tls13, only_m2mtls ? sp : NULL);
        SSL_CTX *cc = make_ctx(&s, 0, tls13, only_m2mtls ? cp : NULL);
        for (int i = 0; i < count; i++)
            if (!handshake(sc, cc, only_m2mtls ? "/in-cse" : NULL))
                die("a handshake failed");
        printf("%d %s handshakes\n", count, only_m2mtls ? "m2mtls" : "plain");
        SSL_CTX_free(sc);
        SSL_CTX_free(cc);
        goto done;
    }
    double r[2][2]; /* [tls13][m2mtls] */
    for (int v13 = 0; v13 < 2; v13++) {
        SSL_CTX *ps = make_ctx(&s, 1, v13, NULL), *pc = make_ctx(&s, 0, v13, NULL);
        SSL_CTX *ms = make_ctx(&s, 1, v13, sp), *mc = make_ctx(&s, 0, v13, cp);
        handshake(ps, pc, NULL); /* warm up both */
        if (!handshake(ms, mc, "/in-cse"))
            die("the m2mtls handshake failed");
        compare(ps, pc, ms, mc, seconds, r[v13]);
        SSL_CTX_free(ps);
        SSL_CTX_free(pc);
        SSL_CTX_free(ms);
        SSL_CTX_free(mc);
    }
    const char *proto[2] = { "TLS 1.2 ECDHE-ECDSA-AES128-SHA256", "TLS 1.3" };
    if (json) {
        printf("{\"peers\": %zu, \"load_seconds\": %.3f, \"load_rss_mib\": %.1f, \"peak_rss_mib\": %.1f, "
               "\"cpus\": %ld, \"openssl\": \"%s\", \"handshakes\": [",
               peers, load_s, (double)(rss1 - rss0) / 1024, (double)ru.ru_maxrss / 1024,
               sysconf(_SC_NPROCESSORS_ONLN), OpenSSL_version(OPENSSL_VERSION));
        for (int v = 0; v < 2; v++)
            printf("%s{\"protocol\": \"%s\", \"plain_per_s\": %.1f, \"m2mtls_per_s\": %.1f, "
                   "\"added_us\": %.1f, \"overhead_pct\": %.2f}",
                   v ? ", " : "", proto[v], r[v][0], r[v][1], 1e6 / r[v][1] - 1e6 / r[v][0],
                   100.0 * (r[v][0] - r[v][1]) / r[v][0]);
        printf("]}\n");
    } else {
        printf("machine: %ld CPUs, %s\n", sysconf(_SC_NPROCESSORS_ONLN), OpenSSL_version(OPENSSL_VERSION));
        printf("policy load: %zu peers in %.3f s, +%.1f MiB resident (peak RSS of the process %.1f MiB)\n",
               peers, load_s, (double)(rss1 - rss0) / 1024, (double)ru.ru_maxrss / 1024);
        printf("%-36s %14s %14s %12s %10s\n", "full mutual handshake, 1 thread", "plain verify/s",
               "m2mtls/s", "added us", "overhead");
        for (int v = 0; v < 2; v++)
            printf("%-36s %14.1f %14.1f %12.1f %9.2f%%\n", proto[v], r[v][0], r[v][1],
                   1e6 / r[v][1] - 1e6 / r[v][0], 100.0 * (r[v][0] - r[v][1]) / r[v][0]);
    }
done:
    m2mtls_policy_free(sp);
    m2mtls_policy_free(cp);
    free(server_policy);
    free(client_policy);
    pki_rmtree(s.dir);
    free(s.dir);
    pki_cert_free(&s.root);
    pki_cert_free(&s.server);
    pki_cert_free(&s.client);
    return 0;
}
