/* SPDX-License-Identifier: Apache-2.0 */
/* The entity's own credential (TS-0003 Credential Configuration). The
 * TS-0003 10.2 protocol profile is in profile.c. */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/store.h>
#include <openssl/ui.h>
#include "internal.h"
#include "keyref.h"

/* The URI in a key reference file, or NULL with WHY. */
char *m2_keyref_uri(const char *file, char *why, size_t why_len)
{
    ERR_set_mark(); /* what fails here is said in WHY, not left in the queue */
    BIO *b = BIO_new_file(file, "r");
    char reason[200] = "";
    char *uri = m2c_keyref_pem_read(b, reason, sizeof reason);
    if (uri == NULL)
        snprintf(why, why_len, "%s: %s", file, reason);
    BIO_free(b);
    ERR_pop_to_mark();
    return uri;
}

/* A file, a key reference PEM or a pkcs11: URI: OSSL_STORE reaches all three,
 * the last two through the m2mtls provider when openssl.cnf loads it. */
/* OpenSSL's decoders drop the provider's error when a key reference fails
 * to load ("STORE routines: unsupported"). Asking the URI itself brings the
 * real reason back ("C_Login: CKR_PIN_INCORRECT"); the provider never
 * presents a refused PIN twice, so this costs the token no login attempt. */
static void explain_keyref_failure(const char *ref, char *why, size_t why_len)
{
    char tmp[64];
    char *uri = strncmp(ref, "pkcs11:", 7) != 0 ? m2_keyref_uri(ref, tmp, sizeof tmp) : NULL;
    if (uri == NULL)
        return;
    m2_err_discard_own(); /* the caller read its reasons already */
    OSSL_STORE_CTX *store = OSSL_STORE_open(uri, NULL, NULL, NULL, NULL);
    OSSL_STORE_INFO *info = NULL;
    if (store != NULL) {
        OSSL_STORE_expect(store, OSSL_STORE_INFO_PKEY);
        info = OSSL_STORE_load(store);
    }
    if (info == NULL && ERR_peek_error() != 0) {
        size_t n = strlen(why);
        snprintf(why + n, why_len - n, " (key reference to %s: ", uri);
        n = strlen(why);
        m2_openssl_reason(why + n, why_len - n);
        n = strlen(why);
        snprintf(why + n, why_len - n, ")");
    }
    OSSL_STORE_INFO_free(info);
    OSSL_STORE_close(store);
    m2_err_discard_own();
    OPENSSL_free(uri);
}

static EVP_PKEY *load_private_key(const char *ref, pem_password_cb *cb, void *cb_data, char *why,
                                  size_t why_len)
{
    /* A path that is not there: say so, rather than OSSL_STORE's "unregistered scheme". */
    if (strncmp(ref, "pkcs11:", 7) != 0 && strncmp(ref, "file:", 5) != 0 && access(ref, R_OK) != 0) {
        snprintf(why, why_len, "%s", strerror(errno));
        return NULL;
    }
    UI_METHOD *ui = NULL;
    if (cb != NULL)
        ui = UI_UTIL_wrap_read_pem_callback(cb, 0);
    OSSL_STORE_CTX *store = OSSL_STORE_open(ref, ui, cb_data, NULL, NULL);
    EVP_PKEY *key = NULL;
    if (store != NULL) {
        OSSL_STORE_expect(store, OSSL_STORE_INFO_PKEY);
        while (key == NULL && !OSSL_STORE_eof(store)) {
            OSSL_STORE_INFO *info = OSSL_STORE_load(store);
            if (info == NULL) {
                if (OSSL_STORE_error(store))
                    break;
                continue;
            }
            if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
                key = OSSL_STORE_INFO_get1_PKEY(info);
            OSSL_STORE_INFO_free(info);
        }
        OSSL_STORE_close(store);
    }
    UI_destroy_method(ui);
    if (key == NULL) {
        m2_openssl_reason(why, why_len);
        if (store != NULL && strstr(why, "unknown OpenSSL error") != NULL)
            snprintf(why, why_len, "no private key found there");
        explain_keyref_failure(ref, why, why_len);
    }
    return key;
}

EVP_PKEY *m2_load_private_key(const char *ref, pem_password_cb *cb, void *cb_data, char *why, size_t why_len)
{
    m2_err_saved app_errors;
    m2_err_stash(&app_errors);
    EVP_PKEY *key = load_private_key(ref, cb, cb_data, why, why_len);
    m2_err_unstash(&app_errors);
    return key;
}

static int use_credential(SSL_CTX *ctx, const m2mtls_policy *p)
{
    if (ctx == NULL || p == NULL) {
        m2_set_error("m2mtls_ctx_use_credential: %s is NULL", ctx == NULL ? "the SSL_CTX" : "the policy");
        return 0;
    }
    if (p->cert == NULL || p->key_ref == NULL) {
        m2_set_error("%s: the policy has no %s line: no own credential to use", p->path,
                     p->cert == NULL ? "cert" : "key");
        return 0;
    }
    char reason[256];
    if (!SSL_CTX_use_certificate(ctx, p->cert) || !SSL_CTX_clear_chain_certs(ctx)) {
        m2_openssl_reason(reason, sizeof reason);
        m2_set_error("%s: cert: cannot use the certificate: %s", p->path, reason);
        return 0;
    }
    for (int i = 0; i < sk_X509_num(p->chain); i++)
        if (!SSL_CTX_add1_chain_cert(ctx, sk_X509_value(p->chain, i))) {
            m2_openssl_reason(reason, sizeof reason);
            m2_set_error("%s: cert: cannot add chain certificate %d: %s", p->path, i + 1, reason);
            return 0;
        }
    m2_err_discard_own();
    EVP_PKEY *key = load_private_key(p->key_ref, SSL_CTX_get_default_passwd_cb(ctx),
                                        SSL_CTX_get_default_passwd_cb_userdata(ctx), reason, sizeof reason);
    if (key == NULL) {
        m2_set_error("%s: key: cannot load a private key from %s: %s", p->path, p->key_ref, reason);
        return 0;
    }
    int ok = SSL_CTX_use_PrivateKey(ctx, key) && SSL_CTX_check_private_key(ctx);
    EVP_PKEY_free(key);
    if (!ok) {
        m2_openssl_reason(reason, sizeof reason);
        m2_set_error("%s: key %s does not fit the certificate: %s", p->path, p->key_ref, reason);
        return 0;
    }
    return 1;
}

int m2mtls_ctx_use_credential(SSL_CTX *ctx, const m2mtls_policy *p)
{
    m2_err_saved app_errors;
    m2_err_stash(&app_errors); /* our reasons are read from the queue */
    int ok = use_credential(ctx, p);
    m2_err_unstash(&app_errors);
    return ok;
}
