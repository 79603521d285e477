/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The key object: an EC or RSA key held by reference to a token object (its
 * public part read from the token), or a soft key delegated to the fallback
 * context (see provider.h). Signing with a token key finds the object (by
 * CKA_ID / CKA_LABEL, again after every recovery) and signs in a pooled
 * session, with bounded recovery.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/x509.h>

#include "provider.h"

static void key_uncache(m2p_key *k);

m2p_key *m2p_key_new(m2p_prov *prov, int type)
{
    m2p_key *k = OPENSSL_zalloc(sizeof(*k));

    if (k == NULL)
        return NULL;
    k->refcnt = 1;
    k->prov = prov;
    k->type = type;
    k->cls = CKO_PUBLIC_KEY;
    pthread_mutex_init(&k->lock, NULL);
    return k;
}

int m2p_key_up_ref(m2p_key *k)
{
    __atomic_add_fetch(&k->refcnt, 1, __ATOMIC_RELAXED);
    return 1;
}

void m2p_key_free(m2p_key *k)
{
    if (k == NULL || __atomic_sub_fetch(&k->refcnt, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    key_uncache(k);
    OPENSSL_free(k->id);
    OPENSSL_free(k->label);
    OPENSSL_free(k->pub);
    OPENSSL_free(k->n);
    OPENSSL_free(k->e);
    EVP_PKEY_free(k->pubkey);
    pthread_mutex_destroy(&k->lock);
    OPENSSL_free(k);
}

int m2p_key_is_private(const m2p_key *k)
{
    if (k->soft)
        return (k->soft_sel & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0;
    return k->tok != NULL && k->cls == CKO_PRIVATE_KEY;
}

int m2p_ec_supported_curve(int nid)
{
    return nid == NID_X9_62_prime256v1 || nid == NID_secp384r1 || nid == NID_secp521r1;
}

size_t m2p_ec_order_bytes(int nid)
{
    switch (nid) {
    case NID_X9_62_prime256v1:
        return 32;
    case NID_secp384r1:
        return 48;
    case NID_secp521r1:
        return 66;
    default:
        return 0;
    }
}

/* Normalises an encoded EC point to the uncompressed form. */
int m2p_ec_point_uncompressed(m2p_prov *prov, int nid, const unsigned char *in, size_t inlen,
                                 unsigned char **out, size_t *outlen)
{
    EC_GROUP *g = EC_GROUP_new_by_curve_name_ex(m2p_fallback_ctx(prov), NULL, nid);
    EC_POINT *p = NULL;
    int ok = 0;

    if (g == NULL || (p = EC_POINT_new(g)) == NULL)
        goto done;
    if (!EC_POINT_oct2point(g, p, in, inlen, NULL))
        goto done;
    *outlen = EC_POINT_point2buf(g, p, POINT_CONVERSION_UNCOMPRESSED, out, NULL);
    ok = *outlen > 0;
done:
    EC_POINT_free(p);
    EC_GROUP_free(g);
    return ok;
}

OSSL_PARAM *m2p_key_public_params(const m2p_key *k, int selection)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    BIGNUM *n = NULL, *e = NULL;    /* the builder keeps pointers to them until to_param */
    int pub = (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0;

    if (bld == NULL)
        return NULL;
    if (k->type == M2P_KEY_EC) {
        if ((pub || (selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS))
            && !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, OBJ_nid2sn(k->nid), 0))
            goto done;
        if (pub && !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, k->pub, k->pub_len))
            goto done;
    } else if (pub) {
        n = BN_bin2bn(k->n, (int)k->n_len, NULL);
        e = BN_bin2bn(k->e, (int)k->e_len, NULL);
        if (n == NULL || e == NULL || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n)
            || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
            goto done;
    }
    params = OSSL_PARAM_BLD_to_param(bld);
done:
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return params;
}

int m2p_key_finish_public(m2p_key *k)
{
    OSSL_PARAM *params = m2p_key_public_params(k, OSSL_KEYMGMT_SELECT_PUBLIC_KEY);
    EVP_PKEY_CTX *pctx = NULL;
    EVP_PKEY *pk = NULL;
    int ok = 0;

    if (params == NULL)
        return 0;
    pctx = EVP_PKEY_CTX_new_from_name(m2p_fallback_ctx(k->prov),
                                      k->type == M2P_KEY_EC ? "EC" : "RSA", NULL);
    if (pctx == NULL || EVP_PKEY_fromdata_init(pctx) <= 0
        || EVP_PKEY_fromdata(pctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        M2P_ERR(M2P_R_INTERNAL, "cannot build the public key");
        goto done;
    }
    EVP_PKEY_free(k->pubkey);
    k->pubkey = pk;
    ok = 1;
done:
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    return ok;
}

/* ---- keys from token objects ------------------------------------------------ */

static int ec_nid_from_params(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    ASN1_OBJECT *obj = d2i_ASN1_OBJECT(NULL, &p, (long)len);
    int nid;

    if (obj == NULL)
        return NID_undef;
    nid = OBJ_obj2nid(obj);
    ASN1_OBJECT_free(obj);
    return nid;
}

/* CKA_EC_POINT is a DER OCTET STRING (some tokens give the raw point). */
static int ec_point_from_attr(const unsigned char *v, size_t len, unsigned char **out,
                              size_t *outlen)
{
    const unsigned char *p = v;
    ASN1_OCTET_STRING *os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)len);

    if (os != NULL && (size_t)(p - v) == len) {
        *outlen = (size_t)ASN1_STRING_length(os);
        *out = OPENSSL_memdup(ASN1_STRING_get0_data(os), *outlen);
    } else {
        *outlen = len;
        *out = OPENSSL_memdup(v, len);
    }
    ASN1_OCTET_STRING_free(os);
    return *out != NULL;
}

static int ec_point_from_cert(const unsigned char *der, size_t len, int nid, unsigned char **out,
                              size_t *outlen)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    const unsigned char *pk;
    int pklen, ok = 0;
    X509_PUBKEY *xpk;

    (void)nid;
    if (x == NULL)
        return 0;
    xpk = X509_get_X509_PUBKEY(x);
    if (xpk != NULL && X509_PUBKEY_get0_param(NULL, &pk, &pklen, NULL, xpk) && pklen > 0) {
        *out = OPENSSL_memdup(pk, (size_t)pklen);
        *outlen = (size_t)pklen;
        ok = *out != NULL;
    }
    X509_free(x);
    return ok;
}

/* Public point for an EC private key: the public key or certificate with its CKA_ID. */
static int ec_find_public(m2p_key *k, CK_SESSION_HANDLE s)
{
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_ATTRIBUTE tmpl[2] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_ID, k->id, k->id_len } };
    CK_OBJECT_HANDLE h;
    unsigned char *v;
    size_t len;
    int pass;

    if (k->id == NULL)
        return 0;
    for (pass = 0; pass < 2; pass++) {
        cls = pass == 0 ? CKO_PUBLIC_KEY : CKO_CERTIFICATE;
        if (m2p_find(k->tok, s, tmpl, 2, &h, 1) != 1)
            continue;
        if (pass == 0) {
            if (m2p_get_attr(k->tok, s, h, CKA_EC_POINT, &v, &len) != CKR_OK)
                continue;
            if (ec_point_from_attr(v, len, &k->pub, &k->pub_len)) {
                OPENSSL_free(v);
                return 1;
            }
        } else {
            if (m2p_get_attr(k->tok, s, h, CKA_VALUE, &v, &len) != CKR_OK)
                continue;
            if (ec_point_from_cert(v, len, k->nid, &k->pub, &k->pub_len)) {
                OPENSSL_free(v);
                return 1;
            }
        }
        OPENSSL_free(v);
    }
    return 0;
}

m2p_key *m2p_key_from_object(m2p_prov *prov, m2p_token *tok, CK_SESSION_HANDLE s,
                             CK_OBJECT_HANDLE h, CK_OBJECT_CLASS cls)
{
    unsigned char *v = NULL;
    size_t len;
    CK_KEY_TYPE kt;
    m2p_key *k = NULL;
    CK_RV rv;

    if ((rv = m2p_get_attr(tok, s, h, CKA_KEY_TYPE, &v, &len)) != CKR_OK || len != sizeof(kt)) {
        M2P_ERR_CK("C_GetAttributeValue(CKA_KEY_TYPE)", rv);
        OPENSSL_free(v);
        return NULL;
    }
    memcpy(&kt, v, sizeof(kt));
    OPENSSL_free(v);
    if (kt != CKK_EC && kt != CKK_RSA) {
        M2P_ERR(M2P_R_UNSUPPORTED, "key type 0x%lx is not EC or RSA", (unsigned long)kt);
        return NULL;
    }
    if ((k = m2p_key_new(prov, kt == CKK_EC ? M2P_KEY_EC : M2P_KEY_RSA)) == NULL)
        return NULL;
    k->tok = tok;
    k->cls = cls;
    k->handle = h;
    pthread_mutex_lock(&tok->lock);
    k->gen = tok->gen;
    pthread_mutex_unlock(&tok->lock);
    if (m2p_get_attr(tok, s, h, CKA_ID, &v, &len) == CKR_OK && len > 0) {
        k->id = v;
        k->id_len = len;
    } else {
        OPENSSL_free(v);
    }
    if (m2p_get_attr(tok, s, h, CKA_LABEL, &v, &len) == CKR_OK && len > 0
        && memchr(v, '\0', len) == NULL) {
        k->label = (char *)v;
    } else {
        OPENSSL_free(v);
    }
    if (k->type == M2P_KEY_EC) {
        if ((rv = m2p_get_attr(tok, s, h, CKA_EC_PARAMS, &v, &len)) != CKR_OK) {
            M2P_ERR_CK("C_GetAttributeValue(CKA_EC_PARAMS)", rv);
            goto err;
        }
        k->nid = ec_nid_from_params(v, len);
        OPENSSL_free(v);
        if (!m2p_ec_supported_curve(k->nid)) {
            M2P_ERR(M2P_R_UNSUPPORTED, "EC key on an unsupported curve (only P-256, P-384, P-521)");
            goto err;
        }
        if (cls == CKO_PUBLIC_KEY) {
            if ((rv = m2p_get_attr(tok, s, h, CKA_EC_POINT, &v, &len)) != CKR_OK) {
                M2P_ERR_CK("C_GetAttributeValue(CKA_EC_POINT)", rv);
                goto err;
            }
            if (!ec_point_from_attr(v, len, &k->pub, &k->pub_len)) {
                OPENSSL_free(v);
                goto err;
            }
            OPENSSL_free(v);
        } else if (!ec_find_public(k, s)) {
            M2P_ERR(M2P_R_NOT_FOUND,
                    "no public key or certificate with the same CKA_ID as the EC private key");
            goto err;
        }
        {
            unsigned char *u = NULL;
            size_t ulen = 0;

            if (!m2p_ec_point_uncompressed(prov, k->nid, k->pub, k->pub_len, &u, &ulen)) {
                M2P_ERR(M2P_R_INTERNAL, "the token's EC point is invalid");
                goto err;
            }
            OPENSSL_free(k->pub);
            k->pub = u;
            k->pub_len = ulen;
        }
    } else {
        if ((rv = m2p_get_attr(tok, s, h, CKA_MODULUS, &k->n, &k->n_len)) != CKR_OK
            || (rv = m2p_get_attr(tok, s, h, CKA_PUBLIC_EXPONENT, &k->e, &k->e_len)) != CKR_OK) {
            M2P_ERR_CK("C_GetAttributeValue(CKA_MODULUS)", rv);
            goto err;
        }
    }
    if (!m2p_key_finish_public(k))
        goto err;
    return k;
err:
    m2p_key_free(k);
    return NULL;
}

/* ---- the handle to sign with: token object or session copy ------------------ */

/* The token object, valid for module generation gen (found again by CKA_ID /
 * CKA_LABEL after every recovery); CKR_OK or a CKR_. */
static CK_RV key_object(m2p_key *k, CK_SESSION_HANDLE s, unsigned long gen, CK_OBJECT_HANDLE *h)
{
    CK_ATTRIBUTE tmpl[3];
    CK_ULONG n = 0;
    CK_OBJECT_HANDLE found;
    long cnt;

    pthread_mutex_lock(&k->lock);
    if (k->gen == gen && k->handle != CK_INVALID_HANDLE) {
        *h = k->handle;
        pthread_mutex_unlock(&k->lock);
        return CKR_OK;
    }
    pthread_mutex_unlock(&k->lock);
    if (k->id == NULL && k->label == NULL)
        return CKR_OBJECT_HANDLE_INVALID;
    tmpl[n].type = CKA_CLASS;
    tmpl[n].pValue = &k->cls;
    tmpl[n++].ulValueLen = sizeof(k->cls);
    if (k->id != NULL) {
        tmpl[n].type = CKA_ID;
        tmpl[n].pValue = k->id;
        tmpl[n++].ulValueLen = k->id_len;
    }
    if (k->label != NULL) {
        tmpl[n].type = CKA_LABEL;
        tmpl[n].pValue = k->label;
        tmpl[n++].ulValueLen = strlen(k->label);
    }
    cnt = m2p_find(k->tok, s, tmpl, n, &found, 1);
    if (cnt < 0)
        return (CK_RV)(-cnt);
    if (cnt == 0)
        return CKR_KEY_HANDLE_INVALID;
    pthread_mutex_lock(&k->lock);
    k->handle = found;
    k->gen = gen;
    pthread_mutex_unlock(&k->lock);
    *h = found;
    return CKR_OK;
}

/* Failures that say the session, the login or the device went away: the
 * signing loop recovers from them. Any other answer to C_CopyObject is the
 * token refusing to copy this key. */
static int recoverable(CK_RV rv)
{
    switch (rv) {
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_OBJECT_HANDLE_INVALID:
    case CKR_KEY_HANDLE_INVALID:
    case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_DEVICE_ERROR:
    case CKR_CRYPTOKI_NOT_INITIALIZED:
        return 1;
    default:
        return 0;
    }
}

/* with k->lock held */
static int copy_usable(const m2p_key *k)
{
    return k->copy != CK_INVALID_HANDLE && k->copy_epoch == m2p_token_keeper_epoch(k->tok);
}

/* with k->lock held: the token refused to copy the key in this generation */
static int copy_refused(const m2p_key *k, unsigned long gen)
{
    return k->copy_refused != CKR_OK && k->refused_gen == gen;
}

/* Makes the session copy of token object obj, once: two threads signing for
 * the first time wait for one copy. A refusal is remembered for the module
 * generation (signatures then use the token object, without asking again). */
static CK_RV key_copy(m2p_key *k, unsigned long gen, CK_OBJECT_HANDLE obj, CK_OBJECT_HANDLE *h,
                      unsigned long *copy_epoch)
{
    CK_OBJECT_HANDLE copy = CK_INVALID_HANDLE;
    unsigned long epoch = 0;
    CK_RV rv = CKR_OK;

    pthread_mutex_lock(&k->lock);
    if (copy_usable(k)) {
        *h = k->copy;
        *copy_epoch = k->copy_epoch;
    } else if (copy_refused(k, gen)) {
        *h = obj;
    } else if ((rv = m2p_token_copy_key(k->tok, obj, &copy, &epoch)) == CKR_OK) {
        k->copy = copy;
        k->copy_epoch = epoch;
        *h = copy;
        *copy_epoch = epoch;
    } else if (!recoverable(rv)) {
        k->copy = CK_INVALID_HANDLE;
        k->copy_refused = rv;
        k->refused_gen = gen;
        *h = obj;
        rv = CKR_OK;
    }
    pthread_mutex_unlock(&k->lock);
    return rv;
}

/* The handle to sign with for module generation gen: the key's session copy
 * (pkcs11-module-cache-keys, the default), else the token object. *fn names
 * the PKCS#11 function behind a failure. When it is the copy, *COPY_EPOCH is
 * its keeper's epoch (else left as it is). */
static CK_RV key_sign_handle(m2p_key *k, CK_SESSION_HANDLE s, unsigned long gen,
                             CK_OBJECT_HANDLE *h, const char **fn, unsigned long *copy_epoch)
{
    int cache = k->prov->cache_keys;
    CK_OBJECT_HANDLE obj;
    CK_RV rv;

    pthread_mutex_lock(&k->lock);
    if (k->gen == gen && k->handle != CK_INVALID_HANDLE) {
        /* the common case: nothing to ask the token */
        if (cache && copy_usable(k)) {
            *h = k->copy;
            *copy_epoch = k->copy_epoch;
            pthread_mutex_unlock(&k->lock);
            return CKR_OK;
        }
        if (!cache || copy_refused(k, gen)) {
            *h = k->handle;
            pthread_mutex_unlock(&k->lock);
            return CKR_OK;
        }
    }
    pthread_mutex_unlock(&k->lock);
    *fn = "C_FindObjects";
    if ((rv = key_object(k, s, gen, &obj)) != CKR_OK)
        return rv;
    if (!cache) {
        *h = obj;
        return CKR_OK;
    }
    *fn = "C_CopyObject";
    return key_copy(k, gen, obj, h, copy_epoch);
}

/* After a failure with handle USED (CK_INVALID_HANDLE: before a handle was
 * found): the token object is found again and the session copy made again.
 * A copy the token still knows (DESTROY: the token said the handle was
 * invalid, which a logout or a closed keeper explains, but not always) is
 * destroyed rather than left in the keeper. When another thread has
 * replaced USED already (its own recovery made a new copy), the new one is
 * left alone: threads that failed on one copy would otherwise destroy each
 * other's new copies in turn until they all ran out of attempts. */
static void key_forget_handle(m2p_key *k, int destroy, CK_OBJECT_HANDLE used)
{
    pthread_mutex_lock(&k->lock);
    if (used != CK_INVALID_HANDLE && used != k->copy && used != k->handle) {
        pthread_mutex_unlock(&k->lock);
        return;
    }
    k->handle = CK_INVALID_HANDLE;
    if (destroy && k->copy != CK_INVALID_HANDLE)
        m2p_token_drop_copy(k->tok, k->copy, k->copy_epoch);
    k->copy = CK_INVALID_HANDLE;
    pthread_mutex_unlock(&k->lock);
}

/* The session copy goes with its key (copies of keys loaded again and again
 * would otherwise pile up in the token until the keeper session closes). */
static void key_uncache(m2p_key *k)
{
    if (k->tok != NULL && k->copy != CK_INVALID_HANDLE)
        m2p_token_drop_copy(k->tok, k->copy, k->copy_epoch);
    k->copy = CK_INVALID_HANDLE;
}

int m2p_key_cache_status(m2p_key *k, char *buf, size_t len)
{
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE h;
    const char *fn = "C_FindObjects";
    unsigned long gen, epoch = 0;
    CK_RV rv, refused;
    int yes;

    if (k->soft || k->tok == NULL || k->cls != CKO_PRIVATE_KEY)
        return snprintf(buf, len, "no (not a private key in a token)") > 0;
    if (!k->prov->cache_keys)
        return snprintf(buf, len, "no (pkcs11-module-cache-keys = false)") > 0;
    /* a key that has not signed yet: make its copy now, as a signature would */
    ERR_set_mark();
    if (!m2p_session_get(k->tok, &s, NULL)) {
        ERR_pop_to_mark();
        return snprintf(buf, len, "no (no session with the token now)") > 0;
    }
    pthread_mutex_lock(&k->tok->lock);
    gen = k->tok->gen;
    pthread_mutex_unlock(&k->tok->lock);
    rv = key_sign_handle(k, s, gen, &h, &fn, &epoch);
    m2p_session_put(k->tok, s);
    ERR_pop_to_mark();
    pthread_mutex_lock(&k->lock);
    yes = copy_usable(k);
    refused = copy_refused(k, gen) ? k->copy_refused : CKR_OK;
    pthread_mutex_unlock(&k->lock);
    if (yes)
        return snprintf(buf, len, "yes") > 0;
    if (refused != CKR_OK)
        return snprintf(buf, len, "no (C_CopyObject: %s)", m2c_ckr_name(refused)) > 0;
    return snprintf(buf, len, "no (%s: %s)", fn, m2c_ckr_name(rv)) > 0;
}

/* ---- signing with recovery ------------------------------------------------- */

/* After a failed signature with handle USED: recovers what rv says is lost
 * and gives the session back (or drops it). 1: worth another attempt. */
static int recover(m2p_key *k, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE used, CK_RV rv)
{
    m2p_token *tok = k->tok;

    switch (rv) {
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
        /* sessions closed under us: that may have ended the login too,
         * and a logout invalidates private object handles (SoftHSM) and
         * destroys private session objects: find the key and copy it again
         * now rather than spend an attempt learning it (a dead keeper is
         * noticed and replaced when the copy is made) */
        m2p_session_drop(tok, s);
        m2p_token_reset(tok, 1);
        key_forget_handle(k, 0, used);
        return 1;
    case CKR_USER_NOT_LOGGED_IN:
        key_forget_handle(k, 0, used);
        m2p_token_reset(tok, 1);
        m2p_session_put(tok, s);
        return 1;
    case CKR_OBJECT_HANDLE_INVALID:
    case CKR_KEY_HANDLE_INVALID:
        /* a private object (and its session copy) disappears when the
         * token is logged out; other keys' copies learn it at their next
         * signature */
        key_forget_handle(k, 1, used);
        m2p_token_reset(tok, 1);
        m2p_session_put(tok, s);
        return 1;
    case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_DEVICE_ERROR:
    case CKR_OPERATION_ACTIVE:
        m2p_session_drop(tok, s);
        m2p_token_reset(tok, 0);
        key_forget_handle(k, 0, used);
        return 1;
    case CKR_CRYPTOKI_NOT_INITIALIZED:
        m2p_token_reset(tok, 0);
        pthread_mutex_lock(&tok->mod->lock);
        ATOMIC_SET(tok->mod->initialized, 0);
        pthread_mutex_unlock(&tok->mod->lock);
        return 1;
    default:
        m2p_session_put(tok, s);
        return 0;
    }
}

/* key_sign_handle leaves this copy epoch when it gives the token object (keeper
 * epochs count up from 0 and never reach it). */
#define NOT_A_COPY ((unsigned long)-1)

/* Whether the session copy USED (of keeper EPOCH) was destroyed while a
 * signature used it: its keeper closed by another thread's recovery from a
 * lost device, or the copy dropped by a recovery that failed on it. */
static int copy_gone(m2p_key *k, CK_OBJECT_HANDLE used, unsigned long epoch)
{
    pthread_mutex_lock(&k->lock);
    int gone = m2p_token_keeper_epoch(k->tok) != epoch || k->copy != used;
    pthread_mutex_unlock(&k->lock);
    return gone;
}

int m2p_key_sign(m2p_key *k, CK_MECHANISM *mech, const unsigned char *in, size_t inlen,
                 unsigned char *out, size_t *outlen)
{
    m2p_token *tok = k->tok;
    int attempt;
    CK_RV rv = CKR_GENERAL_ERROR;
    const char *fn = "C_Sign";

    if (tok == NULL || k->cls != CKO_PRIVATE_KEY) {
        M2P_ERR(M2P_R_UNSUPPORTED, "not a private key in a token");
        return 0;
    }
    ERR_set_mark();
    for (attempt = 0; attempt < M2P_MAX_RETRIES; attempt++) {
        CK_SESSION_HANDLE s;
        CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
        CK_ULONG len = (CK_ULONG)*outlen;
        unsigned long gen, copy_epoch = NOT_A_COPY;

        if (!m2p_session_get(tok, &s, NULL)) {
            ERR_clear_last_mark();
            return 0;
        }
        pthread_mutex_lock(&tok->lock);
        gen = tok->gen;
        pthread_mutex_unlock(&tok->lock);
        rv = key_sign_handle(k, s, gen, &h, &fn, &copy_epoch);
        if (rv == CKR_OK) {
            fn = "C_SignInit";
            rv = tok->mod->f->C_SignInit(s, mech, h);
            if (rv == CKR_OK) {
                fn = "C_Sign";
                rv = tok->mod->f->C_Sign(s, (CK_BYTE *)in, (CK_ULONG)inlen, out, &len);
            }
        }
        if (rv == CKR_OK) {
            m2p_session_put(tok, s);
            ERR_pop_to_mark();
            *outlen = len;
            return 1;
        }
        /* A copy destroyed under this signature by another thread's recovery
         * is that recovery's doing, whatever the token answers for it
         * (SoftHSM: CKR_GENERAL_ERROR when the object goes between C_SignInit
         * and C_Sign): the copy is made again, as for an invalid handle. */
        CK_RV cause = copy_epoch != NOT_A_COPY && copy_gone(k, h, copy_epoch) ? CKR_KEY_HANDLE_INVALID : rv;
        if (!recover(k, s, h, cause)) {
            ERR_pop_to_mark();
            M2P_ERR(M2P_R_PKCS11, "%s: %s", fn, m2c_ckr_name(rv));
            return 0;
        }
    }
    ERR_pop_to_mark();
    M2P_ERR(M2P_R_PKCS11, "%s: %s (gave up after %d attempts)", fn, m2c_ckr_name(rv),
            M2P_MAX_RETRIES);
    return 0;
}
