/* SPDX-License-Identifier: Apache-2.0 */
/* m2mtls bench sign: ECDSA P-256 (SHA-256) and RSA-2048-PSS (SHA-256, salt =
 * digest length) signatures per second at 1 and N threads, by every path to
 * the same key in the same token:
 *   raw C_Sign, token object   C_SignInit + C_Sign on a precomputed digest,
 *                              one session per thread (what SoftHSM costs for
 *                              a token object);
 *   raw C_Sign, session copy   the same on a C_CopyObject copy (CKA_TOKEN
 *                              false) made in that session: the ceiling of
 *                              anything on this token;
 *   m2mtls provider            EVP_DigestSignInit_ex + EVP_DigestSign, as
 *                              libssl signs, key loaded by pkcs11: URI, the
 *                              session key cache on (the default), and the
 *                              same with pkcs11-module-cache-keys = false;
 *   pkcs11-provider            the same through pkcs11-provider (its
 *                              defaults), when its module is there;
 *   libp11 engine              the same through libp11's engine, when installed;
 *   key file                   the default provider with a software key.
 * The paths alternate in short rounds; each figure is the median round. A
 * second table gives the ratios the goals of issue 13 are about. */
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include "bench.h"
#include "ckr.h"
#include "engine.h"
#include "internal.h"
#include "tool.h"

enum { ALG_EC = 0, ALG_RSA = 1, ALGS };
enum { PATH_RAW_TOKEN = 0, PATH_RAW_COPY, PATH_PROVIDER, PATH_NOCACHE, PATH_P11PROV, PATH_ENGINE, PATH_FILE, PATHS };
static const char *const path_name[PATHS] = {
    "raw C_Sign, token object", "raw C_Sign, session copy (ceiling)", "m2mtls provider",
    "m2mtls provider, cache off", "pkcs11-provider", "libp11 engine", "default provider, key file",
};
static const char *const alg_name[ALGS] = { "ECDSA P-256", "RSA-2048-PSS" };

static int is_raw(int path)
{
    return path == PATH_RAW_TOKEN || path == PATH_RAW_COPY;
}

typedef struct sign_target {
    int alg, path;
    EVP_PKEY *key;          /* EVP paths */
    OSSL_LIB_CTX *libctx;   /* the key's (NULL: default) */
    const p11 *m;           /* raw */
    CK_SLOT_ID slot;
    const char *label;
} sign_target;

typedef struct sign_state {
    const sign_target *t;
    EVP_MD_CTX *md;
    p11 m;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE k;
    unsigned char digest[32];
} sign_state;


static const unsigned char msg[64] = "m2mtls bench: the message signed, 64 bytes like a TLS 1.2 digest";

static void *sign_start(void *arg, char *err, size_t len)
{
    sign_target *t = arg;
    sign_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return NULL;
    st->t = t;
    if (is_raw(t->path)) {
        EVP_Digest(msg, sizeof msg, st->digest, NULL, EVP_sha256(), NULL); /* same every time */
        st->m = *t->m; /* own copy: its error buffer */
        if (!p11_sign_session(&st->m, t->slot, BENCH_PIN, t->label, &st->s, &st->k)
            || (t->path == PATH_RAW_COPY && !p11_session_copy(&st->m, st->s, st->k, &st->k))) {
            snprintf(err, len, "%s", st->m.error);
            if (st->s != CK_INVALID_HANDLE)
                st->m.f->C_CloseSession(st->s);
            free(st);
            return NULL;
        }
        return st;
    }
    if ((st->md = EVP_MD_CTX_new()) == NULL) {
        free(st);
        return NULL;
    }
    return st;
}

static int sign_step(void *state, char *err, size_t len)
{
    sign_state *st = state;
    const sign_target *t = st->t;
    unsigned char sig[512];
    size_t n = sizeof sig;
    if (is_raw(t->path)) {
        CK_RSA_PKCS_PSS_PARAMS pss = { CKM_SHA256, CKG_MGF1_SHA256, 32 };
        CK_MECHANISM mech = t->alg == ALG_EC ? (CK_MECHANISM){ CKM_ECDSA, NULL, 0 }
                                             : (CK_MECHANISM){ CKM_RSA_PKCS_PSS, &pss, sizeof pss };
        CK_RV rv = p11_sign(&st->m, st->s, st->k, &mech, st->digest, sizeof st->digest, sig, &n);
        if (rv != CKR_OK) {
            snprintf(err, len, "C_Sign: %s", m2c_ckr_name(rv));
            return 0;
        }
        return 1;
    }
    /* as libssl signs: the digest by name, in the key's library context */
    EVP_PKEY_CTX *pctx = NULL;
    int ok = EVP_DigestSignInit_ex(st->md, &pctx, "SHA256", t->libctx, NULL, t->key, NULL) == 1;
    if (ok && t->alg == ALG_RSA)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0
             && EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0;
    ok = ok && EVP_DigestSign(st->md, sig, &n, msg, sizeof msg) == 1;
    if (!ok) {
        char buf[256];
        snprintf(err, len, "%s: %s", path_name[t->path], tool_ssl_error(buf, sizeof buf));
    }
    return ok;
}

static void sign_stop(void *state)
{
    sign_state *st = state;
    if (is_raw(st->t->path))
        st->m.f->C_CloseSession(st->s); /* and with it the session copy */
    EVP_MD_CTX_free(st->md);
    free(st);
}

static EVP_PKEY *load_file(const char *file)
{
    char why[256];
    EVP_PKEY *k = m2_load_private_key(file, NULL, NULL, why, sizeof why);
    if (k == NULL)
        fprintf(stderr, "m2mtls bench: %s: %s\n", file, why);
    return k;
}

/* Everything a run measures: the keys of each path and why a path is empty. */
typedef struct sign_run {
    bench_env env;
    int with_token;
    EVP_PKEY *keys[ALGS][PATHS];
    OSSL_LIB_CTX *libctx[PATHS];
    char why[PATHS][600];   /* a path without figures: why */
    p11 m;
    int have_p11;
} sign_run;

static int have_path(const sign_run *r, int alg, int p)
{
    return is_raw(p) ? r->have_p11 : r->keys[alg][p] != NULL;
}

static int load_keys(sign_run *r, const bench_args *a)
{
    static const char *const uri[ALGS] = { BENCH_EC_URI, BENCH_RSA_URI };
    char why[600];
    for (int p = 0; p < PATHS; p++)
        snprintf(r->why[p], sizeof r->why[p], "n/a with --key");
    if (!r->with_token) {
        /* A key of the user's, through the provider that OPENSSL_CONF loads. */
        EVP_PKEY *k = load_file(a->key);
        if (k == NULL)
            return 0;
        int alg = EVP_PKEY_is_a(k, "RSA") ? ALG_RSA : ALG_EC;
        r->keys[alg][PATH_PROVIDER] = k;
        r->keys[alg][PATH_FILE] = alg == ALG_RSA ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
        return 1;
    }
    bench_env *e = &r->env;
    r->libctx[PATH_NOCACHE] = e->nocache;
    r->libctx[PATH_P11PROV] = e->p11prov;
    snprintf(r->why[PATH_P11PROV], sizeof r->why[PATH_P11PROV], "%s", e->p11prov_why);
    for (int alg = 0; alg < ALGS; alg++) {
        if ((r->keys[alg][PATH_PROVIDER] = load_file(uri[alg])) == NULL
            || (r->keys[alg][PATH_FILE] = load_file(alg == ALG_EC ? e->ec_file : e->rsa_file)) == NULL)
            return 0;
        if ((r->keys[alg][PATH_NOCACHE] = bench_load_key(e->nocache, uri[alg], why, sizeof why)) == NULL) {
            fprintf(stderr, "m2mtls bench: %s\n", why);
            return 0;
        }
        if (e->p11prov != NULL
            && (r->keys[alg][PATH_P11PROV] = bench_load_key(e->p11prov, uri[alg], why, sizeof why)) == NULL)
            snprintf(r->why[PATH_P11PROV], sizeof r->why[PATH_P11PROV], "pkcs11-provider: %.500s", why);
    }
    /* After the providers: their C_Initialize came first, ours only shares it. */
    if (!p11_open(&r->m, e->module) || !p11_find_token(&r->m, BENCH_TOKEN, &e->slot)) {
        fprintf(stderr, "m2mtls bench: %s\n", r->m.error);
        return 0;
    }
    r->have_p11 = 1;
    void *engine = bench_engine_open(e->module, BENCH_PIN, r->why[PATH_ENGINE], sizeof r->why[PATH_ENGINE]);
    for (int alg = 0; engine != NULL && alg < ALGS; alg++)
        r->keys[alg][PATH_ENGINE] = bench_engine_key(engine, uri[alg], r->why[PATH_ENGINE], sizeof r->why[PATH_ENGINE]);
    return 1;
}

static sign_target target_of(sign_run *r, int alg, int p)
{
    return (sign_target){ .alg = alg, .path = p, .key = r->keys[alg][p], .libctx = r->libctx[p], .m = &r->m,
                          .slot = r->env.slot, .label = alg == ALG_EC ? "ec" : "rsa" };
}

/* No clock: COUNT signatures by each path, one callgrind dump per path. */
static int count_run(sign_run *r, int count)
{
    char why[512];
    int dump = 0, started = 0;
    for (int alg = 0; alg < ALGS; alg++)
        for (int p = 0; p < PATHS; p++) {
            if (r->keys[alg][PATH_PROVIDER] == NULL || !have_path(r, alg, p))
                continue;
            sign_target target = target_of(r, alg, p);
            void *st = sign_start(&target, why, sizeof why);
            int ok = st != NULL;
            for (int i = 0; ok && i < 3; i++) /* warm up: lazy initialisation, the session copy */
                ok = sign_step(st, why, sizeof why);
            if (!started) {
                CALLGRIND_START_INSTRUMENTATION;
                started = 1;
            }
            CALLGRIND_ZERO_STATS;
            for (int i = 0; ok && i < count; i++)
                ok = sign_step(st, why, sizeof why);
            CALLGRIND_DUMP_STATS_AT(path_name[p]);
            if (st != NULL)
                sign_stop(st);
            if (!ok) {
                fprintf(stderr, "m2mtls bench sign: %s\n", why);
                return 0;
            }
            printf("dump %d: %s, %s: %d signatures\n", ++dump, alg_name[alg], path_name[p], count);
        }
    return 1;
}

/* The ratios of the goals, from the figures R[alg][threads column][path]. */
static bench_table *goals_table(const sign_run *r, double res[ALGS][2][PATHS], int ncol, int threads)
{
    bench_table *g = bench_table_new("ratios in this run (goals of issue 13)");
    bench_col(g, "algorithm", "algorithm");
    bench_col(g, "threads", "threads");
    bench_col(g, "provider_vs_session_copy", "m2mtls / raw session copy");
    bench_col(g, "provider_vs_pkcs11_provider", "m2mtls / pkcs11-provider");
    bench_col(g, "nocache_vs_token_object", "m2mtls cache off / raw token object");
    bench_col(g, "goals_met", "goals (>= 0.95, >= 1.00)");
    for (int alg = 0; alg < ALGS; alg++)
        for (int th = 0; th < ncol; th++) {
            const double *v = res[alg][th];
            int row = bench_row(g);
            bench_str(g, row, 0, alg_name[alg]);
            bench_num(g, row, 1, th ? threads : 1, "%.0f");
            double c = v[PATH_PROVIDER] / v[PATH_RAW_COPY], p = v[PATH_P11PROV] > 0 ? v[PATH_PROVIDER] / v[PATH_P11PROV] : 0;
            bench_num(g, row, 2, c, "%.3f");
            if (have_path(r, alg, PATH_P11PROV))
                bench_num(g, row, 3, p, "%.3f");
            else
                bench_str(g, row, 3, "n/a");
            bench_num(g, row, 4, v[PATH_NOCACHE] / v[PATH_RAW_TOKEN], "%.3f");
            bench_str(g, row, 5, c >= 0.95 && (!have_path(r, alg, PATH_P11PROV) || p >= 1.0) ? "yes" : "no");
        }
    snprintf(g->note, sizeof g->note,
             "Goals: m2mtls >= 0.95 x raw C_Sign on the session copy, and >= 1.00 x pkcs11-provider, at 1 and %d "
             "threads. Ratios of median rounds of the same run.",
             threads);
    return g;
}

int bench_sign(const bench_args *a, bench_machine *mach, bench_table **tables, int *ntables)
{
    sign_run *r = calloc(1, sizeof *r);
    int rc = 1, ncol = a->threads != 1 ? 2 : 1;
    char why[512];
    double (*res)[2][PATHS] = calloc(ALGS, sizeof *res);
    if (r == NULL || res == NULL) {
        free(r);
        free(res);
        return 1;
    }
    r->with_token = a->key == NULL;

    /* libp11 would finalise the module at exit, under the provider: no atexit cleanup. */
    OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
    if (r->with_token) {
        if (!bench_env_setup(&r->env, a->module, a->provider, a->pkcs11_provider))
            goto out;
        bench_machine_init(mach, r->env.token_desc);
        if (r->env.p11prov == NULL)
            fprintf(stderr, "m2mtls bench sign: pkcs11-provider: %s\n", r->env.p11prov_why);
    } else {
        bench_machine_init(mach, "the one of --key (OPENSSL_CONF)");
    }
    if (!load_keys(r, a))
        goto out;
    if (a->count > 0) { /* fixed work, for callgrind: one dump per path */
        *ntables = 0;
        rc = count_run(r, a->count) ? 0 : 1;
        goto out;
    }

    bench_table *t = bench_table_new("");
    snprintf(t->title, sizeof t->title, "signatures per second of %s, median of alternating rounds, %g s per figure; %s",
             a->cpu_clock ? "CPU time per thread (--clock cpu)" : "elapsed time", a->seconds,
             r->have_p11 ? "% = share of the raw C_Sign ceiling (the session copy)"
                         : "no ceiling with --key (the token is not ours)");
    bench_col(t, "algorithm", "algorithm");
    bench_col(t, "path", "path");
    bench_col(t, "per_s_1_thread", "1 thread/s");
    bench_col(t, "pct_of_ceiling_1_thread", "%% ceiling");
    if (ncol == 2) {
        bench_col(t, "per_s_n_threads", "%d threads/s", a->threads);
        bench_col(t, "pct_of_ceiling_n_threads", "%% ceiling");
    }
    tables[(*ntables)++] = t;
    for (int alg = 0; alg < ALGS; alg++) {
        sign_target target[PATHS];
        bench_op ops[PATHS];
        int idx[PATHS], nops = 0;
        if (r->keys[alg][PATH_PROVIDER] == NULL)
            continue; /* --key of the other algorithm */
        for (int p = 0; p < PATHS; p++) {
            if (!have_path(r, alg, p))
                continue;
            target[p] = target_of(r, alg, p);
            ops[nops] = (bench_op){ sign_start, sign_step, sign_stop, &target[p] };
            idx[nops++] = p;
        }
        for (int th = 0; th < ncol; th++) {
            double out[PATHS];
            if (!bench_compare(ops, nops, th ? a->threads : 1, a->seconds, out, why, sizeof why)) {
                fprintf(stderr, "m2mtls bench sign: %s\n", why);
                goto out;
            }
            for (int i = 0; i < nops; i++)
                res[alg][th][idx[i]] = out[i];
        }
        for (int p = 0; p < PATHS; p++) {
            int row = bench_row(t);
            bench_str(t, row, 0, alg_name[alg]);
            if (p == PATH_P11PROV && r->env.p11prov_desc[0])
                bench_str(t, row, 1, r->env.p11prov_desc);
            else
                bench_str(t, row, 1, path_name[p]);
            for (int th = 0; th < ncol; th++) {
                if (!have_path(r, alg, p)) {
                    bench_str(t, row, 2 + 2 * th, r->why[p]);
                    bench_str(t, row, 3 + 2 * th, "");
                    continue;
                }
                bench_num(t, row, 2 + 2 * th, res[alg][th][p], "%.0f");
                if (r->have_p11)
                    bench_num(t, row, 3 + 2 * th, 100.0 * res[alg][th][p] / res[alg][th][PATH_RAW_COPY], "%.1f");
                else
                    bench_str(t, row, 3 + 2 * th, "");
            }
        }
    }
    snprintf(t->note, sizeof t->note,
             "raw C_Sign signs a precomputed SHA-256 digest (CKM_ECDSA, CKM_RSA_PKCS_PSS) in a session of its own per "
             "thread, on the token object or on a session copy of it (C_CopyObject, CKA_TOKEN false); the EVP paths "
             "hash 64 bytes and sign (EVP_DigestSignInit_ex + EVP_DigestSign each time, as libssl). The m2mtls "
             "provider keeps its session key cache on unless said; pkcs11-provider runs with its defaults (session "
             "key cache on). The key-file row is a software key: the cost of the token itself, not a ceiling.");
    if (r->with_token)
        tables[(*ntables)++] = goals_table(r, res, ncol, a->threads);
    rc = 0;
out:
    /* The engine is never finished, the p11 handle never finalised and the
     * other contexts never freed: they share the module until the process exits. */
    for (int alg = 0; alg < ALGS; alg++)
        for (int p = 0; p < PATHS; p++)
            EVP_PKEY_free(r->keys[alg][p]);
    if (r->with_token)
        bench_env_cleanup(&r->env);
    free(r);
    free(res);
    return rc;
}
