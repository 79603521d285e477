/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SIGNATURE: ECDSA, RSA PKCS#1 v1.5 and RSA-PSS. The digest is computed here
 * (fallback library context: never this provider) and the token gets a raw
 * mechanism: CKM_ECDSA (raw r||s encoded by i2d_ECDSA_SIG), CKM_RSA_PKCS over a
 * DigestInfo, CKM_RSA_PKCS_PSS. Verification uses the public key locally.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "provider.h"

#define MAX_DIGEST 64
#define MAX_SIG 1024

typedef struct {
    int nid;
    CK_MECHANISM_TYPE ckm;
    CK_RSA_PKCS_MGF_TYPE mgf;
    int ecdsa_nid, rsa_nid;
    unsigned char prefix_len;
    unsigned char prefix[19];
} digest_info;

static const digest_info digests[] = {
    { NID_sha1, CKM_SHA_1, CKG_MGF1_SHA1, NID_ecdsa_with_SHA1, NID_sha1WithRSAEncryption, 15,
      { 0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14 } },
    { NID_sha224, CKM_SHA224, CKG_MGF1_SHA224, NID_ecdsa_with_SHA224,
      NID_sha224WithRSAEncryption, 19,
      { 0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04,
        0x05, 0x00, 0x04, 0x1c } },
    { NID_sha256, CKM_SHA256, CKG_MGF1_SHA256, NID_ecdsa_with_SHA256,
      NID_sha256WithRSAEncryption, 19,
      { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20 } },
    { NID_sha384, CKM_SHA384, CKG_MGF1_SHA384, NID_ecdsa_with_SHA384,
      NID_sha384WithRSAEncryption, 19,
      { 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02,
        0x05, 0x00, 0x04, 0x30 } },
    { NID_sha512, CKM_SHA512, CKG_MGF1_SHA512, NID_ecdsa_with_SHA512,
      NID_sha512WithRSAEncryption, 19,
      { 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03,
        0x05, 0x00, 0x04, 0x40 } },
};

static const digest_info *digest_lookup(const EVP_MD *md)
{
    size_t i;
    int nid;

    if (md == NULL)
        return NULL;
    nid = EVP_MD_get_type(md);
    for (i = 0; i < sizeof(digests) / sizeof(digests[0]); i++)
        if (digests[i].nid == nid)
            return &digests[i];
    return NULL;
}

typedef struct {
    m2p_prov *prov;
    m2p_key *key;
    int operation;                  /* EVP_PKEY_OP_SIGN / EVP_PKEY_OP_VERIFY */
    int rsa;                        /* RSA context */
    EVP_MD *md;
    const digest_info *di;
    EVP_MD_CTX *mdctx;              /* digest-sign/verify running hash */
    int mdctx_fresh;                /* mdctx initialised and not used since */
    EVP_MD *mgf1;
    const digest_info *mgf1_di;
    int pad;                        /* RSA_PKCS1_PADDING / RSA_PKCS1_PSS_PADDING */
    int saltlen;                    /* >= 0, or RSA_PSS_SALTLEN_DIGEST/MAX/AUTO */
    unsigned char aid[128];
    size_t aid_len;
} sigctx;

static OSSL_FUNC_signature_newctx_fn ecdsa_newctx, rsa_newctx;
static OSSL_FUNC_signature_freectx_fn sig_freectx;
static OSSL_FUNC_signature_dupctx_fn sig_dupctx;
static OSSL_FUNC_signature_sign_init_fn sig_sign_init;
static OSSL_FUNC_signature_sign_fn sig_sign;
static OSSL_FUNC_signature_verify_init_fn sig_verify_init;
static OSSL_FUNC_signature_verify_fn sig_verify;
static OSSL_FUNC_signature_digest_sign_init_fn sig_digest_sign_init;
static OSSL_FUNC_signature_digest_sign_update_fn sig_digest_update;
static OSSL_FUNC_signature_digest_sign_final_fn sig_digest_sign_final;
static OSSL_FUNC_signature_digest_sign_fn sig_digest_sign;
static OSSL_FUNC_signature_digest_verify_init_fn sig_digest_verify_init;
static OSSL_FUNC_signature_digest_verify_final_fn sig_digest_verify_final;
static OSSL_FUNC_signature_digest_verify_fn sig_digest_verify;
static OSSL_FUNC_signature_get_ctx_params_fn sig_get_ctx_params;
static OSSL_FUNC_signature_gettable_ctx_params_fn sig_gettable_ctx_params;
static OSSL_FUNC_signature_set_ctx_params_fn sig_set_ctx_params;
static OSSL_FUNC_signature_settable_ctx_params_fn sig_settable_ctx_params;

static void *newctx(void *provctx, int rsa)
{
    sigctx *c = OPENSSL_zalloc(sizeof(*c));

    if (c == NULL)
        return NULL;
    c->prov = provctx;
    c->rsa = rsa;
    c->pad = RSA_PKCS1_PADDING;
    c->saltlen = RSA_PSS_SALTLEN_AUTO;
    return c;
}

static void *ecdsa_newctx(void *provctx, const char *propq)
{
    return newctx(provctx, 0);
}

static void *rsa_newctx(void *provctx, const char *propq)
{
    return newctx(provctx, 1);
}

static void sig_freectx(void *vctx)
{
    sigctx *c = vctx;

    if (c == NULL)
        return;
    m2p_key_free(c->key);
    EVP_MD_free(c->md);
    EVP_MD_free(c->mgf1);
    EVP_MD_CTX_free(c->mdctx);
    OPENSSL_free(c);
}

static void *sig_dupctx(void *vctx)
{
    sigctx *c = vctx, *d = OPENSSL_memdup(c, sizeof(*c));

    if (d == NULL)
        return NULL;
    d->mdctx = NULL;
    if (d->key != NULL)
        m2p_key_up_ref(d->key);
    if (d->md != NULL)
        EVP_MD_up_ref(d->md);
    if (d->mgf1 != NULL)
        EVP_MD_up_ref(d->mgf1);
    if (c->mdctx != NULL
        && ((d->mdctx = EVP_MD_CTX_new()) == NULL || !EVP_MD_CTX_copy_ex(d->mdctx, c->mdctx))) {
        sig_freectx(d);
        return NULL;
    }
    return d;
}

static int set_md(sigctx *c, const char *name)
{
    EVP_MD *md;
    const digest_info *di;

    if (name == NULL || *name == '\0')
        name = "SHA256";
    if ((md = m2p_fetch_md(c->prov, name)) == NULL) {
        M2P_ERR(M2P_R_UNSUPPORTED, "digest %s is not available", name);
        return 0;
    }
    if ((di = digest_lookup(md)) == NULL) {
        M2P_ERR(M2P_R_UNSUPPORTED, "digest %s is not supported for signing", name);
        EVP_MD_free(md);
        return 0;
    }
    EVP_MD_free(c->md);
    c->md = md;
    c->di = di;
    return 1;
}

static int set_mgf1(sigctx *c, const char *name)
{
    EVP_MD *md = m2p_fetch_md(c->prov, name);
    const digest_info *di = digest_lookup(md);

    if (di == NULL) {
        EVP_MD_free(md);
        M2P_ERR(M2P_R_UNSUPPORTED, "MGF1 digest %s is not supported", name);
        return 0;
    }
    EVP_MD_free(c->mgf1);
    c->mgf1 = md;
    c->mgf1_di = di;
    return 1;
}

static int init(sigctx *c, void *key, int op, const OSSL_PARAM params[])
{
    m2p_key *k = key;

    if (k != NULL) {
        if (op == EVP_PKEY_OP_SIGN && !m2p_key_is_private(k)) {
            M2P_ERR(M2P_R_UNSUPPORTED, "signing needs a private key held in a token");
            return 0;
        }
        if ((k->type == M2P_KEY_RSA) != (c->rsa != 0) || k->pubkey == NULL) {
            M2P_ERR(M2P_R_UNSUPPORTED, "key type does not fit this signature algorithm");
            return 0;
        }
        m2p_key_up_ref(k);
        m2p_key_free(c->key);
        c->key = k;
    } else if (c->key == NULL) {
        return 0;
    }
    c->operation = op;
    return sig_set_ctx_params(c, params);
}

static int sig_sign_init(void *vctx, void *key, const OSSL_PARAM params[])
{
    return init(vctx, key, EVP_PKEY_OP_SIGN, params);
}

static int sig_verify_init(void *vctx, void *key, const OSSL_PARAM params[])
{
    return init(vctx, key, EVP_PKEY_OP_VERIFY, params);
}

static size_t sig_size(const sigctx *c)
{
    return (size_t)EVP_PKEY_get_size(c->key->pubkey);
}

static size_t rsa_mod_bits(const sigctx *c)
{
    return (size_t)EVP_PKEY_get_bits(c->key->pubkey);
}

/* Signs a digest (or, for RSA PKCS#1 without a digest set, raw data). */
static int local_op(sigctx *c, int sign, unsigned char *sig, size_t *siglen, size_t sigsize,
                    const unsigned char *tbs, size_t tbslen);

/* ECDSA-Sig-Value { r, s } (DER) into sig from the token's raw r || s (each
 * ob bytes); maxlen: the longest it can be (the key's signature size). 1 ok. */
static int ecdsa_der(const unsigned char *rs, size_t ob, size_t maxlen, unsigned char *sig,
                     size_t *siglen, size_t sigsize)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(rs, (int)ob, NULL), *sv = BN_bin2bn(rs + ob, (int)ob, NULL);
    unsigned char *p = sig;
    int len, ok = 0;

    if (es == NULL || r == NULL || sv == NULL || !ECDSA_SIG_set0(es, r, sv)) {
        BN_free(r);
        BN_free(sv);
        goto done;
    }
    /* the length first only when the buffer could be too small: an
     * encoding costs as much as the rest of this provider's work */
    if (sigsize < maxlen && ((len = i2d_ECDSA_SIG(es, NULL)) <= 0 || (size_t)len > sigsize)) {
        M2P_ERR(M2P_R_INTERNAL, "signature buffer too small");
        goto done;
    }
    if ((len = i2d_ECDSA_SIG(es, &p)) <= 0)
        goto done;
    *siglen = (size_t)len;
    ok = 1;
done:
    ECDSA_SIG_free(es);
    return ok;
}

static int sign_hash(sigctx *c, unsigned char *sig, size_t *siglen, size_t sigsize,
                     const unsigned char *tbs, size_t tbslen)
{
    unsigned char buf[MAX_SIG];
    size_t len = sizeof(buf);
    CK_MECHANISM mech = { 0, NULL, 0 };
    CK_RSA_PKCS_PSS_PARAMS pss;

    if (c->key->soft)
        return local_op(c, 1, sig, siglen, sigsize, tbs, tbslen);
    if (!c->rsa) {
        size_t ob = m2p_ec_order_bytes(c->key->nid);

        mech.mechanism = CKM_ECDSA;
        if (!m2p_key_sign(c->key, &mech, tbs, tbslen, buf, &len))
            return 0;
        if (len != 2 * ob) {
            M2P_ERR(M2P_R_PKCS11, "C_Sign: unexpected ECDSA signature length %zu", len);
            return 0;
        }
        return ecdsa_der(buf, ob, sig_size(c), sig, siglen, sigsize);
    }
    if (c->pad == RSA_PKCS1_PADDING) {
        unsigned char in[MAX_DIGEST + 32];
        size_t inlen = 0;

        mech.mechanism = CKM_RSA_PKCS;
        if (c->di != NULL) {
            if (tbslen != (size_t)EVP_MD_get_size(c->md)) {
                M2P_ERR(M2P_R_INTERNAL, "input is not a %s digest", EVP_MD_get0_name(c->md));
                return 0;
            }
            memcpy(in, c->di->prefix, c->di->prefix_len);
            memcpy(in + c->di->prefix_len, tbs, tbslen);
            inlen = c->di->prefix_len + tbslen;
            tbs = in;
            tbslen = inlen;
        }
        if (!m2p_key_sign(c->key, &mech, tbs, tbslen, buf, &len))
            return 0;
    } else if (c->pad == RSA_PKCS1_PSS_PADDING) {
        const digest_info *mg = c->mgf1_di != NULL ? c->mgf1_di : c->di;
        size_t hlen, emlen = (rsa_mod_bits(c) - 1 + 7) / 8, maxsalt;

        if (c->di == NULL || mg == NULL) {
            M2P_ERR(M2P_R_UNSUPPORTED, "RSA-PSS needs a digest");
            return 0;
        }
        hlen = (size_t)EVP_MD_get_size(c->md);
        if (tbslen != hlen || emlen < hlen + 2) {
            M2P_ERR(M2P_R_INTERNAL, "input is not a %s digest", EVP_MD_get0_name(c->md));
            return 0;
        }
        maxsalt = emlen - hlen - 2;
        pss.hashAlg = c->di->ckm;
        pss.mgf = mg->mgf;
        if (c->saltlen == RSA_PSS_SALTLEN_DIGEST)
            pss.sLen = hlen;
        else if (c->saltlen == RSA_PSS_SALTLEN_MAX || c->saltlen == RSA_PSS_SALTLEN_AUTO)
            pss.sLen = maxsalt;
        else if (c->saltlen >= 0 && (size_t)c->saltlen <= maxsalt)
            pss.sLen = (CK_ULONG)c->saltlen;
        else {
            M2P_ERR(M2P_R_UNSUPPORTED, "invalid PSS salt length %d", c->saltlen);
            return 0;
        }
        mech.mechanism = CKM_RSA_PKCS_PSS;
        mech.pParameter = &pss;
        mech.ulParameterLen = sizeof(pss);
        if (!m2p_key_sign(c->key, &mech, tbs, tbslen, buf, &len))
            return 0;
    } else {
        M2P_ERR(M2P_R_UNSUPPORTED, "RSA padding mode %d is not supported", c->pad);
        return 0;
    }
    if (len > sigsize) {
        M2P_ERR(M2P_R_INTERNAL, "signature buffer too small");
        return 0;
    }
    memcpy(sig, buf, len);
    *siglen = len;
    return 1;
}

static int sig_sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                    const unsigned char *tbs, size_t tbslen)
{
    sigctx *c = vctx;

    if (c->key == NULL)
        return 0;
    if (sig == NULL) {
        *siglen = sig_size(c);
        return 1;
    }
    return sign_hash(c, sig, siglen, sigsize, tbs, tbslen);
}

/* Signs (soft keys) or verifies with the key's EVP_PKEY in the fallback context. */
static int local_op(sigctx *c, int sign, unsigned char *sig, size_t *siglen, size_t sigsize,
                    const unsigned char *tbs, size_t tbslen)
{
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(m2p_fallback_ctx(c->prov), c->key->pubkey,
                                                    NULL);
    int ok = 0;

    if (pctx == NULL || (sign ? EVP_PKEY_sign_init(pctx) : EVP_PKEY_verify_init(pctx)) <= 0)
        goto done;
    if (c->md != NULL && EVP_PKEY_CTX_set_signature_md(pctx, c->md) <= 0)
        goto done;
    if (c->rsa) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, c->pad) <= 0)
            goto done;
        if (c->pad == RSA_PKCS1_PSS_PADDING) {
            if (EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, c->saltlen) <= 0)
                goto done;
            if (c->mgf1 != NULL && EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, c->mgf1) <= 0)
                goto done;
        }
    }
    if (sign) {
        *siglen = sigsize;
        ok = EVP_PKEY_sign(pctx, sig, siglen, tbs, tbslen) == 1;
    } else {
        ok = EVP_PKEY_verify(pctx, sig, *siglen, tbs, tbslen) == 1;
    }
done:
    EVP_PKEY_CTX_free(pctx);
    return ok;
}

static int verify_hash(sigctx *c, const unsigned char *sig, size_t siglen,
                       const unsigned char *tbs, size_t tbslen)
{
    return local_op(c, 0, (unsigned char *)sig, &siglen, siglen, tbs, tbslen);
}

static int sig_verify(void *vctx, const unsigned char *sig, size_t siglen,
                      const unsigned char *tbs, size_t tbslen)
{
    sigctx *c = vctx;

    if (c->key == NULL)
        return 0;
    return verify_hash(c, sig, siglen, tbs, tbslen);
}

static int digest_init(sigctx *c, const char *mdname, void *key, int op, const OSSL_PARAM params[])
{
    if (!init(c, key, op, NULL))
        return 0;
    if (!set_md(c, mdname))
        return 0;
    if (c->mdctx == NULL && (c->mdctx = EVP_MD_CTX_new()) == NULL)
        return 0;
    if (!EVP_DigestInit_ex2(c->mdctx, c->md, NULL))
        return 0;
    c->mdctx_fresh = 1;
    c->aid_len = 0;
    return sig_set_ctx_params(c, params);
}

static int sig_digest_sign_init(void *vctx, const char *mdname, void *key,
                                const OSSL_PARAM params[])
{
    return digest_init(vctx, mdname, key, EVP_PKEY_OP_SIGN, params);
}

static int sig_digest_verify_init(void *vctx, const char *mdname, void *key,
                                  const OSSL_PARAM params[])
{
    return digest_init(vctx, mdname, key, EVP_PKEY_OP_VERIFY, params);
}

static int sig_digest_update(void *vctx, const unsigned char *data, size_t datalen)
{
    sigctx *c = vctx;

    c->mdctx_fresh = 0;
    return c->mdctx != NULL && EVP_DigestUpdate(c->mdctx, data, datalen);
}

static int sig_digest_sign_final(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize)
{
    sigctx *c = vctx;
    unsigned char h[MAX_DIGEST];
    unsigned int hlen = 0;

    if (c->key == NULL || c->mdctx == NULL)
        return 0;
    if (sig == NULL) {      /* size query: the running digest is left untouched */
        *siglen = sig_size(c);
        return 1;
    }
    c->mdctx_fresh = 0;
    if (!EVP_DigestFinal_ex(c->mdctx, h, &hlen))
        return 0;
    return sign_hash(c, sig, siglen, sigsize, h, hlen);
}

/* The digest of a one-shot digest-sign/verify, in the context digest_init
 * prepared (a context of its own would cost an allocation and an init more
 * per signature); a later init starts it again. */
static int one_shot_digest(sigctx *c, const unsigned char *tbs, size_t tbslen, unsigned char *h,
                           unsigned int *hlen)
{
    if (c->mdctx == NULL || !c->mdctx_fresh)    /* after updates, or a second one-shot */
        return EVP_Digest(tbs, tbslen, h, hlen, c->md, NULL);
    c->mdctx_fresh = 0;
    return EVP_DigestUpdate(c->mdctx, tbs, tbslen) && EVP_DigestFinal_ex(c->mdctx, h, hlen);
}

static int sig_digest_sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                           const unsigned char *tbs, size_t tbslen)
{
    sigctx *c = vctx;
    unsigned char h[MAX_DIGEST];
    unsigned int hlen = 0;

    if (c->key == NULL || c->md == NULL)
        return 0;
    if (sig == NULL) {
        *siglen = sig_size(c);
        return 1;
    }
    if (!one_shot_digest(c, tbs, tbslen, h, &hlen))
        return 0;
    return sign_hash(c, sig, siglen, sigsize, h, hlen);
}

static int sig_digest_verify_final(void *vctx, const unsigned char *sig, size_t siglen)
{
    sigctx *c = vctx;
    unsigned char h[MAX_DIGEST];
    unsigned int hlen = 0;

    if (c->key == NULL || c->mdctx == NULL)
        return 0;
    c->mdctx_fresh = 0;
    if (!EVP_DigestFinal_ex(c->mdctx, h, &hlen))
        return 0;
    return verify_hash(c, sig, siglen, h, hlen);
}

static int sig_digest_verify(void *vctx, const unsigned char *sig, size_t siglen,
                             const unsigned char *tbs, size_t tbslen)
{
    sigctx *c = vctx;
    unsigned char h[MAX_DIGEST];
    unsigned int hlen = 0;

    if (c->key == NULL || c->md == NULL || !one_shot_digest(c, tbs, tbslen, h, &hlen))
        return 0;
    return verify_hash(c, sig, siglen, h, hlen);
}

/* ---- AlgorithmIdentifier ---------------------------------------------------- */

static int pss_salt(const sigctx *c)
{
    size_t hlen = (size_t)EVP_MD_get_size(c->md);
    size_t emlen = (rsa_mod_bits(c) - 1 + 7) / 8;

    if (c->saltlen == RSA_PSS_SALTLEN_DIGEST)
        return (int)hlen;
    if (c->saltlen < 0)
        return (int)(emlen - hlen - 2);
    return c->saltlen;
}

static X509_ALGOR *pss_algor(const sigctx *c)
{
    RSA_PSS_PARAMS *pp = RSA_PSS_PARAMS_new();
    const EVP_MD *mg = c->mgf1 != NULL ? c->mgf1 : c->md;
    X509_ALGOR *alg = NULL, *mgfhash = NULL;
    ASN1_STRING *mgfstr = NULL, *ppstr = NULL;

    if (pp == NULL)
        return NULL;
    if (EVP_MD_get_type(c->md) != NID_sha1) {
        if ((pp->hashAlgorithm = X509_ALGOR_new()) == NULL)
            goto err;
        X509_ALGOR_set0(pp->hashAlgorithm, OBJ_nid2obj(EVP_MD_get_type(c->md)), V_ASN1_NULL,
                        NULL);
    }
    if (EVP_MD_get_type(mg) != NID_sha1) {
        if ((mgfhash = X509_ALGOR_new()) == NULL)
            goto err;
        X509_ALGOR_set0(mgfhash, OBJ_nid2obj(EVP_MD_get_type(mg)), V_ASN1_NULL, NULL);
        if ((mgfstr = ASN1_item_pack(mgfhash, ASN1_ITEM_rptr(X509_ALGOR), NULL)) == NULL)
            goto err;
        if ((pp->maskGenAlgorithm = X509_ALGOR_new()) == NULL)
            goto err;
        X509_ALGOR_set0(pp->maskGenAlgorithm, OBJ_nid2obj(NID_mgf1), V_ASN1_SEQUENCE, mgfstr);
        mgfstr = NULL;
    }
    if (pss_salt(c) != 20) {
        if ((pp->saltLength = ASN1_INTEGER_new()) == NULL
            || !ASN1_INTEGER_set(pp->saltLength, pss_salt(c)))
            goto err;
    }
    if ((ppstr = ASN1_item_pack(pp, ASN1_ITEM_rptr(RSA_PSS_PARAMS), NULL)) == NULL)
        goto err;
    if ((alg = X509_ALGOR_new()) == NULL)
        goto err;
    X509_ALGOR_set0(alg, OBJ_nid2obj(NID_rsassaPss), V_ASN1_SEQUENCE, ppstr);
    ppstr = NULL;
err:
    ASN1_STRING_free(ppstr);
    ASN1_STRING_free(mgfstr);
    X509_ALGOR_free(mgfhash);
    RSA_PSS_PARAMS_free(pp);
    return alg;
}

static int make_aid(sigctx *c)
{
    X509_ALGOR *alg = NULL;
    unsigned char *der = NULL;
    int len;

    if (c->di == NULL)
        return 0;
    if (!c->rsa) {
        if ((alg = X509_ALGOR_new()) == NULL)
            return 0;
        X509_ALGOR_set0(alg, OBJ_nid2obj(c->di->ecdsa_nid), V_ASN1_UNDEF, NULL);
    } else if (c->pad == RSA_PKCS1_PADDING) {
        if ((alg = X509_ALGOR_new()) == NULL)
            return 0;
        X509_ALGOR_set0(alg, OBJ_nid2obj(c->di->rsa_nid), V_ASN1_NULL, NULL);
    } else if (c->pad == RSA_PKCS1_PSS_PADDING) {
        if ((alg = pss_algor(c)) == NULL)
            return 0;
    } else {
        return 0;
    }
    len = i2d_X509_ALGOR(alg, &der);
    X509_ALGOR_free(alg);
    if (len <= 0 || (size_t)len > sizeof(c->aid)) {
        OPENSSL_free(der);
        return 0;
    }
    memcpy(c->aid, der, (size_t)len);
    c->aid_len = (size_t)len;
    OPENSSL_free(der);
    return 1;
}

static const char *pad_name(int pad)
{
    switch (pad) {
    case RSA_PKCS1_PADDING:
        return OSSL_PKEY_RSA_PAD_MODE_PKCSV15;
    case RSA_PKCS1_PSS_PADDING:
        return OSSL_PKEY_RSA_PAD_MODE_PSS;
    case RSA_NO_PADDING:
        return OSSL_PKEY_RSA_PAD_MODE_NONE;
    default:
        return "";
    }
}

static int sig_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    sigctx *c = vctx;
    OSSL_PARAM *p;

    if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID)) != NULL) {
        if (!make_aid(c) || !OSSL_PARAM_set_octet_string(p, c->aid, c->aid_len))
            return 0;
    }
    if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST)) != NULL
        && !OSSL_PARAM_set_utf8_string(p, c->md != NULL ? EVP_MD_get0_name(c->md) : ""))
        return 0;
    if (c->rsa) {
        if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PAD_MODE)) != NULL) {
            if (p->data_type == OSSL_PARAM_INTEGER) {
                if (!OSSL_PARAM_set_int(p, c->pad))
                    return 0;
            } else if (!OSSL_PARAM_set_utf8_string(p, pad_name(c->pad))) {
                return 0;
            }
        }
        if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN)) != NULL) {
            if (p->data_type == OSSL_PARAM_INTEGER) {
                if (!OSSL_PARAM_set_int(p, c->saltlen))
                    return 0;
            } else {
                char buf[16];
                const char *v = c->saltlen == RSA_PSS_SALTLEN_DIGEST ? OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST
                              : c->saltlen == RSA_PSS_SALTLEN_MAX  ? OSSL_PKEY_RSA_PSS_SALT_LEN_MAX
                              : c->saltlen == RSA_PSS_SALTLEN_AUTO ? OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO
                                                                   : NULL;
                if (v == NULL) {
                    snprintf(buf, sizeof(buf), "%d", c->saltlen);
                    v = buf;
                }
                if (!OSSL_PARAM_set_utf8_string(p, v))
                    return 0;
            }
        }
        if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST)) != NULL) {
            const EVP_MD *mg = c->mgf1 != NULL ? c->mgf1 : c->md;

            if (!OSSL_PARAM_set_utf8_string(p, mg != NULL ? EVP_MD_get0_name(mg) : ""))
                return 0;
        }
    }
    return 1;
}

static int sig_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    sigctx *c = vctx;
    const OSSL_PARAM *p;

    if (params == NULL)
        return 1;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST)) != NULL) {
        const char *name = NULL;

        if (!OSSL_PARAM_get_utf8_string_ptr(p, &name) || !set_md(c, name))
            return 0;
    }
    if (!c->rsa)
        return 1;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PAD_MODE)) != NULL) {
        int pad = 0;

        if (p->data_type == OSSL_PARAM_INTEGER) {
            if (!OSSL_PARAM_get_int(p, &pad))
                return 0;
        } else if (p->data_type == OSSL_PARAM_UTF8_STRING) {
            const char *s = p->data;

            if (strcmp(s, OSSL_PKEY_RSA_PAD_MODE_PKCSV15) == 0)
                pad = RSA_PKCS1_PADDING;
            else if (strcmp(s, OSSL_PKEY_RSA_PAD_MODE_PSS) == 0)
                pad = RSA_PKCS1_PSS_PADDING;
            else if (strcmp(s, OSSL_PKEY_RSA_PAD_MODE_NONE) == 0)
                pad = RSA_NO_PADDING;
            else
                pad = -1;
        } else {
            return 0;
        }
        if (pad != RSA_PKCS1_PADDING && pad != RSA_PKCS1_PSS_PADDING) {
            M2P_ERR(M2P_R_UNSUPPORTED, "RSA padding mode not supported (pkcs1 and pss are)");
            return 0;
        }
        c->pad = pad;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN)) != NULL) {
        int sl;

        if (p->data_type == OSSL_PARAM_INTEGER) {
            if (!OSSL_PARAM_get_int(p, &sl))
                return 0;
        } else if (p->data_type == OSSL_PARAM_UTF8_STRING) {
            const char *s = p->data;
            char *end;

            if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST) == 0)
                sl = RSA_PSS_SALTLEN_DIGEST;
            else if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_MAX) == 0)
                sl = RSA_PSS_SALTLEN_MAX;
            else if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO) == 0)
                sl = RSA_PSS_SALTLEN_AUTO;
            else {
                long v = strtol(s, &end, 10);

                if (*s == '\0' || *end != '\0' || v < 0 || v > 4096)
                    return 0;
                sl = (int)v;
            }
        } else {
            return 0;
        }
        if (sl < RSA_PSS_SALTLEN_MAX)
            return 0;
        c->saltlen = sl;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST)) != NULL) {
        const char *name = NULL;

        if (!OSSL_PARAM_get_utf8_string_ptr(p, &name) || !set_mgf1(c, name))
            return 0;
    }
    return 1;
}

static const OSSL_PARAM ec_gettable[] = {
    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM rsa_gettable[] = {
    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM ec_settable[] = {
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM rsa_settable[] = {
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_PROPERTIES, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM *sig_gettable_ctx_params(void *vctx, void *provctx)
{
    sigctx *c = vctx;

    return c != NULL && c->rsa ? rsa_gettable : ec_gettable;
}

static const OSSL_PARAM *sig_settable_ctx_params(void *vctx, void *provctx)
{
    sigctx *c = vctx;

    return c != NULL && c->rsa ? rsa_settable : ec_settable;
}

#define FN(id, f) { id, (void (*)(void))(f) }
#define COMMON_FNS                                                              \
    FN(OSSL_FUNC_SIGNATURE_FREECTX, sig_freectx),                               \
    FN(OSSL_FUNC_SIGNATURE_DUPCTX, sig_dupctx),                                 \
    FN(OSSL_FUNC_SIGNATURE_SIGN_INIT, sig_sign_init),                           \
    FN(OSSL_FUNC_SIGNATURE_SIGN, sig_sign),                                     \
    FN(OSSL_FUNC_SIGNATURE_VERIFY_INIT, sig_verify_init),                       \
    FN(OSSL_FUNC_SIGNATURE_VERIFY, sig_verify),                                 \
    FN(OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, sig_digest_sign_init),             \
    FN(OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, sig_digest_update),              \
    FN(OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, sig_digest_sign_final),           \
    FN(OSSL_FUNC_SIGNATURE_DIGEST_SIGN, sig_digest_sign),                       \
    FN(OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT, sig_digest_verify_init),         \
    FN(OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE, sig_digest_update),            \
    FN(OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL, sig_digest_verify_final),       \
    FN(OSSL_FUNC_SIGNATURE_DIGEST_VERIFY, sig_digest_verify),                   \
    FN(OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, sig_get_ctx_params),                 \
    FN(OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, sig_gettable_ctx_params),       \
    FN(OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, sig_set_ctx_params),                 \
    FN(OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, sig_settable_ctx_params)

const OSSL_DISPATCH m2p_ecdsa_signature_functions[] = {
    FN(OSSL_FUNC_SIGNATURE_NEWCTX, ecdsa_newctx),
    COMMON_FNS,
    { 0, NULL }
};

const OSSL_DISPATCH m2p_rsa_signature_functions[] = {
    FN(OSSL_FUNC_SIGNATURE_NEWCTX, rsa_newctx),
    COMMON_FNS,
    { 0, NULL }
};
