/* SPDX-License-Identifier: Apache-2.0 */
/* The TS-0003 10.2 protocol profile on an SSL_CTX, the same on OpenSSL 3.0
 * and on 3.2+ (where libssl rates the CCM8 suites below security level 1).
 *
 * TS-0003's mandatory DTLS suite is ECDHE-ECDSA-AES128-CCM8. OpenSSL >= 3.2
 * counts it as 64 bits of security (its 8-byte tag) and so allows it only at
 * security level 0. Lowering the whole context to level 0 would also let
 * weak keys, signatures and groups through libssl's own checks. Instead the
 * profile wraps the context's security callback and changes one thing: that
 * one suite is rated at its key strength, 128 bits (as OpenSSL 3.0 rates
 * it). Every other check (own certificate, peer chain, groups, signature
 * algorithms, the other rules for ciphers) keeps the context's level. */
#include <pthread.h>
#include <stdlib.h>
#include <openssl/ssl.h>
#include "internal.h"

/* TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 (RFC 7251). */
#define TS0003_DTLS_SUITE_ID  0xC0AEu
#define TS0003_DTLS_SUITE     "ECDHE-ECDSA-AES128-CCM8"
#define TS0003_TLS12_SUITE    "ECDHE-ECDSA-AES128-SHA256"
#define AES128_SECURITY_BITS  128

/* Key exchange. TLS 1.2 and DTLS 1.2: P-256 only (the TS-0003 suites).
 * TLS 1.3 on OpenSSL >= 3.5: the hybrid SecP256r1MLKEM768 first (ML-KEM-768
 * against "harvest now, decrypt later"; its classical half is P-256, the one
 * curve of the profile), then P-256 — a key share for each, so a peer that
 * has no ML-KEM (OpenSSL 3.0) answers with P-256 without a retry. Hybrid
 * groups are TLS 1.3 only: TLS 1.2 still negotiates P-256. */
#if OPENSSL_VERSION_NUMBER >= 0x30500000L
#define TLS_GROUPS "?*SecP256r1MLKEM768:*P-256"
#else
#define TLS_GROUPS "P-256"
#endif
#define DTLS_GROUPS "P-256"

typedef int (*sec_cb_fn)(const SSL *s, const SSL_CTX *ctx, int op, int bits, int nid, void *other, void *ex);

/* The callback the context had before the profile: it stays the judge. */
typedef struct sec_prev {
    sec_cb_fn cb;
} sec_prev;

static int sec_index = -1;
static pthread_once_t sec_once = PTHREAD_ONCE_INIT;

static void sec_prev_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    free(ptr);
}

static void sec_index_init(void)
{
    sec_index = CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL_CTX, 0, NULL, NULL, NULL, sec_prev_free);
}

static int is_ts0003_dtls_suite(int op, const void *other)
{
    return (op & SSL_SECOP_OTHER_TYPE) == SSL_SECOP_OTHER_CIPHER && other != NULL
           && SSL_CIPHER_get_protocol_id(other) == TS0003_DTLS_SUITE_ID;
}

static int ts0003_security_cb(const SSL *s, const SSL_CTX *ctx, int op, int bits, int nid, void *other, void *ex)
{
    /* libssl passes the SSL for connection-level checks, the SSL_CTX otherwise. */
    const SSL_CTX *owner = ctx != NULL ? ctx : s != NULL ? SSL_get_SSL_CTX(s) : NULL;
    const sec_prev *prev = owner != NULL && sec_index >= 0 ? SSL_CTX_get_ex_data(owner, sec_index) : NULL;
    if (prev == NULL || prev->cb == NULL)
        return 0; /* no judge to ask: refuse */
    if (is_ts0003_dtls_suite(op, other) && bits < AES128_SECURITY_BITS)
        bits = AES128_SECURITY_BITS;
    return prev->cb(s, ctx, op, bits, nid, other, ex);
}

static int ctx_is_dtls(SSL_CTX *ctx)
{
    SSL *ssl = SSL_new(ctx);
    int dtls = ssl != NULL && SSL_is_dtls(ssl);
    SSL_free(ssl);
    return dtls;
}

/* Makes the TS-0003 DTLS suite pass CTX's security level (see the top). */
int m2_ctx_allow_ts0003_dtls_suite(SSL_CTX *ctx)
{
    if (!ctx_is_dtls(ctx))
        return 1;
    pthread_once(&sec_once, sec_index_init);
    sec_cb_fn current = SSL_CTX_get_security_callback(ctx);
    if (current == ts0003_security_cb)
        return 1; /* the profile was applied before */
    if (sec_index < 0 || current == NULL)
        return 0;
    sec_prev *prev = malloc(sizeof *prev);
    if (prev == NULL)
        return 0;
    prev->cb = current;
    if (!SSL_CTX_set_ex_data(ctx, sec_index, prev)) {
        free(prev);
        return 0;
    }
    SSL_CTX_set_security_callback(ctx, ts0003_security_cb);
    return 1;
}

static int apply_profile(SSL_CTX *ctx)
{
    if (ctx == NULL) {
        m2_set_error("m2mtls_ctx_apply_ts0003_profile: the SSL_CTX is NULL");
        return 0;
    }
    int dtls = ctx_is_dtls(ctx);
    /* TS-0003 10.2.1 / 10.2.3: the suite each transport must implement. */
    if (!SSL_CTX_set_min_proto_version(ctx, dtls ? DTLS1_2_VERSION : TLS1_2_VERSION)
        || !SSL_CTX_set_cipher_list(ctx, dtls ? TS0003_DTLS_SUITE : TS0003_TLS12_SUITE)
        || !SSL_CTX_set1_groups_list(ctx, dtls ? DTLS_GROUPS : TLS_GROUPS)
        || !SSL_CTX_set1_sigalgs_list(ctx, "ECDSA+SHA256")) {
        char reason[256];
        m2_openssl_reason(reason, sizeof reason);
        m2_set_error("m2mtls_ctx_apply_ts0003_profile: %s", reason);
        return 0;
    }
    if (dtls && !m2_ctx_allow_ts0003_dtls_suite(ctx)) {
        m2_set_error("m2mtls_ctx_apply_ts0003_profile: cannot allow %s at the context's security level",
                     TS0003_DTLS_SUITE);
        return 0;
    }
    return 1;
}

int m2mtls_ctx_apply_ts0003_profile(SSL_CTX *ctx)
{
    m2_err_saved app_errors;
    m2_err_stash(&app_errors); /* our reasons are read from the queue */
    int ok = apply_profile(ctx);
    m2_err_unstash(&app_errors);
    return ok;
}
