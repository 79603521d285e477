/* SPDX-License-Identifier: Apache-2.0 */
/* m2mtls bench handshake: mutual-authentication handshakes per second, both
 * sides in this process (TLS over BIO pairs, DTLS over UDP on 127.0.0.1), at
 * 1 and N threads (each thread its own client/server pair):
 *   TLS 1.2 ECDHE-ECDSA-AES128-SHA256, TLS 1.3, DTLS 1.2 ECDHE-ECDSA-AES128-CCM8
 *   x server key: in the token through the m2mtls provider (session key
 *     cache on, the default), the same with the cache off, through
 *     pkcs11-provider (when its module is there), or in a PEM file
 *   x the m2mtls verifier (m2mtls_ctx_install, both sides) / plain SSL_VERIFY_PEER;
 * then resumed handshakes (session tickets) with the identity label asserted
 * on both sides of every resumed connection. The client key is a file. Both
 * variants set SSL_MODE_NO_AUTO_CHAIN (else libssl rebuilds the chain from
 * the verify store on every plain handshake: work that is not verification).
 * A server key of another library context (cache off, pkcs11-provider) gets
 * a server SSL_CTX of that context, as a server configured that way would. */
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <m2mtls/policy.h>
#include "bench.h"
#include "pki.h"
#include "internal.h"
#include "tool.h"

#define SERVER_ID   "/in-cse"
#define SERVER_FQDN "in-cse.bench.example"
#define CLIENT_ID   "//sp.example.com/in-cse/Cbench"

/* where the server key is */
enum { K_TOKEN = 0, K_FILE, K_NOCACHE, K_P11PROV, KEYS };
static const char *const key_name[KEYS] = { "token", "file", "token, cache off", "pkcs11-provider" };

typedef struct hs_files {
    X509 *root, *server_tok, *server_file, *client;
    EVP_PKEY *key[KEYS], *key_client;
    OSSL_LIB_CTX *libctx[KEYS];     /* the server key's (NULL: default) */
    char why[KEYS][600];            /* a key that is not there: why */
    m2mtls_policy *server_policy, *client_policy;
} hs_files;

typedef struct hs_variant {
    SSL_CTX *s, *c;
    int dtls, resume;
    const char *peer;   /* m2mtls variants */
} hs_variant;

typedef struct hs_state {
    const hs_variant *v;
    bench_link link;
    SSL_SESSION *sess;
} hs_state;

static void *hs_start(void *arg, char *err, size_t len)
{
    hs_variant *v = arg;
    hs_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return NULL;
    st->v = v;
    if (!bench_link_open(&st->link, v->dtls, err, len)) {
        free(st);
        return NULL;
    }
    /* resumed: the first, full handshake gives the session */
    if (v->resume && !bench_handshake(v->s, v->c, &st->link, v->peer, &st->sess, err, len)) {
        bench_link_close(&st->link);
        free(st);
        return NULL;
    }
    return st;
}

static int hs_step(void *state, char *err, size_t len)
{
    hs_state *st = state;
    return bench_handshake(st->v->s, st->v->c, &st->link, st->v->peer, st->v->resume ? &st->sess : NULL, err, len);
}

static void hs_stop(void *state)
{
    hs_state *st = state;
    bench_link_close(&st->link);
    SSL_SESSION_free(st->sess);
    free(st);
}

static int make_files(const bench_env *e, hs_files *f)
{
    char p[4200], why[256];
    char lwhy[600];
    EVP_PKEY *root_key = EVP_EC_gen("P-256");
    f->key[K_FILE] = EVP_EC_gen("P-256");
    f->key_client = EVP_EC_gen("P-256");
    f->key[K_TOKEN] = m2_load_private_key(BENCH_EC_URI, NULL, NULL, why, sizeof why);
    f->libctx[K_NOCACHE] = e->nocache;
    f->key[K_NOCACHE] = bench_load_key(e->nocache, BENCH_EC_URI, lwhy, sizeof lwhy);
    if (f->key[K_TOKEN] == NULL || f->key[K_NOCACHE] == NULL) {
        fprintf(stderr, "m2mtls bench: %s: %s\n", BENCH_EC_URI, f->key[K_TOKEN] == NULL ? why : lwhy);
        EVP_PKEY_free(root_key);
        return 0;
    }
    /* the same token key through pkcs11-provider: the same certificate */
    f->libctx[K_P11PROV] = e->p11prov;
    snprintf(f->why[K_P11PROV], sizeof f->why[K_P11PROV], "%s", e->p11prov_why);
    if (e->p11prov != NULL
        && (f->key[K_P11PROV] = bench_load_key(e->p11prov, BENCH_EC_URI, lwhy, sizeof lwhy)) == NULL)
        snprintf(f->why[K_P11PROV], sizeof f->why[K_P11PROV], "pkcs11-provider: %.500s", lwhy);
    int ok = root_key && f->key[K_FILE] && f->key_client
             && (f->root = tool_issue("bench root", root_key, NULL, NULL, NULL)) != NULL
             && (f->server_tok = tool_issue("in-cse", f->key[K_TOKEN], f->root, root_key, "DNS:" SERVER_FQDN)) != NULL
             && (f->server_file = tool_issue("in-cse", f->key[K_FILE], f->root, root_key, "DNS:" SERVER_FQDN)) != NULL
             && (f->client = tool_issue("Cbench", f->key_client, f->root, root_key, "URI:" CLIENT_ID)) != NULL
             && tool_write_pem(bench_path(e->dir, "root.pem", p, sizeof p), f->root, NULL)
             && tool_write_pem(bench_path(e->dir, "server.pem", p, sizeof p), f->server_file, NULL)
             && tool_write_pem(bench_path(e->dir, "server.key", p, sizeof p), NULL, f->key[K_FILE])
             && tool_write_pem(bench_path(e->dir, "client.pem", p, sizeof p), f->client, NULL)
             && tool_write_pem(bench_path(e->dir, "client.key", p, sizeof p), NULL, f->key_client);
    EVP_PKEY_free(root_key);
    if (!ok) {
        fprintf(stderr, "m2mtls bench: cannot make the certificates: %s\n", tool_ssl_error(why, sizeof why));
        return 0;
    }
    FILE *sp = fopen(bench_path(e->dir, "server.policy", p, sizeof p), "w");
    if (sp != NULL) {
        fprintf(sp, "local-id %s\ncert server.pem\nkey server.key\nanchor root root.pem\npeer %s uri:%s root\n",
                SERVER_ID, CLIENT_ID, CLIENT_ID);
        fclose(sp);
    }
    f->server_policy = m2mtls_policy_load(p);
    FILE *cp = fopen(bench_path(e->dir, "client.policy", p, sizeof p), "w");
    if (cp != NULL) {
        fprintf(cp, "local-id %s\ncert client.pem\nkey client.key\nanchor root root.pem\npeer %s dns:%s root\n",
                CLIENT_ID, SERVER_ID, SERVER_FQDN);
        fclose(cp);
    }
    f->client_policy = f->server_policy ? m2mtls_policy_load(p) : NULL;
    if (f->client_policy == NULL) {
        fprintf(stderr, "m2mtls bench: %s\n", m2mtls_last_error());
        return 0;
    }
    return 1;
}

static void free_files(hs_files *f)
{
    X509_free(f->root);
    X509_free(f->server_tok);
    X509_free(f->server_file);
    X509_free(f->client);
    for (int k = 0; k < KEYS; k++)
        EVP_PKEY_free(f->key[k]);
    EVP_PKEY_free(f->key_client);
    m2mtls_policy_free(f->server_policy);
    m2mtls_policy_free(f->client_policy);
}

/* Variants of one protocol: the full handshakes first (they alternate in one
 * comparison), then the resumed ones (another). FILE_OF: the variant with the
 * key file and the same verifier; PLAIN_OF: the same with plain verification. */
#define VARIANTS 8
#define FULL 6
static const struct {
    int key, m2, resume, file_of, plain_of;
} variant_def[VARIANTS] = {
    { K_TOKEN, 1, 0, 1, 2 },   { K_FILE, 1, 0, -1, 3 }, { K_TOKEN, 0, 0, 3, -1 }, { K_FILE, 0, 0, -1, -1 },
    { K_NOCACHE, 0, 0, 3, -1 }, { K_P11PROV, 0, 0, 3, -1 }, { K_TOKEN, 1, 1, -1, 7 }, { K_TOKEN, 0, 1, -1, -1 },
};

/* The variants of a comparison that can run (pkcs11-provider may be absent);
 * ops[] and idx[] filled, their number returned. */
static int ops_of(hs_variant *v, const hs_files *f, int from, int to, bench_op *ops, int *idx)
{
    int n = 0;
    for (int i = from; i < to; i++) {
        if (f->key[variant_def[i].key] == NULL)
            continue;
        ops[n] = (bench_op){ hs_start, hs_step, hs_stop, &v[i] };
        idx[n++] = i;
    }
    return n;
}

static void add_row(bench_table *t, const hs_files *f, int proto, int i, double r[2][VARIANTS], int ncol)
{
    int row = bench_row(t), key = variant_def[i].key, have = f->key[key] != NULL;
    bench_str(t, row, 0, bench_proto_name[proto]);
    bench_str(t, row, 1, variant_def[i].resume ? "resumed" : "full");
    bench_str(t, row, 2, key_name[key]);
    bench_str(t, row, 3, variant_def[i].m2 ? "m2mtls" : "plain");
    int col = 4;
    for (int th = 0; th < ncol; th++, col++) {
        if (have)
            bench_num(t, row, col, r[th][i], "%.0f");
        else
            bench_str(t, row, col, f->why[key]);
    }
    /* full handshakes with the key elsewhere: share of the same with the key file */
    for (int th = 0; th < ncol; th++, col++) {
        if (have && variant_def[i].file_of >= 0)
            bench_num(t, row, col, 100.0 * r[th][i] / r[th][variant_def[i].file_of], "%.1f");
        else
            bench_str(t, row, col, "");
    }
    /* m2mtls rows: share of the same with plain SSL_VERIFY_PEER */
    for (int th = 0; th < ncol; th++, col++) {
        if (have && variant_def[i].plain_of >= 0)
            bench_num(t, row, col, 100.0 * r[th][i] / r[th][variant_def[i].plain_of], "%.1f");
        else
            bench_str(t, row, col, "");
    }
}

/* No clock: COUNT handshakes of each variant (one thread; full, then resumed),
 * one callgrind dump per variant. */
static int count_run(hs_variant v[BENCH_PROTOS][VARIANTS], const hs_files *f, int count)
{
    char why[512];
    int dump = 0, started = 0;
    for (int p = 0; p < BENCH_PROTOS; p++)
        for (int i = 0; i < VARIANTS; i++) {
            if (f->key[variant_def[i].key] == NULL)
                continue;
            void *st = hs_start(&v[p][i], why, sizeof why);
            int ok = st != NULL;
            for (int k = 0; ok && k < 3; k++) /* warm up: lazy initialisation, the session copy */
                ok = hs_step(st, why, sizeof why);
            if (!started) {
                CALLGRIND_START_INSTRUMENTATION;
                started = 1;
            }
            CALLGRIND_ZERO_STATS;
            for (int k = 0; ok && k < count; k++)
                ok = hs_step(st, why, sizeof why);
            char label[64];
            snprintf(label, sizeof label, "%s %s %s %s", bench_proto_name[p], variant_def[i].resume ? "resumed" : "full",
                     key_name[variant_def[i].key], variant_def[i].m2 ? "m2mtls" : "plain");
            CALLGRIND_DUMP_STATS_AT(label);
            if (st != NULL)
                hs_stop(st);
            if (!ok) {
                fprintf(stderr, "m2mtls bench handshake: %s\n", why);
                return 0;
            }
            printf("dump %d: %s, server key %s, %s verifier: %d %s handshakes\n", ++dump, bench_proto_name[p],
                   key_name[variant_def[i].key], variant_def[i].m2 ? "m2mtls" : "plain", count,
                   variant_def[i].resume ? "resumed" : "full");
        }
    return 1;
}

int bench_handshakes(const bench_args *a, bench_machine *mach, bench_table **tables, int *ntables)
{
    bench_env env;
    hs_files f = { 0 };
    hs_variant v[BENCH_PROTOS][VARIANTS] = { { { 0 } } };
    int rc = 1, ncol = a->threads != 1 ? 2 : 1;
    char why[512];
    if (!bench_env_setup(&env, a->module, a->provider, a->pkcs11_provider))
        goto out;
    bench_machine_init(mach, env.token_desc);
    if (env.p11prov == NULL)
        fprintf(stderr, "m2mtls bench handshake: pkcs11-provider: %s\n", env.p11prov_why);
    if (!make_files(&env, &f))
        goto out;
    for (int p = 0; p < BENCH_PROTOS; p++)
        for (int i = 0; i < VARIANTS; i++) {
            int key = variant_def[i].key, m2 = variant_def[i].m2, res = variant_def[i].resume;
            if (f.key[key] == NULL)
                continue;
            v[p][i].dtls = p == BENCH_DTLS12;
            v[p][i].resume = res;
            v[p][i].peer = m2 ? SERVER_ID : NULL;
            v[p][i].s = bench_ssl_ctx(f.libctx[key], p, 1, key == K_FILE ? f.server_file : f.server_tok, f.key[key],
                                      f.root, m2 ? f.server_policy : NULL, res);
            v[p][i].c = bench_ssl_ctx(NULL, p, 0, f.client, f.key_client, f.root, m2 ? f.client_policy : NULL, res);
            if (v[p][i].s == NULL || v[p][i].c == NULL)
                goto out;
        }
    if (a->count > 0) { /* fixed work, for callgrind: one dump per variant */
        rc = count_run(v, &f, a->count) ? 0 : 1;
        goto out;
    }

    bench_table *t = bench_table_new("");
    snprintf(t->title, sizeof t->title,
             "mutual-auth handshakes per second of %s (client and server in this process), median of "
             "alternating rounds, %g s per figure",
             a->cpu_clock ? "CPU time per thread (--clock cpu)" : "elapsed time", a->seconds);
    bench_col(t, "protocol", "protocol");
    bench_col(t, "handshake", "handshake");
    bench_col(t, "server_key", "server key");
    bench_col(t, "verifier", "verifier");
    bench_col(t, "per_s_1_thread", "1 thread/s");
    if (ncol == 2)
        bench_col(t, "per_s_n_threads", "%d threads/s", a->threads);
    bench_col(t, "pct_of_key_file_1_thread", ncol == 2 ? "%% of file (1)" : "%% of file");
    if (ncol == 2)
        bench_col(t, "pct_of_key_file_n_threads", "%% of file (%d)", a->threads);
    bench_col(t, "pct_of_plain_1_thread", ncol == 2 ? "%% of plain (1)" : "%% of plain");
    if (ncol == 2)
        bench_col(t, "pct_of_plain_n_threads", "%% of plain (%d)", a->threads);
    tables[(*ntables)++] = t;

    for (int p = 0; p < BENCH_PROTOS; p++) {
        double r[2][VARIANTS] = { { 0 } };
        for (int th = 0; th < ncol; th++) {
            bench_op ops[VARIANTS];
            int idx[VARIANTS], threads = th ? a->threads : 1;
            for (int part = 0; part < 2; part++) {
                int n = part == 0 ? ops_of(v[p], &f, 0, FULL, ops, idx) : ops_of(v[p], &f, FULL, VARIANTS, ops, idx);
                double out[VARIANTS];
                if (!bench_compare(ops, n, threads, a->seconds, out, why, sizeof why)) {
                    fprintf(stderr, "m2mtls bench handshake: %s, %s: %s\n", bench_proto_name[p],
                            threads == 1 ? "1 thread" : "threads", why);
                    goto out;
                }
                for (int k = 0; k < n; k++)
                    r[th][idx[k]] = out[k];
            }
        }
        for (int i = 0; i < VARIANTS; i++)
            add_row(t, &f, p, i, r, ncol);
    }
    snprintf(t->note, sizeof t->note,
             "Each thread runs both ends of its handshakes: the figures are whole handshakes (client + server "
             "CPU). Server key: token = the m2mtls provider with its session key cache (the default); cache off = "
             "pkcs11-module-cache-keys = false; pkcs11-provider with its defaults; %% of file: the same verifier "
             "with the key in a PEM file. Resumed: session tickets (TLS 1.3: the newest ticket each time, with its "
             "post-handshake ticket counted); every resumed connection is checked to carry the peer identity on both "
             "sides, else the bench aborts. TLS over BIO pairs, DTLS over UDP sockets on 127.0.0.1.");
    rc = 0;
out:
    for (int p = 0; p < BENCH_PROTOS; p++)
        for (int i = 0; i < VARIANTS; i++) {
            SSL_CTX_free(v[p][i].s);
            SSL_CTX_free(v[p][i].c);
        }
    free_files(&f);
    bench_env_cleanup(&env);
    return rc;
}
