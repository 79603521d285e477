/* m2mtls bench sign: ECDSA P-256 (SHA-256) and RSA-2048-PSS (SHA-256, salt =
 * digest length) signatures per second at 1 and N threads, by four paths to
 * the same kind of key:
 *   raw C_Sign   C_SignInit + C_Sign on the token, on a precomputed digest,
 *                one session per thread: the ceiling of anything on the token;
 *   m2mtls       EVP_DigestSignInit + EVP_DigestSign through the provider
 *                (key loaded by pkcs11: URI), as libssl signs;
 *   libp11       the same through libp11's engine, when installed;
 *   key file     the default provider with a software key in a PEM file.
 * The paths alternate in short rounds; each figure is the median round. */
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include "bench.h"
#include "engine.h"
#include "internal.h"
#include "tool.h"

enum { ALG_EC = 0, ALG_RSA = 1 };
enum { PATH_RAW = 0, PATH_PROVIDER, PATH_ENGINE, PATH_FILE, PATHS };
static const char *const path_name[PATHS] = { "raw C_Sign (ceiling)", "m2mtls provider", "libp11 engine",
                                              "default provider, key file" };

typedef struct sign_target {
    int alg, path;
    EVP_PKEY *key;          /* EVP paths */
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

const char *m2p_ckr_name(CK_RV rv); /* provider/errors.c */

static const unsigned char msg[64] = "m2mtls bench: the message signed, 64 bytes like a TLS 1.2 digest";

static void *sign_start(void *arg, char *err, size_t len)
{
    sign_target *t = arg;
    sign_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return NULL;
    st->t = t;
    if (t->path == PATH_RAW) {
        EVP_Digest(msg, sizeof msg, st->digest, NULL, EVP_sha256(), NULL); /* same every time */
        st->m = *t->m; /* own copy: its error buffer */
        if (!p11_sign_session(&st->m, t->slot, BENCH_PIN, t->label, &st->s, &st->k)) {
            snprintf(err, len, "%s", st->m.error);
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
    if (t->path == PATH_RAW) {
        CK_RSA_PKCS_PSS_PARAMS pss = { CKM_SHA256, CKG_MGF1_SHA256, 32 };
        CK_MECHANISM mech = t->alg == ALG_EC ? (CK_MECHANISM){ CKM_ECDSA, NULL, 0 }
                                             : (CK_MECHANISM){ CKM_RSA_PKCS_PSS, &pss, sizeof pss };
        CK_RV rv = p11_sign(&st->m, st->s, st->k, &mech, st->digest, sizeof st->digest, sig, &n);
        if (rv != CKR_OK) {
            snprintf(err, len, "C_Sign: %s", m2p_ckr_name(rv));
            return 0;
        }
        return 1;
    }
    EVP_PKEY_CTX *pctx = NULL;
    int ok = EVP_DigestSignInit(st->md, &pctx, EVP_sha256(), NULL, t->key) == 1;
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
    if (st->t->path == PATH_RAW)
        st->m.f->C_CloseSession(st->s);
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

int bench_sign(const bench_args *a, bench_machine *mach, bench_table **tables, int *ntables)
{
    bench_env env;
    int rc = 1, with_token = a->key == NULL;
    EVP_PKEY *keys[2][PATHS] = { { NULL } };
    char why[512], engine_why[256] = "";
    p11 m = { 0 };
    int have_p11 = 0;

    /* libp11 would finalise the module at exit, under the provider: no atexit cleanup. */
    OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
    if (with_token) {
        if (!bench_env_setup(&env, a->module, a->provider))
            goto out;
        bench_machine_init(mach, env.token_desc);
        for (int alg = 0; alg < 2; alg++) {
            keys[alg][PATH_PROVIDER] = load_file(alg == ALG_EC ? BENCH_EC_URI : BENCH_RSA_URI);
            keys[alg][PATH_FILE] = load_file(alg == ALG_EC ? env.ec_file : env.rsa_file);
            if (keys[alg][PATH_PROVIDER] == NULL || keys[alg][PATH_FILE] == NULL)
                goto out;
        }
        /* After the provider: its C_Initialize came first, ours only shares it. */
        if (!p11_open(&m, env.module) || !p11_find_token(&m, BENCH_TOKEN, &env.slot)) {
            fprintf(stderr, "m2mtls bench: %s\n", m.error);
            goto out;
        }
        have_p11 = 1;
        void *engine = bench_engine_open(env.module, BENCH_PIN, engine_why, sizeof engine_why);
        for (int alg = 0; engine != NULL && alg < 2; alg++)
            keys[alg][PATH_ENGINE] = bench_engine_key(engine, alg == ALG_EC ? BENCH_EC_URI : BENCH_RSA_URI, engine_why,
                                                      sizeof engine_why);
    } else {
        /* A key of the user's, through the provider that OPENSSL_CONF loads. */
        bench_machine_init(mach, "the one of --key (OPENSSL_CONF)");
        EVP_PKEY *k = load_file(a->key);
        if (k == NULL)
            goto out;
        int alg = EVP_PKEY_is_a(k, "RSA") ? ALG_RSA : ALG_EC;
        keys[alg][PATH_PROVIDER] = k;
        keys[alg][PATH_FILE] = alg == ALG_RSA ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
        snprintf(engine_why, sizeof engine_why, "n/a with --key");
        memset(&env, 0, sizeof env);
    }

    if (a->count > 0) { /* fixed work, for callgrind: one dump per path */
        int dump = 0, started = 0;
        for (int alg = 0; alg < 2; alg++)
            for (int p = 0; p < PATHS; p++) {
                if (keys[alg][PATH_PROVIDER] == NULL || (p == PATH_RAW ? !have_p11 : keys[alg][p] == NULL))
                    continue;
                sign_target target = { .alg = alg, .path = p, .key = keys[alg][p], .m = &m, .slot = env.slot,
                                       .label = alg == ALG_EC ? "ec" : "rsa" };
                void *st = sign_start(&target, why, sizeof why);
                int ok = st != NULL;
                for (int i = 0; ok && i < 3; i++) /* warm up: lazy initialisation */
                    ok = sign_step(st, why, sizeof why);
                if (!started) {
                    CALLGRIND_START_INSTRUMENTATION;
                    started = 1;
                }
                CALLGRIND_ZERO_STATS;
                for (int i = 0; ok && i < a->count; i++)
                    ok = sign_step(st, why, sizeof why);
                CALLGRIND_DUMP_STATS_AT(path_name[p]);
                if (st != NULL)
                    sign_stop(st);
                if (!ok) {
                    fprintf(stderr, "m2mtls bench sign: %s\n", why);
                    goto out;
                }
                printf("dump %d: %s, %s: %d signatures\n", ++dump, alg == ALG_EC ? "ECDSA P-256" : "RSA-2048-PSS",
                       path_name[p], a->count);
            }
        *ntables = 0;
        rc = 0;
        goto out;
    }
    bench_table *t = bench_table_new("");
    snprintf(t->title, sizeof t->title, "signatures/s, median of alternating rounds, %g s per figure; %s", a->seconds,
             have_p11 ? "% = share of the raw C_Sign ceiling" : "no ceiling with --key (the token is not ours)");
    bench_col(t, "algorithm", "algorithm");
    bench_col(t, "path", "path");
    bench_col(t, "per_s_1_thread", "1 thread/s");
    bench_col(t, "pct_of_ceiling_1_thread", "%% ceiling");
    if (a->threads != 1) {
        bench_col(t, "per_s_n_threads", "%d threads/s", a->threads);
        bench_col(t, "pct_of_ceiling_n_threads", "%% ceiling");
    }
    tables[(*ntables)++] = t;
    for (int alg = 0; alg < 2; alg++) {
        sign_target target[PATHS];
        bench_op ops[PATHS];
        int idx[PATHS], nops = 0;
        if (keys[alg][PATH_PROVIDER] == NULL)
            continue; /* --key of the other algorithm */
        for (int p = 0; p < PATHS; p++) {
            if (p == PATH_RAW ? !have_p11 : keys[alg][p] == NULL)
                continue;
            target[p] = (sign_target){ .alg = alg, .path = p, .key = keys[alg][p], .m = &m, .slot = env.slot,
                                       .label = alg == ALG_EC ? "ec" : "rsa" };
            ops[nops] = (bench_op){ sign_start, sign_step, sign_stop, &target[p] };
            idx[nops++] = p;
        }
        double r[2][PATHS] = { { 0 } };
        for (int th = 0; th < (a->threads != 1 ? 2 : 1); th++) {
            double out[PATHS];
            if (!bench_compare(ops, nops, th ? a->threads : 1, a->seconds, out, why, sizeof why)) {
                fprintf(stderr, "m2mtls bench sign: %s\n", why);
                goto out;
            }
            for (int i = 0; i < nops; i++)
                r[th][idx[i]] = out[i];
        }
        for (int p = 0; p < PATHS; p++) {
            int row = bench_row(t);
            bench_str(t, row, 0, alg == ALG_EC ? "ECDSA P-256" : "RSA-2048-PSS");
            bench_str(t, row, 1, path_name[p]);
            int have = p == PATH_RAW ? have_p11 : keys[alg][p] != NULL;
            for (int th = 0; th < (a->threads != 1 ? 2 : 1); th++) {
                if (!have) {
                    bench_str(t, row, 2 + 2 * th, p == PATH_ENGINE ? engine_why : "n/a with --key");
                    bench_str(t, row, 3 + 2 * th, "");
                    continue;
                }
                bench_num(t, row, 2 + 2 * th, r[th][p], "%.0f");
                if (have_p11)
                    bench_num(t, row, 3 + 2 * th, 100.0 * r[th][p] / r[th][PATH_RAW], "%.1f");
                else
                    bench_str(t, row, 3 + 2 * th, "");
            }
        }
    }
    snprintf(t->note, sizeof t->note,
             "raw C_Sign signs a precomputed SHA-256 digest (CKM_ECDSA, CKM_RSA_PKCS_PSS); the EVP paths hash "
             "64 bytes and sign (EVP_DigestSignInit + EVP_DigestSign each time). The key-file row is a software "
             "key: the cost of the token itself, not a ceiling.");
    rc = 0;
out:
    /* The engine is never finished and the p11 handle never finalised: the
     * provider shares the module until the process exits. */
    for (int alg = 0; alg < 2; alg++)
        for (int p = 0; p < PATHS; p++)
            EVP_PKEY_free(keys[alg][p]);
    if (with_token)
        bench_env_cleanup(&env);
    return rc;
}
