/* SPDX-License-Identifier: Apache-2.0 */
/* ECDSA P-256 signatures per second through the provider (EVP_DigestSignInit +
 * EVP_DigestSign per signature, SHA-256 over 64 bytes) at 1 and 2 threads, next
 * to raw C_SignInit + C_Sign (CKM_ECDSA over a 32-byte hash, one session per
 * thread) on the same SoftHSM token in the same run. The four measurements are
 * interleaved over ROUNDS rounds and the best round of each is reported, so
 * that other load on the machine hits both sides alike.
 * usage: bench_sign [seconds-per-measurement]   (default 2) */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>

#include "pkcs11.h" /* common/ */
#include "prov_fixture.h"

static double seconds = 2.0;
#define ROUNDS 3
static OSSL_LIB_CTX *ctx;
static EVP_PKEY *key;
static CK_FUNCTION_LIST *f;
static CK_SLOT_ID slot;
static volatile int stop;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *prov_worker(void *arg)
{
    long *count = arg;
    unsigned char msg[64], sig[80];
    EVP_MD_CTX *m = EVP_MD_CTX_new();

    memset(msg, 7, sizeof(msg));
    while (!stop) {
        size_t len = sizeof(sig);

        if (EVP_DigestSignInit_ex(m, NULL, "SHA256", ctx, NULL, key, NULL) != 1
            || EVP_DigestSign(m, sig, &len, msg, sizeof(msg)) != 1) {
            ERR_print_errors_fp(stderr);
            *count = -1;
            break;
        }
        (*count)++;
    }
    EVP_MD_CTX_free(m);
    return NULL;
}

static void *raw_worker(void *arg)
{
    long *count = arg;
    CK_SESSION_HANDLE s;
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl[2] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_LABEL, "ec", 2 } };
    CK_OBJECT_HANDLE h;
    CK_ULONG n = 0;
    CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
    unsigned char hash[32], sig[64];

    memset(hash, 9, sizeof(hash));
    if (f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK) {
        *count = -1;
        return NULL;
    }
    f->C_Login(s, CKU_USER, (CK_UTF8CHAR *)FX_PIN, 4);     /* or already logged in */
    if (f->C_FindObjectsInit(s, tmpl, 2) != CKR_OK || f->C_FindObjects(s, &h, 1, &n) != CKR_OK
        || n != 1) {
        *count = -1;
        return NULL;
    }
    f->C_FindObjectsFinal(s);
    while (!stop) {
        CK_ULONG len = sizeof(sig);

        if (f->C_SignInit(s, &mech, h) != CKR_OK || f->C_Sign(s, hash, 32, sig, &len) != CKR_OK) {
            *count = -1;
            break;
        }
        (*count)++;
    }
    f->C_CloseSession(s);
    return NULL;
}

static double run(void *(*fn)(void *), int threads)
{
    pthread_t t[2];
    long counts[2] = { 0, 0 };
    double t0, t1;
    int i;

    stop = 0;
    t0 = now();
    for (i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, fn, &counts[i]);
    while (now() - t0 < seconds) {
        struct timespec ts = { 0, 20000000 };

        nanosleep(&ts, NULL);
    }
    stop = 1;
    for (i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    t1 = now();
    for (i = 0; i < threads; i++)
        if (counts[i] < 0)
            return -1;
    return (double)(counts[0] + counts[1]) / (t1 - t0);
}

int main(int argc, char **argv)
{
    fx_t fx;
    void *dl, *sym;
    CK_C_GetFunctionList gfl;
    CK_SLOT_ID slots[8];
    CK_ULONG n = 8, i;
    double r[2][2];
    int th, round;

    if (argc > 1)
        seconds = atof(argv[1]);
    if (!fx_setup(&fx, FX_KEY_EC) || (ctx = fx_libctx(fx.conf)) == NULL
        || (key = fx_load(ctx, FX_EC_URI)) == NULL) {
        ERR_print_errors_fp(stderr);
        fx_teardown(&fx);
        return 1;
    }
    /* the module instance the provider loaded */
    dl = dlopen(M2P_SOFTHSM, RTLD_NOW | RTLD_NOLOAD);
    sym = dl != NULL ? dlsym(dl, "C_GetFunctionList") : NULL;
    if (sym == NULL) {
        fprintf(stderr, "SoftHSM not loaded\n");
        return 1;
    }
    memcpy(&gfl, &sym, sizeof(gfl));
    gfl(&f);
    f->C_GetSlotList(CK_TRUE, slots, &n);
    for (i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;

        if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK && memcmp(ti.label, FX_TOKEN " ", 4) == 0)
            slot = slots[i];
    }
    memset(r, 0, sizeof(r));
    for (round = 0; round < ROUNDS; round++) {
        for (th = 1; th <= 2; th++) {
            double p = run(prov_worker, th), w = run(raw_worker, th);

            if (p < 0 || w < 0) {
                fprintf(stderr, "signing failed\n");
                return 1;
            }
            if (p > r[th - 1][0])
                r[th - 1][0] = p;
            if (w > r[th - 1][1])
                r[th - 1][1] = w;
        }
    }
    printf("ECDSA P-256 (SHA-256) on SoftHSM, best of %d rounds of %.1f s\n", ROUNDS, seconds);
    printf("%-8s %14s %14s %8s\n", "threads", "provider/s", "raw C_Sign/s", "ratio");
    for (th = 1; th <= 2; th++)
        printf("%-8d %14.0f %14.0f %7.1f%%\n", th, r[th - 1][0], r[th - 1][1],
               100.0 * r[th - 1][0] / r[th - 1][1]);
    dlclose(dl);
    EVP_PKEY_free(key);
    fx_libctx_free(ctx);
    fx_teardown(&fx);
    return r[0][0] > 0 && r[1][0] > 0 && r[0][1] > 0 && r[1][1] > 0 ? 0 : 1;
}
