/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The provider context's services to every operation: the private fallback
 * library context (only the default provider: digests and public-key
 * verification never recurse into this provider), its digest cache, and
 * reading the core's BIOs. Uses only the error queue (errors.c); the entry
 * point that makes the context (init.c) is above it.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/provider.h>

#include "provider.h"

static OSSL_FUNC_BIO_read_ex_fn *c_bio_read_ex;

void m2p_core_bio_init(OSSL_FUNC_BIO_read_ex_fn *read_ex)
{
    c_bio_read_ex = read_ex;
}

int m2p_core_bio_read_all(OSSL_CORE_BIO *cin, size_t max, unsigned char **data, size_t *len)
{
    size_t cap = 4096, n = 0, got;
    unsigned char *buf, *nb;

    *data = NULL;
    *len = 0;
    if (c_bio_read_ex == NULL || (buf = OPENSSL_malloc(cap)) == NULL)
        return 0;
    for (;;) {
        got = 0;
        if (!c_bio_read_ex(cin, buf + n, cap - n, &got) || got == 0)
            break;
        n += got;
        if (n == cap) {
            if (cap >= max)
                break;      /* a key reference is never that big */
            if ((nb = OPENSSL_realloc(buf, cap * 2)) == NULL) {
                OPENSSL_free(buf);
                return 0;
            }
            buf = nb;
            cap *= 2;
        }
    }
    *data = buf;
    *len = n;
    return 1;
}

OSSL_LIB_CTX *m2p_fallback_ctx(m2p_prov *prov)
{
    OSSL_LIB_CTX *ctx = ATOMIC_GET(prov->fbctx);

    if (ctx != NULL)
        return ctx;
    pthread_mutex_lock(&prov->fb_lock);
    if (prov->fbctx == NULL) {
        OSSL_LIB_CTX *c = OSSL_LIB_CTX_new();
        OSSL_PROVIDER *p = c != NULL ? OSSL_PROVIDER_load(c, "default") : NULL;

        if (p == NULL) {
            OSSL_LIB_CTX_free(c);
            M2P_ERR(M2P_R_INTERNAL, "cannot load the default provider in a private context");
        } else {
            prov->fbprov = p;
            ATOMIC_SET(prov->fbctx, c);
        }
    }
    ctx = prov->fbctx;
    pthread_mutex_unlock(&prov->fb_lock);
    return ctx;
}

EVP_MD *m2p_fetch_md(m2p_prov *prov, const char *name)
{
    OSSL_LIB_CTX *ctx = m2p_fallback_ctx(prov);
    EVP_MD *md = NULL, *c;
    size_t i, n = sizeof(prov->md_cache) / sizeof(prov->md_cache[0]);

    if (ctx == NULL || name == NULL)
        return NULL;
    /* entries are only ever appended: read them without the lock */
    for (i = 0; i < n && (c = ATOMIC_GET(prov->md_cache[i].md)) != NULL; i++) {
        if (strcmp(prov->md_cache[i].name, name) == 0) {
            EVP_MD_up_ref(c);
            return c;
        }
    }
    if ((md = EVP_MD_fetch(ctx, name, NULL)) == NULL)
        return NULL;
    pthread_mutex_lock(&prov->fb_lock);
    for (i = 0; i < n; i++) {
        if (prov->md_cache[i].md == NULL) {
            if (strlen(name) < sizeof(prov->md_cache[i].name) && EVP_MD_up_ref(md)) {
                strcpy(prov->md_cache[i].name, name);
                ATOMIC_SET(prov->md_cache[i].md, md);
            }
            break;
        }
        if (strcmp(prov->md_cache[i].name, name) == 0)
            break;  /* another thread cached it meanwhile */
    }
    pthread_mutex_unlock(&prov->fb_lock);
    return md;
}

void m2p_fallback_free(m2p_prov *prov)
{
    for (size_t i = 0; i < sizeof(prov->md_cache) / sizeof(prov->md_cache[0]); i++)
        EVP_MD_free(prov->md_cache[i].md);
    if (prov->fbprov != NULL)
        OSSL_PROVIDER_unload(prov->fbprov);
    OSSL_LIB_CTX_free(prov->fbctx);
}
