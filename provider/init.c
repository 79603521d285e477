/* SPDX-License-Identifier: Apache-2.0 */
/*
 * m2mtls provider entry point: configuration, algorithm tables, teardown.
 * The top of the provider's files: it uses the module (token.c), the
 * provider context's services (provider.c), the error queue (errors.c) and
 * the dispatch tables of the operations; none of them calls into it.
 *
 * openssl.cnf:
 *   [m2mtls_sect]
 *   module = .../ossl-modules/m2mtls.so
 *   pkcs11-module-path = /usr/lib/softhsm/libsofthsm2.so
 *   pkcs11-module-token-pin = file:/etc/m2mtls/pin      (or the PIN itself)
 *   pkcs11-module-cache-keys = true                     (sign with session copies)
 *   activate = 1
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/prov_ssl.h>
#include <openssl/provider.h>

#include "provider.h"

#define ALG(names, fns) { names, M2P_PROPS, fns, NULL }

static const OSSL_ALGORITHM keymgmt_algs[] = {
    ALG("EC:id-ecPublicKey:1.2.840.10045.2.1", m2p_ec_keymgmt_functions),
    ALG("RSA:rsaEncryption:1.2.840.113549.1.1.1", m2p_rsa_keymgmt_functions),
    { NULL, NULL, NULL, NULL }
};

/* The signatures under names of this provider's own too: the key managers
 * name those for the signature operation (query_operation_name), so that
 * libcrypto's EVP_DigestSignInit / EVP_PKEY_sign_init find this provider's
 * implementation at their first fetch. Under "ECDSA" they would first take
 * the default provider's and try (and fail) to export the private key to it,
 * on every signature. */
static const OSSL_ALGORITHM signature_algs[] = {
    ALG(M2P_SIG_ECDSA, m2p_ecdsa_signature_functions),
    ALG("ECDSA", m2p_ecdsa_signature_functions),
    ALG(M2P_SIG_RSA, m2p_rsa_signature_functions),
    ALG("RSA:rsaEncryption:1.2.840.113549.1.1.1", m2p_rsa_signature_functions),
    { NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM store_algs[] = {
    ALG("pkcs11", m2p_store_functions),
    { NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM decoder_algs[] = {
    { "DER", M2P_PROPS ",input=pem", m2p_pem_decoder_functions, NULL },
    { "EC:id-ecPublicKey:1.2.840.10045.2.1", M2P_PROPS ",input=der,structure=pkcs11",
      m2p_ec_decoder_functions, NULL },
    { "RSA:rsaEncryption:1.2.840.113549.1.1.1", M2P_PROPS ",input=der,structure=pkcs11",
      m2p_rsa_decoder_functions, NULL },
    { NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM *prov_query(void *provctx, int operation_id, int *no_cache)
{
    *no_cache = 0;
    switch (operation_id) {
    case OSSL_OP_KEYMGMT:
        return keymgmt_algs;
    case OSSL_OP_SIGNATURE:
        return signature_algs;
    case OSSL_OP_STORE:
        return store_algs;
    case OSSL_OP_DECODER:
        return decoder_algs;
    default:
        return NULL;
    }
}

static const OSSL_PARAM *prov_gettable_params(void *provctx)
{
    static const OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_NAME, NULL, 0),
        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_VERSION, NULL, 0),
        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_BUILDINFO, NULL, 0),
        OSSL_PARAM_int(OSSL_PROV_PARAM_STATUS, NULL),
        OSSL_PARAM_END
    };
    return params;
}

static int prov_get_params(void *provctx, OSSL_PARAM params[])
{
    OSSL_PARAM *p;

    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME)) != NULL
        && !OSSL_PARAM_set_utf8_ptr(p, "m2mtls PKCS#11 provider"))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION)) != NULL
        && !OSSL_PARAM_set_utf8_ptr(p, M2MTLS_VERSION))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO)) != NULL
        && !OSSL_PARAM_set_utf8_ptr(p, M2MTLS_VERSION))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS)) != NULL
        && !OSSL_PARAM_set_int(p, 1))
        return 0;
    return 1;
}

/*
 * TLS-GROUP capabilities for the NIST curves. libssl only offers a group whose
 * keymgmt, fetched by name, comes from the provider declaring the group: when
 * this provider is listed before default its "EC" keymgmt is the one fetched,
 * so it declares the groups (and generates the ephemeral keys as soft keys;
 * ECDH itself runs in the default provider).
 */
typedef struct {
    const char *name, *internal;
    unsigned int id, secbits;
} tls_group;

static const tls_group tls_groups[] = {
    { "secp256r1", "prime256v1", 23, 128 },
    { "P-256", "prime256v1", 23, 128 },
    { "secp384r1", "secp384r1", 24, 192 },
    { "P-384", "secp384r1", 24, 192 },
    { "secp521r1", "secp521r1", 25, 256 },
    { "P-521", "secp521r1", 25, 256 },
};

static int prov_get_capabilities(void *provctx, const char *capability, OSSL_CALLBACK *cb,
                                 void *arg)
{
    size_t i;

    if (strcasecmp(capability, "TLS-GROUP") != 0)
        return 1;
    for (i = 0; i < sizeof(tls_groups) / sizeof(tls_groups[0]); i++) {
        unsigned int id = tls_groups[i].id, sec = tls_groups[i].secbits, kem = 0;
        int mintls = TLS1_VERSION, maxtls = 0, mindtls = DTLS1_VERSION, maxdtls = 0;
        OSSL_PARAM p[] = {
            OSSL_PARAM_utf8_string(OSSL_CAPABILITY_TLS_GROUP_NAME, (char *)tls_groups[i].name, 0),
            OSSL_PARAM_utf8_string(OSSL_CAPABILITY_TLS_GROUP_NAME_INTERNAL,
                                   (char *)tls_groups[i].internal, 0),
            OSSL_PARAM_utf8_string(OSSL_CAPABILITY_TLS_GROUP_ALG, "EC", 0),
            OSSL_PARAM_uint(OSSL_CAPABILITY_TLS_GROUP_ID, &id),
            OSSL_PARAM_uint(OSSL_CAPABILITY_TLS_GROUP_SECURITY_BITS, &sec),
            OSSL_PARAM_int(OSSL_CAPABILITY_TLS_GROUP_MIN_TLS, &mintls),
            OSSL_PARAM_int(OSSL_CAPABILITY_TLS_GROUP_MAX_TLS, &maxtls),
            OSSL_PARAM_int(OSSL_CAPABILITY_TLS_GROUP_MIN_DTLS, &mindtls),
            OSSL_PARAM_int(OSSL_CAPABILITY_TLS_GROUP_MAX_DTLS, &maxdtls),
            OSSL_PARAM_uint(OSSL_CAPABILITY_TLS_GROUP_IS_KEM, &kem),
            OSSL_PARAM_END
        };

        for (size_t j = 0; p[j].key != NULL; j++)
            if (p[j].data_type == OSSL_PARAM_UTF8_STRING)
                p[j].data_size = strlen(p[j].data);
        if (!cb(p, arg))
            return 0;
    }
    return 1;
}

static const OSSL_ITEM *prov_reason_strings(void *provctx)
{
    return m2p_reason_strings();
}

static void prov_teardown(void *provctx)
{
    m2p_prov *prov = provctx;

    if (prov == NULL)
        return;
    m2p_err_forget(prov->handle);
    m2p_module_free(prov->mod);
    m2p_fallback_free(prov);
    OPENSSL_free(prov->module_path);
    OPENSSL_free(prov->config_error);
    if (prov->pin_cfg != NULL)
        OPENSSL_clear_free(prov->pin_cfg, strlen(prov->pin_cfg));
    pthread_mutex_destroy(&prov->fb_lock);
    OPENSSL_free(prov);
}

static const OSSL_DISPATCH prov_functions[] = {
    { OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))prov_teardown },
    { OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, (void (*)(void))prov_gettable_params },
    { OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))prov_get_params },
    { OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))prov_query },
    { OSSL_FUNC_PROVIDER_GET_REASON_STRINGS, (void (*)(void))prov_reason_strings },
    { OSSL_FUNC_PROVIDER_GET_CAPABILITIES, (void (*)(void))prov_get_capabilities },
    { 0, NULL }
};

/* true / false (also yes / no, on / off, 1 / 0, any case); unset: dflt; else -1 */
static int parse_bool(const char *v, int dflt)
{
    static const char *const yes[] = { "true", "yes", "on", "1" }, *const no[] = { "false", "no", "off", "0" };
    size_t i;

    if (v == NULL)
        return dflt;
    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return 1;
        if (strcasecmp(v, no[i]) == 0)
            return 0;
    }
    return -1;
}

__attribute__((visibility("default"))) OSSL_provider_init_fn OSSL_provider_init;

int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                       const OSSL_DISPATCH **out, void **provctx)
{
    OSSL_FUNC_core_get_params_fn *c_get_params = NULL;
    const OSSL_DISPATCH *d;
    m2p_prov *prov;
    char *module_path = NULL, *pin = NULL, *cache = NULL;
    OSSL_PARAM params[4];

    for (d = in; d->function_id != 0; d++) {
        switch (d->function_id) {
        case OSSL_FUNC_CORE_GET_PARAMS:
            c_get_params = OSSL_FUNC_core_get_params(d);
            break;
        case OSSL_FUNC_BIO_READ_EX:
            m2p_core_bio_init(OSSL_FUNC_BIO_read_ex(d));
            break;
        default:
            break;
        }
    }
    m2p_err_init(handle, in);
    if ((prov = OPENSSL_zalloc(sizeof(*prov))) == NULL) {
        m2p_err_forget(handle);
        return 0;
    }
    prov->handle = handle;
    pthread_mutex_init(&prov->fb_lock, NULL);
    params[0] = OSSL_PARAM_construct_utf8_ptr("pkcs11-module-path", &module_path, 0);
    params[1] = OSSL_PARAM_construct_utf8_ptr("pkcs11-module-token-pin", &pin, 0);
    params[2] = OSSL_PARAM_construct_utf8_ptr("pkcs11-module-cache-keys", &cache, 0);
    params[3] = OSSL_PARAM_construct_end();
    if (c_get_params != NULL && !c_get_params(handle, params)) {
        M2P_ERR(M2P_R_CONFIG, "cannot read the provider configuration");
        prov_teardown(prov);
        return 0;
    }
    if (module_path != NULL && (prov->module_path = OPENSSL_strdup(module_path)) == NULL)
        goto err;
    if (pin != NULL && (prov->pin_cfg = OPENSSL_strdup(pin)) == NULL)
        goto err;
    if ((prov->cache_keys = parse_bool(cache, 1)) < 0) {
        /* Reported at first use, like a missing module path: a provider that
         * fails here is silently left out of the configuration by OpenSSL. */
        char msg[256];

        snprintf(msg, sizeof(msg), "pkcs11-module-cache-keys = %.64s: expected true or false", cache);
        if ((prov->config_error = OPENSSL_strdup(msg)) == NULL)
            goto err;
    }
    /* the PKCS#11 module itself is loaded on first use, never here */
    m2p_forks_init();
    if ((prov->mod = m2p_module_new(prov)) == NULL)
        goto err;
    *out = prov_functions;
    *provctx = prov;
    return 1;
err:
    prov_teardown(prov);
    return 0;
}
