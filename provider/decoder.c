/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DECODERs for the key reference file:
 *   -----BEGIN PKCS#11 PROVIDER URI-----   (DER: SEQUENCE { VisibleString
 *   "PKCS#11 Provider URI v1.0", UTF8String uri })
 * 1. "DER" from input=pem: the PEM armour to the DER structure "pkcs11";
 * 2. "EC" / "RSA" from input=der,structure=pkcs11: the DER to a key passed by
 *    reference; libcrypto hands it to this provider's KEYMGMT LOAD.
 * The format itself is read by common/keyref.c, as everywhere in m2mtls.
 */
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "keyref.h"   /* common/: the key reference codec */
#include "provider.h"

#define REF_MAX_INPUT (64 * 1024)

typedef struct {
    m2p_prov *prov;
    int type;                       /* 0 for the PEM decoder, else M2P_KEY_* */
} dec_ctx;

static OSSL_FUNC_decoder_newctx_fn pem_newctx, ec_newctx, rsa_newctx;
static OSSL_FUNC_decoder_freectx_fn dec_freectx;
static OSSL_FUNC_decoder_decode_fn pem_decode, key_decode;
static OSSL_FUNC_decoder_does_selection_fn dec_does_selection;

static void *newctx(void *provctx, int type)
{
    dec_ctx *c = OPENSSL_zalloc(sizeof(*c));

    if (c != NULL) {
        c->prov = provctx;
        c->type = type;
    }
    return c;
}

static void *pem_newctx(void *provctx)
{
    return newctx(provctx, 0);
}

static void *ec_newctx(void *provctx)
{
    return newctx(provctx, M2P_KEY_EC);
}

static void *rsa_newctx(void *provctx)
{
    return newctx(provctx, M2P_KEY_RSA);
}

static void dec_freectx(void *vctx)
{
    OPENSSL_free(vctx);
}

static int dec_does_selection(void *provctx, int selection)
{
    return selection == 0 || (selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0;
}

static int contains(const unsigned char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle), i;

    for (i = 0; i + m <= n; i++)
        if (hay[i] == (unsigned char)needle[0] && memcmp(hay + i, needle, m) == 0)
            return 1;
    return 0;
}

static int pem_decode(void *vctx, OSSL_CORE_BIO *cin, int selection, OSSL_CALLBACK *data_cb,
                      void *data_cbarg, OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    unsigned char *in = NULL, *der = NULL;
    size_t inlen = 0;
    long derlen = 0;
    char *name = NULL, *header = NULL;
    BIO *mem = NULL;
    OSSL_PARAM params[3];
    int ok = 1;

    if (!m2p_core_bio_read_all(cin, REF_MAX_INPUT, &in, &inlen))
        return 1;
    if (!contains(in, inlen, "-----BEGIN " M2C_KEYREF_PEM_LABEL "-----"))
        goto done;  /* not ours: let the other decoders try */
    if ((mem = BIO_new_mem_buf(in, (int)inlen)) == NULL)
        goto done;
    if (!PEM_read_bio(mem, &name, &header, &der, &derlen) || strcmp(name, M2C_KEYREF_PEM_LABEL) != 0)
        goto done;
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_DATA, der, (size_t)derlen);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_STRUCTURE, "pkcs11", 0);
    params[2] = OSSL_PARAM_construct_end();
    ok = data_cb(params, data_cbarg);
done:
    BIO_free(mem);
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(der);
    OPENSSL_free(in);
    return ok;
}

static int key_decode(void *vctx, OSSL_CORE_BIO *cin, int selection, OSSL_CALLBACK *data_cb,
                      void *data_cbarg, OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    dec_ctx *c = vctx;
    unsigned char *der = NULL;
    size_t derlen = 0;
    char *uri = NULL;
    m2p_key *k = NULL;
    OSSL_PARAM params[4];
    int objtype = OSSL_OBJECT_PKEY, ok = 1;
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;

    if (!m2p_core_bio_read_all(cin, REF_MAX_INPUT, &der, &derlen))
        return 1;
    if (!m2c_keyref_decode(der, derlen, &uri))
        goto done;      /* not a key reference */
    if (selection != 0 && !(selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY))
        cls = CKO_PUBLIC_KEY;
    k = m2p_key_from_uri(c->prov, uri, cls, pw_cb, pw_cbarg);
    if (k == NULL) {
        ok = 0;         /* it is a reference, but the key is not there: stop, with the error */
        goto done;
    }
    if (k->type != c->type)
        goto done;      /* the other key type's decoder takes it */
    params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &objtype);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE,
                                                 k->type == M2P_KEY_EC ? "EC" : "RSA", 0);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &k, sizeof(k));
    params[3] = OSSL_PARAM_construct_end();
    ok = data_cb(params, data_cbarg);
done:
    m2p_key_free(k);
    OPENSSL_free(uri);
    OPENSSL_free(der);
    return ok;
}

#define FN(id, f) { id, (void (*)(void))(f) }

const OSSL_DISPATCH m2p_pem_decoder_functions[] = {
    FN(OSSL_FUNC_DECODER_NEWCTX, pem_newctx),
    FN(OSSL_FUNC_DECODER_FREECTX, dec_freectx),
    FN(OSSL_FUNC_DECODER_DECODE, pem_decode),
    { 0, NULL }
};

const OSSL_DISPATCH m2p_ec_decoder_functions[] = {
    FN(OSSL_FUNC_DECODER_NEWCTX, ec_newctx),
    FN(OSSL_FUNC_DECODER_FREECTX, dec_freectx),
    FN(OSSL_FUNC_DECODER_DOES_SELECTION, dec_does_selection),
    FN(OSSL_FUNC_DECODER_DECODE, key_decode),
    { 0, NULL }
};

const OSSL_DISPATCH m2p_rsa_decoder_functions[] = {
    FN(OSSL_FUNC_DECODER_NEWCTX, rsa_newctx),
    FN(OSSL_FUNC_DECODER_FREECTX, dec_freectx),
    FN(OSSL_FUNC_DECODER_DOES_SELECTION, dec_does_selection),
    FN(OSSL_FUNC_DECODER_DECODE, key_decode),
    { 0, NULL }
};
