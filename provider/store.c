/* SPDX-License-Identifier: Apache-2.0 */
/*
 * STORE for RFC 7512 pkcs11: URIs: private keys and public keys are passed by
 * reference (the KEYMGMT's LOAD picks them up), certificates by value (DER).
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/crypto.h>
#include <openssl/store.h>

#include "provider.h"

#define MAX_TOKENS 16
#define MAX_OBJECTS 64

typedef struct {
    int kind;                       /* OSSL_OBJECT_PKEY or OSSL_OBJECT_CERT */
    m2p_key *key;
    unsigned char *der;
    size_t der_len;
    char *label;
} store_obj;

typedef struct {
    m2p_prov *prov;
    m2p_uri *uri;
    int expect;                     /* OSSL_STORE_INFO_* or 0 */
    int searched, failed;
    store_obj *objs;
    size_t nobjs, next;
} store_ctx;

static OSSL_FUNC_store_open_fn st_open;
static OSSL_FUNC_store_settable_ctx_params_fn st_settable;
static OSSL_FUNC_store_set_ctx_params_fn st_set_params;
static OSSL_FUNC_store_load_fn st_load;
static OSSL_FUNC_store_eof_fn st_eof;
static OSSL_FUNC_store_close_fn st_close;

static void *st_open(void *provctx, const char *uri)
{
    store_ctx *c;
    m2p_uri *u;

    if (uri == NULL || strncasecmp(uri, "pkcs11:", 7) != 0)
        return NULL;
    if ((u = m2p_uri_parse(uri)) == NULL)
        return NULL;
    if ((c = OPENSSL_zalloc(sizeof(*c))) == NULL) {
        m2p_uri_free(u);
        return NULL;
    }
    c->prov = provctx;
    c->uri = u;
    return c;
}

static const OSSL_PARAM *st_settable(void *provctx)
{
    static const OSSL_PARAM params[] = {
        OSSL_PARAM_int(OSSL_STORE_PARAM_EXPECT, NULL),
        OSSL_PARAM_END
    };
    return params;
}

static int st_set_params(void *loaderctx, const OSSL_PARAM params[])
{
    store_ctx *c = loaderctx;
    const OSSL_PARAM *p;

    if (params == NULL)
        return 1;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_EXPECT)) != NULL
        && !OSSL_PARAM_get_int(p, &c->expect))
        return 0;
    return 1;
}

static int push_obj(store_ctx *c, store_obj *o)
{
    store_obj *n = OPENSSL_realloc(c->objs, (c->nobjs + 1) * sizeof(*n));

    if (n == NULL)
        return 0;
    c->objs = n;
    c->objs[c->nobjs++] = *o;
    return 1;
}

/* PIN from the URI (pin-value, or pin-source naming a file) */
static char *uri_pin(const m2p_uri *u)
{
    if (u->pin_value != NULL)
        return OPENSSL_strdup(u->pin_value);
    if (u->pin_source != NULL)
        return m2p_read_pin_file(u->pin_source);
    return NULL;
}

/* Searches every matching token; cls_want is -1 for any class. */
static int search(m2p_prov *prov, const m2p_uri *u, long cls_want, OSSL_PASSPHRASE_CALLBACK *pw_cb,
                  void *pw_cbarg, store_ctx *c, m2p_key **first_key)
{
    m2p_token *toks[MAX_TOKENS];
    size_t ntok, t;
    char *pin = NULL;
    int ok = 0;

    if (prov->mod == NULL)
        return 0;
    ntok = m2p_tokens_find(prov->mod, u, toks, MAX_TOKENS);
    if (ntok == 0) {
        M2P_ERR(M2P_R_NOT_FOUND, "no token matches the URI (token=%s)",
                u->token != NULL ? u->token : "*");
        return 0;
    }
    if ((u->pin_value != NULL || u->pin_source != NULL) && (pin = uri_pin(u)) == NULL)
        return 0;
    for (t = 0; t < ntok; t++) {
        m2p_login_src src = { pin, 0, pw_cb, pw_cbarg };
        CK_SESSION_HANDLE s;
        CK_ATTRIBUTE tmpl[3];
        CK_ULONG n = 0, i;
        CK_OBJECT_CLASS cls = 0;
        CK_OBJECT_HANDLE hs[MAX_OBJECTS];
        long cnt;

        src.no_login = cls_want == (long)CKO_CERTIFICATE || cls_want == (long)CKO_PUBLIC_KEY;
        if (!m2p_session_get(toks[t], &s, &src))
            goto done;
        if (cls_want >= 0) {
            cls = (CK_OBJECT_CLASS)cls_want;
            tmpl[n].type = CKA_CLASS;
            tmpl[n].pValue = &cls;
            tmpl[n++].ulValueLen = sizeof(cls);
        }
        if (u->has_id) {
            tmpl[n].type = CKA_ID;
            tmpl[n].pValue = u->id;
            tmpl[n++].ulValueLen = u->id_len;
        }
        if (u->object != NULL) {
            tmpl[n].type = CKA_LABEL;
            tmpl[n].pValue = u->object;
            tmpl[n++].ulValueLen = strlen(u->object);
        }
        cnt = m2p_find(toks[t], s, tmpl, n, hs, MAX_OBJECTS);
        if (cnt < 0) {
            m2p_session_drop(toks[t], s);
            goto done;
        }
        for (i = 0; i < (CK_ULONG)cnt; i++) {
            unsigned char *v = NULL;
            size_t len;
            CK_OBJECT_CLASS ocls;
            store_obj o;

            if (m2p_get_attr(toks[t], s, hs[i], CKA_CLASS, &v, &len) != CKR_OK
                || len != sizeof(ocls)) {
                OPENSSL_free(v);
                continue;
            }
            memcpy(&ocls, v, sizeof(ocls));
            OPENSSL_free(v);
            memset(&o, 0, sizeof(o));
            if (ocls == CKO_PRIVATE_KEY || ocls == CKO_PUBLIC_KEY) {
                if (first_key != NULL) {
                    if (*first_key == NULL)
                        *first_key = m2p_key_from_object(prov, toks[t], s, hs[i], ocls);
                    continue;
                }
                o.kind = OSSL_OBJECT_PKEY;
                o.key = m2p_key_from_object(prov, toks[t], s, hs[i], ocls);
                if (o.key == NULL)
                    continue;
            } else if (ocls == CKO_CERTIFICATE && first_key == NULL) {
                o.kind = OSSL_OBJECT_CERT;
                if (m2p_get_attr(toks[t], s, hs[i], CKA_VALUE, &o.der, &o.der_len) != CKR_OK)
                    continue;
            } else {
                continue;
            }
            if (!push_obj(c, &o)) {
                m2p_key_free(o.key);
                OPENSSL_free(o.der);
            }
        }
        m2p_session_put(toks[t], s);
        if (first_key != NULL && *first_key != NULL)
            break;
    }
    ok = 1;
done:
    if (pin != NULL)
        OPENSSL_clear_free(pin, strlen(pin));
    return ok;
}

static long expect_class(const m2p_uri *u, int expect)
{
    if (u->type >= 0)
        return u->type;
    switch (expect) {
    case OSSL_STORE_INFO_PKEY:
        return (long)CKO_PRIVATE_KEY;
    case OSSL_STORE_INFO_PUBKEY:
        return (long)CKO_PUBLIC_KEY;
    case OSSL_STORE_INFO_CERT:
        return (long)CKO_CERTIFICATE;
    default:
        return -1;
    }
}

m2p_key *m2p_key_from_uri(m2p_prov *prov, const char *uristr, CK_OBJECT_CLASS cls,
                          OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    m2p_uri *u = m2p_uri_parse(uristr);
    m2p_key *k = NULL;
    store_ctx dummy;

    if (u == NULL)
        return NULL;
    memset(&dummy, 0, sizeof(dummy));
    if (search(prov, u, u->type >= 0 ? u->type : (long)cls, pw_cb, pw_cbarg, &dummy, &k)
        && k == NULL)
        M2P_ERR(M2P_R_NOT_FOUND, "no key matches %s", uristr);
    m2p_uri_free(u);
    return k;
}

static int st_load(void *loaderctx, OSSL_CALLBACK *object_cb, void *object_cbarg,
                   OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    store_ctx *c = loaderctx;
    store_obj *o;
    OSSL_PARAM params[4];
    int objtype;

    if (!c->searched) {
        c->searched = 1;
        if (!search(c->prov, c->uri, expect_class(c->uri, c->expect), pw_cb, pw_cbarg, c,
                    NULL)) {
            c->failed = 1;
            return 0;
        }
        if (c->nobjs == 0) {
            M2P_ERR(M2P_R_NOT_FOUND, "no object in the token matches the URI");
            c->failed = 1;
            return 0;
        }
    }
    if (c->next >= c->nobjs)
        return 0;
    o = &c->objs[c->next++];
    objtype = o->kind;
    params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &objtype);
    if (o->kind == OSSL_OBJECT_PKEY) {
        params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE,
                                                     o->key->type == M2P_KEY_EC ? "EC" : "RSA", 0);
        params[2] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &o->key,
                                                      sizeof(o->key));
    } else {
        params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE, "X509", 0);
        params[2] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_DATA, o->der, o->der_len);
    }
    params[3] = OSSL_PARAM_construct_end();
    return object_cb(params, object_cbarg);
}

static int st_eof(void *loaderctx)
{
    store_ctx *c = loaderctx;

    return c->failed || (c->searched && c->next >= c->nobjs);
}

static int st_close(void *loaderctx)
{
    store_ctx *c = loaderctx;
    size_t i;

    if (c == NULL)
        return 1;
    for (i = 0; i < c->nobjs; i++) {
        m2p_key_free(c->objs[i].key);
        OPENSSL_free(c->objs[i].der);
    }
    OPENSSL_free(c->objs);
    m2p_uri_free(c->uri);
    OPENSSL_free(c);
    return 1;
}

#define FN(id, f) { id, (void (*)(void))(f) }

const OSSL_DISPATCH m2p_store_functions[] = {
    FN(OSSL_FUNC_STORE_OPEN, st_open),
    FN(OSSL_FUNC_STORE_SETTABLE_CTX_PARAMS, st_settable),
    FN(OSSL_FUNC_STORE_SET_CTX_PARAMS, st_set_params),
    FN(OSSL_FUNC_STORE_LOAD, st_load),
    FN(OSSL_FUNC_STORE_EOF, st_eof),
    FN(OSSL_FUNC_STORE_CLOSE, st_close),
    { 0, NULL }
};
