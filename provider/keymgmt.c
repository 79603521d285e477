/* SPDX-License-Identifier: Apache-2.0 */
/*
 * KEYMGMT for EC and RSA keys held by reference (the key object: key.c), and
 * for soft keys made through it. The private key never leaves
 * the token: EXPORT refuses private parts (that is what makes libcrypto and
 * libssl use this provider's own signature), IMPORT accepts public parts only
 * (what libssl's certificate/key match needs) and exports use named curves.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/x509.h>

#include "provider.h"

static m2p_key *soft_wrap(m2p_prov *prov, int type, EVP_PKEY *pk, int sel)
{
    m2p_key *k = m2p_key_new(prov, type);

    if (k == NULL) {
        EVP_PKEY_free(pk);
        return NULL;
    }
    k->soft = 1;
    k->soft_sel = sel;
    k->pubkey = pk;
    return k;
}

static int curve_nid_from_name(const char *name)
{
    int nid = EC_curve_nist2nid(name);

    if (nid == NID_undef)
        nid = OBJ_sn2nid(name);
    if (nid == NID_undef)
        nid = OBJ_ln2nid(name);
    if (nid == NID_undef)
        nid = OBJ_txt2nid(name);
    return nid;
}

/* ---- KEYMGMT dispatch ------------------------------------------------------- */

static OSSL_FUNC_keymgmt_new_fn km_ec_new, km_rsa_new;
static OSSL_FUNC_keymgmt_free_fn km_free;
static OSSL_FUNC_keymgmt_load_fn km_load;
static OSSL_FUNC_keymgmt_has_fn km_has;
static OSSL_FUNC_keymgmt_match_fn km_match;
static OSSL_FUNC_keymgmt_import_fn km_import;
static OSSL_FUNC_keymgmt_import_types_fn km_ec_types, km_rsa_types;
static OSSL_FUNC_keymgmt_export_fn km_export;
static OSSL_FUNC_keymgmt_get_params_fn km_get_params;
static OSSL_FUNC_keymgmt_gettable_params_fn km_ec_gettable, km_rsa_gettable;
static OSSL_FUNC_keymgmt_query_operation_name_fn km_ec_opname, km_rsa_opname;
static OSSL_FUNC_keymgmt_dup_fn km_dup;
static OSSL_FUNC_keymgmt_set_params_fn km_set_params;
static OSSL_FUNC_keymgmt_settable_params_fn km_settable;
static OSSL_FUNC_keymgmt_gen_init_fn km_ec_gen_init, km_rsa_gen_init;
static OSSL_FUNC_keymgmt_gen_set_params_fn km_gen_set_params;
static OSSL_FUNC_keymgmt_gen_settable_params_fn km_ec_gen_settable, km_rsa_gen_settable;
static OSSL_FUNC_keymgmt_gen_set_template_fn km_gen_set_template;
static OSSL_FUNC_keymgmt_gen_fn km_gen;
static OSSL_FUNC_keymgmt_gen_cleanup_fn km_gen_cleanup;

static void *km_ec_new(void *provctx)
{
    return m2p_key_new(provctx, M2P_KEY_EC);
}

static void *km_rsa_new(void *provctx)
{
    return m2p_key_new(provctx, M2P_KEY_RSA);
}

static void km_free(void *kd)
{
    m2p_key_free(kd);
}

static void *km_dup(const void *kd, int selection)
{
    m2p_key *k = (m2p_key *)kd;

    if (k->soft) {
        EVP_PKEY *pk = EVP_PKEY_dup(k->pubkey);

        return pk != NULL ? soft_wrap(k->prov, k->type, pk, k->soft_sel) : NULL;
    }
    m2p_key_up_ref(k);   /* token keys are immutable: sharing is a copy */
    return k;
}

static void *km_load(const void *reference, size_t reference_sz)
{
    m2p_key *k;

    if (reference == NULL || reference_sz != sizeof(k))
        return NULL;
    memcpy(&k, reference, sizeof(k));
    m2p_key_up_ref(k);
    return k;
}

static int has_public(const m2p_key *k)
{
    return k->pubkey != NULL;
}

static int km_has(const void *kd, int selection)
{
    const m2p_key *k = kd;

    if (k == NULL)
        return 0;
    if (k->soft)
        return (selection & OSSL_KEYMGMT_SELECT_ALL & ~k->soft_sel
                & ~OSSL_KEYMGMT_SELECT_OTHER_PARAMETERS) == 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) && !has_public(k))
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) && !m2p_key_is_private(k))
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS) && k->type == M2P_KEY_EC
        && k->nid == NID_undef)
        return 0;
    return 1;
}

static int km_match(const void *a, const void *b, int selection)
{
    const m2p_key *k1 = a, *k2 = b;

    if (k1->type != k2->type)
        return 0;
    if (k1->soft || k2->soft) {
        if (k1->pubkey == NULL || k2->pubkey == NULL)
            return 0;
        if (selection & OSSL_KEYMGMT_SELECT_KEYPAIR)
            return EVP_PKEY_eq(k1->pubkey, k2->pubkey) == 1;
        return EVP_PKEY_parameters_eq(k1->pubkey, k2->pubkey) == 1;
    }
    if (k1->type == M2P_KEY_EC && (selection & OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS)
        && k1->nid != k2->nid)
        return 0;
    if (selection & OSSL_KEYMGMT_SELECT_KEYPAIR) {
        if (!has_public(k1) || !has_public(k2))
            return 0;
        if (k1->type == M2P_KEY_EC)
            return k1->nid == k2->nid && k1->pub_len == k2->pub_len
                && memcmp(k1->pub, k2->pub, k1->pub_len) == 0;
        return k1->n_len == k2->n_len && memcmp(k1->n, k2->n, k1->n_len) == 0
            && k1->e_len == k2->e_len && memcmp(k1->e, k2->e, k1->e_len) == 0;
    }
    return 1;
}

static int bn_param_bytes(const OSSL_PARAM *p, unsigned char **out, size_t *outlen)
{
    BIGNUM *bn = NULL;
    int ok = 0;

    if (!OSSL_PARAM_get_BN(p, &bn))
        return 0;
    *outlen = (size_t)BN_num_bytes(bn);
    if (*outlen == 0)
        *outlen = 1;
    if ((*out = OPENSSL_zalloc(*outlen)) != NULL) {
        BN_bn2binpad(bn, *out, (int)*outlen);
        ok = 1;
    }
    BN_free(bn);
    return ok;
}


/* A soft key (software, in the default-only fallback context) made from
 * PARAMS with EVP_PKEY_fromdata(SELECTION); SOFT_SEL is what it then holds. */
static int import_soft(m2p_key *k, const char *alg, int selection, const OSSL_PARAM params[], int soft_sel)
{
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(m2p_fallback_ctx(k->prov), alg, NULL);
    EVP_PKEY *pk = NULL;
    int ok = pctx != NULL && EVP_PKEY_fromdata_init(pctx) > 0
        && EVP_PKEY_fromdata(pctx, &pk, selection, (OSSL_PARAM *)params) > 0;

    EVP_PKEY_CTX_free(pctx);
    if (!ok)
        return 0;
    EVP_PKEY_free(k->pubkey);
    k->pubkey = pk;
    k->soft = 1;
    k->soft_sel = soft_sel;
    return 1;
}

static int km_import(void *kd, int selection, const OSSL_PARAM params[])
{
    m2p_key *k = kd;
    const OSSL_PARAM *p;

    if (k == NULL || k->tok != NULL || k->soft)
        return 0;
    if (((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY)
         && (OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PRIV_KEY) != NULL
             || OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_D) != NULL))) {
        /* A software private key (EVP_PKEY_fromdata() on "EC"/"RSA" when this
         * provider is listed first): a soft key in the fallback context. */
        return import_soft(k, k->type == M2P_KEY_EC ? "EC" : "RSA", EVP_PKEY_KEYPAIR, params,
                           OSSL_KEYMGMT_SELECT_ALL);
    }
    if (k->type == M2P_KEY_EC) {
        const char *gname = NULL;
        const void *pub = NULL;
        size_t publen = 0;

        p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_GROUP_NAME);
        if (p == NULL || !OSSL_PARAM_get_utf8_string_ptr(p, &gname))
            return 0;
        k->nid = curve_nid_from_name(gname);
        if (!m2p_ec_supported_curve(k->nid))
            return 0;
        if (!(selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY)) /* domain parameters only */
            return import_soft(k, "EC", EVP_PKEY_KEY_PARAMETERS, params, OSSL_KEYMGMT_SELECT_ALL_PARAMETERS);
        p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PUB_KEY);
        if (p == NULL)
            p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY);
        if (p == NULL || !OSSL_PARAM_get_octet_string_ptr(p, &pub, &publen))
            return 0;
        OPENSSL_free(k->pub);
        k->pub = NULL;
        if (!m2p_ec_point_uncompressed(k->prov, k->nid, pub, publen, &k->pub, &k->pub_len))
            return 0;
    } else {
        if (!(selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY))
            return 1;
        OPENSSL_free(k->n);
        OPENSSL_free(k->e);
        k->n = k->e = NULL;
        if ((p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_N)) == NULL
            || !bn_param_bytes(p, &k->n, &k->n_len)
            || (p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_E)) == NULL
            || !bn_param_bytes(p, &k->e, &k->e_len))
            return 0;
    }
    return m2p_key_finish_public(k);
}

static const OSSL_PARAM ec_types[] = {
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM rsa_types[] = {
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM *km_ec_types(int selection)
{
    return ec_types;
}

static const OSSL_PARAM *km_rsa_types(int selection)
{
    return rsa_types;
}

static int km_export(void *kd, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
    m2p_key *k = kd;
    OSSL_PARAM *params;
    int ok;

    if (k == NULL)
        return 0;
    if (k->soft)
        return EVP_PKEY_export(k->pubkey, selection, cb, cbarg);
    /* the private key never leaves the token */
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) && m2p_key_is_private(k))
        return 0;
    if (!has_public(k) || (params = m2p_key_public_params(k, selection)) == NULL)
        return 0;
    ok = cb(params, cbarg);
    OSSL_PARAM_free(params);
    return ok;
}

static int km_get_params(void *kd, OSSL_PARAM params[])
{
    m2p_key *k = kd;
    OSSL_PARAM *p;

    if (k == NULL || k->pubkey == NULL)
        return 0;
    if ((p = OSSL_PARAM_locate(params, M2P_PARAM_SESSION_CACHE)) != NULL) {
        char status[160];

        if (!m2p_key_cache_status(k, status, sizeof(status)) || !OSSL_PARAM_set_utf8_string(p, status))
            return 0;
    }
    if (k->soft)
        return EVP_PKEY_get_params(k->pubkey, params);
    if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_BITS)) != NULL
        && !OSSL_PARAM_set_int(p, EVP_PKEY_get_bits(k->pubkey)))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_SECURITY_BITS)) != NULL
        && !OSSL_PARAM_set_int(p, EVP_PKEY_get_security_bits(k->pubkey)))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_MAX_SIZE)) != NULL
        && !OSSL_PARAM_set_int(p, EVP_PKEY_get_size(k->pubkey)))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_DEFAULT_DIGEST)) != NULL
        && !OSSL_PARAM_set_utf8_string(p, "SHA256"))
        return 0;
    if (k->type == M2P_KEY_EC) {
        if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_GROUP_NAME)) != NULL
            && !OSSL_PARAM_set_utf8_string(p, OBJ_nid2sn(k->nid)))
            return 0;
        if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_PUB_KEY)) != NULL
            && !OSSL_PARAM_set_octet_string(p, k->pub, k->pub_len))
            return 0;
        if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY)) != NULL
            && !OSSL_PARAM_set_octet_string(p, k->pub, k->pub_len))
            return 0;
        if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT)) != NULL
            && !OSSL_PARAM_set_utf8_string(p, "uncompressed"))
            return 0;
        if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_EC_ENCODING)) != NULL
            && !OSSL_PARAM_set_utf8_string(p, "named_curve"))
            return 0;
    } else {
        BIGNUM *bn;
        int ok = 1;

        if ((p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_RSA_N)) != NULL) {
            bn = BN_bin2bn(k->n, (int)k->n_len, NULL);
            ok = bn != NULL && OSSL_PARAM_set_BN(p, bn);
            BN_free(bn);
        }
        if (ok && (p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_RSA_E)) != NULL) {
            bn = BN_bin2bn(k->e, (int)k->e_len, NULL);
            ok = bn != NULL && OSSL_PARAM_set_BN(p, bn);
            BN_free(bn);
        }
        if (!ok)
            return 0;
    }
    return 1;
}

static const OSSL_PARAM ec_gettable[] = {
    OSSL_PARAM_utf8_string(M2P_PARAM_SESSION_CACHE, NULL, 0),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM rsa_gettable[] = {
    OSSL_PARAM_utf8_string(M2P_PARAM_SESSION_CACHE, NULL, 0),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM *km_ec_gettable(void *provctx)
{
    return ec_gettable;
}

static const OSSL_PARAM *km_rsa_gettable(void *provctx)
{
    return rsa_gettable;
}

static const char *km_ec_opname(int operation_id)
{
    switch (operation_id) {
    case OSSL_OP_SIGNATURE:
        return M2P_SIG_ECDSA;   /* not "ECDSA": see signature_algs in init.c */
    case OSSL_OP_KEYEXCH:
        return "ECDH";
    default:
        return NULL;
    }
}

static const char *km_rsa_opname(int operation_id)
{
    return operation_id == OSSL_OP_SIGNATURE ? M2P_SIG_RSA : NULL;
}

static int km_set_params(void *kd, const OSSL_PARAM params[])
{
    m2p_key *k = kd;

    if (k == NULL)
        return 0;
    if (params == NULL || params[0].key == NULL)
        return 1;
    if (!k->soft)   /* a token key does not change */
        return OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY) == NULL;
    if (!EVP_PKEY_set_params(k->pubkey, (OSSL_PARAM *)params))
        return 0;
    if (OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY) != NULL)
        k->soft_sel |= OSSL_KEYMGMT_SELECT_PUBLIC_KEY;
    return 1;
}

static const OSSL_PARAM *km_settable(void *provctx)
{
    static const OSSL_PARAM settable[] = {
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
        OSSL_PARAM_END
    };
    return settable;
}

/* ---- key generation: soft keys only (see provider.h) ------------------------ */

typedef struct {
    m2p_prov *prov;
    int type, selection;
    char group[64], encoding[32], pointfmt[32];
    size_t bits, primes;
    BIGNUM *e;
} gen_ctx;

static void *gen_init(void *provctx, int type, int selection, const OSSL_PARAM params[])
{
    gen_ctx *g = OPENSSL_zalloc(sizeof(*g));

    if (g == NULL)
        return NULL;
    g->prov = provctx;
    g->type = type;
    g->selection = selection;
    if (!km_gen_set_params(g, params)) {
        km_gen_cleanup(g);
        return NULL;
    }
    return g;
}

static void *km_ec_gen_init(void *provctx, int selection, const OSSL_PARAM params[])
{
    return gen_init(provctx, M2P_KEY_EC, selection, params);
}

static void *km_rsa_gen_init(void *provctx, int selection, const OSSL_PARAM params[])
{
    return gen_init(provctx, M2P_KEY_RSA, selection, params);
}

static int get_str(const OSSL_PARAM params[], const char *name, char *buf, size_t n)
{
    const OSSL_PARAM *p = OSSL_PARAM_locate_const(params, name);

    if (p == NULL)
        return 1;
    return OSSL_PARAM_get_utf8_string(p, &buf, n);
}

static int km_gen_set_params(void *vg, const OSSL_PARAM params[])
{
    gen_ctx *g = vg;
    const OSSL_PARAM *p;

    if (params == NULL)
        return 1;
    if (!get_str(params, OSSL_PKEY_PARAM_GROUP_NAME, g->group, sizeof(g->group))
        || !get_str(params, OSSL_PKEY_PARAM_EC_ENCODING, g->encoding, sizeof(g->encoding))
        || !get_str(params, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, g->pointfmt,
                    sizeof(g->pointfmt)))
        return 0;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_BITS)) != NULL
        && !OSSL_PARAM_get_size_t(p, &g->bits))
        return 0;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_PRIMES)) != NULL
        && !OSSL_PARAM_get_size_t(p, &g->primes))
        return 0;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_E)) != NULL
        && !OSSL_PARAM_get_BN(p, &g->e))
        return 0;
    return 1;
}

static const OSSL_PARAM *km_ec_gen_settable(void *gctx, void *provctx)
{
    static const OSSL_PARAM settable[] = {
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
        OSSL_PARAM_END
    };
    return settable;
}

static const OSSL_PARAM *km_rsa_gen_settable(void *gctx, void *provctx)
{
    static const OSSL_PARAM settable[] = {
        OSSL_PARAM_size_t(OSSL_PKEY_PARAM_RSA_BITS, NULL),
        OSSL_PARAM_size_t(OSSL_PKEY_PARAM_RSA_PRIMES, NULL),
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
        OSSL_PARAM_END
    };
    return settable;
}

static int km_gen_set_template(void *vg, void *templ)
{
    gen_ctx *g = vg;
    m2p_key *t = templ;
    size_t len;

    if (t == NULL || t->type != M2P_KEY_EC)
        return 1;
    if (t->soft)
        return EVP_PKEY_get_utf8_string_param(t->pubkey, OSSL_PKEY_PARAM_GROUP_NAME, g->group,
                                              sizeof(g->group), &len);
    if (t->nid == NID_undef)
        return 0;
    snprintf(g->group, sizeof(g->group), "%s", OBJ_nid2sn(t->nid));
    return 1;
}

static void *km_gen(void *vg, OSSL_CALLBACK *cb, void *cbarg)
{
    gen_ctx *g = vg;
    OSSL_PARAM params[6], *p = params;
    EVP_PKEY_CTX *pctx;
    EVP_PKEY *pk = NULL;
    int keypair = (g->selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0 || g->type == M2P_KEY_RSA;
    unsigned char ebuf[16];
    int ok;

    pctx = EVP_PKEY_CTX_new_from_name(m2p_fallback_ctx(g->prov),
                                      g->type == M2P_KEY_EC ? "EC" : "RSA", NULL);
    if (pctx == NULL)
        return NULL;
    if (g->group[0] != '\0')
        *p++ = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, g->group, 0);
    if (g->encoding[0] != '\0')
        *p++ = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, g->encoding, 0);
    if (g->pointfmt[0] != '\0')
        *p++ = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                                g->pointfmt, 0);
    if (g->bits != 0)
        *p++ = OSSL_PARAM_construct_size_t(OSSL_PKEY_PARAM_RSA_BITS, &g->bits);
    if (g->primes != 0)
        *p++ = OSSL_PARAM_construct_size_t(OSSL_PKEY_PARAM_RSA_PRIMES, &g->primes);
    if (g->e != NULL && BN_num_bytes(g->e) <= (int)sizeof(ebuf)
        && BN_bn2nativepad(g->e, ebuf, sizeof(ebuf)) > 0)
        *p++ = OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_RSA_E, ebuf, sizeof(ebuf));
    *p = OSSL_PARAM_construct_end();
    if (keypair)
        ok = EVP_PKEY_keygen_init(pctx) > 0 && EVP_PKEY_CTX_set_params(pctx, params) > 0
            && EVP_PKEY_generate(pctx, &pk) > 0;
    else
        ok = EVP_PKEY_paramgen_init(pctx) > 0 && EVP_PKEY_CTX_set_params(pctx, params) > 0
            && EVP_PKEY_paramgen(pctx, &pk) > 0;
    EVP_PKEY_CTX_free(pctx);
    if (!ok) {
        EVP_PKEY_free(pk);
        return NULL;
    }
    return soft_wrap(g->prov, g->type, pk,
                     keypair ? OSSL_KEYMGMT_SELECT_ALL : OSSL_KEYMGMT_SELECT_ALL_PARAMETERS);
}

static void km_gen_cleanup(void *vg)
{
    gen_ctx *g = vg;

    if (g == NULL)
        return;
    BN_free(g->e);
    OPENSSL_free(g);
}

#define FN(id, f) { id, (void (*)(void))(f) }

const OSSL_DISPATCH m2p_ec_keymgmt_functions[] = {
    FN(OSSL_FUNC_KEYMGMT_NEW, km_ec_new),
    FN(OSSL_FUNC_KEYMGMT_FREE, km_free),
    FN(OSSL_FUNC_KEYMGMT_LOAD, km_load),
    FN(OSSL_FUNC_KEYMGMT_DUP, km_dup),
    FN(OSSL_FUNC_KEYMGMT_HAS, km_has),
    FN(OSSL_FUNC_KEYMGMT_MATCH, km_match),
    FN(OSSL_FUNC_KEYMGMT_IMPORT, km_import),
    FN(OSSL_FUNC_KEYMGMT_IMPORT_TYPES, km_ec_types),
    FN(OSSL_FUNC_KEYMGMT_EXPORT, km_export),
    FN(OSSL_FUNC_KEYMGMT_EXPORT_TYPES, km_ec_types),
    FN(OSSL_FUNC_KEYMGMT_GET_PARAMS, km_get_params),
    FN(OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, km_ec_gettable),
    FN(OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, km_ec_opname),
    FN(OSSL_FUNC_KEYMGMT_SET_PARAMS, km_set_params),
    FN(OSSL_FUNC_KEYMGMT_SETTABLE_PARAMS, km_settable),
    FN(OSSL_FUNC_KEYMGMT_GEN_INIT, km_ec_gen_init),
    FN(OSSL_FUNC_KEYMGMT_GEN_SET_PARAMS, km_gen_set_params),
    FN(OSSL_FUNC_KEYMGMT_GEN_SETTABLE_PARAMS, km_ec_gen_settable),
    FN(OSSL_FUNC_KEYMGMT_GEN_SET_TEMPLATE, km_gen_set_template),
    FN(OSSL_FUNC_KEYMGMT_GEN, km_gen),
    FN(OSSL_FUNC_KEYMGMT_GEN_CLEANUP, km_gen_cleanup),
    { 0, NULL }
};

const OSSL_DISPATCH m2p_rsa_keymgmt_functions[] = {
    FN(OSSL_FUNC_KEYMGMT_NEW, km_rsa_new),
    FN(OSSL_FUNC_KEYMGMT_FREE, km_free),
    FN(OSSL_FUNC_KEYMGMT_LOAD, km_load),
    FN(OSSL_FUNC_KEYMGMT_DUP, km_dup),
    FN(OSSL_FUNC_KEYMGMT_HAS, km_has),
    FN(OSSL_FUNC_KEYMGMT_MATCH, km_match),
    FN(OSSL_FUNC_KEYMGMT_IMPORT, km_import),
    FN(OSSL_FUNC_KEYMGMT_IMPORT_TYPES, km_rsa_types),
    FN(OSSL_FUNC_KEYMGMT_EXPORT, km_export),
    FN(OSSL_FUNC_KEYMGMT_EXPORT_TYPES, km_rsa_types),
    FN(OSSL_FUNC_KEYMGMT_GET_PARAMS, km_get_params),
    FN(OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, km_rsa_gettable),
    FN(OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, km_rsa_opname),
    FN(OSSL_FUNC_KEYMGMT_SET_PARAMS, km_set_params),
    FN(OSSL_FUNC_KEYMGMT_SETTABLE_PARAMS, km_settable),
    FN(OSSL_FUNC_KEYMGMT_GEN_INIT, km_rsa_gen_init),
    FN(OSSL_FUNC_KEYMGMT_GEN_SET_PARAMS, km_gen_set_params),
    FN(OSSL_FUNC_KEYMGMT_GEN_SETTABLE_PARAMS, km_rsa_gen_settable),
    FN(OSSL_FUNC_KEYMGMT_GEN_SET_TEMPLATE, km_gen_set_template),
    FN(OSSL_FUNC_KEYMGMT_GEN, km_gen),
    FN(OSSL_FUNC_KEYMGMT_GEN_CLEANUP, km_gen_cleanup),
    { 0, NULL }
};
