/* SPDX-License-Identifier: Apache-2.0 */
#include "pkcs11.h" /* common/ */
#include "prov_fixture.h"
#include "keyref.h"   /* common/: the key reference codec */
#include "pki.h"      /* tests/: the certificate issuer */

#include <dlfcn.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/store.h>

int fx_run(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    int rc;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "fixture: command failed (%d): %s\n", rc, cmd);
    return rc == 0;
}

const char *fx_cache_status(EVP_PKEY *key)
{
    static char buf[256];

    if (!EVP_PKEY_get_utf8_string_param(key, "m2mtls-session-cache", buf, sizeof(buf), NULL))
        return "(no parameter)";
    return buf;
}

long fx_session_keys(void)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE t[2] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_TOKEN, &no, sizeof(no) } };
    CK_OBJECT_HANDLE h[16];
    CK_ULONG n = 0, nslots = 8, i;
    CK_SLOT_ID slots[8];
    CK_FUNCTION_LIST *f;
    CK_C_GetFunctionList gfl;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    void *dl = dlopen(M2P_SOFTHSM, RTLD_NOW | RTLD_NOLOAD), *sym;
    CK_RV rv;

    if (dl == NULL || (sym = dlsym(dl, "C_GetFunctionList")) == NULL)
        return -1;
    memcpy(&gfl, &sym, sizeof(gfl));
    dlclose(dl);    /* still loaded by the provider */
    if (gfl(&f) != CKR_OK || f->C_GetSlotList(CK_TRUE, slots, &nslots) != CKR_OK)
        return -1;
    for (i = 0; i < nslots && s == CK_INVALID_HANDLE; i++) {
        CK_TOKEN_INFO ti;

        if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK && memcmp(ti.label, FX_TOKEN " ", 4) == 0
            && f->C_OpenSession(slots[i], CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK)
            return -1;
    }
    if (s == CK_INVALID_HANDLE)
        return -1;
    rv = f->C_FindObjectsInit(s, t, 2);
    if (rv == CKR_OK) {
        rv = f->C_FindObjects(s, h, 16, &n);
        f->C_FindObjectsFinal(s);
    }
    f->C_CloseSession(s);
    return rv == CKR_OK ? (long)n : -1;
}

int fx_write_conf(const char *path, int order, const char *pin, const char *module_path)
{
    FILE *fp = fopen(path, "w");

    if (fp == NULL)
        return 0;
    fprintf(fp, "openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n");
    fprintf(fp, "[provider_sect]\n");
    if (order == FX_ORDER_FIRST)
        fprintf(fp, "m2mtls = m2mtls_sect\ndefault = default_sect\n");
    else
        fprintf(fp, "default = default_sect\nm2mtls = m2mtls_sect\n");
    fprintf(fp, "[default_sect]\nactivate = 1\n[m2mtls_sect]\nmodule = %s\n", M2P_MODULE);
    if (module_path == NULL || *module_path != '\0')
        fprintf(fp, "pkcs11-module-path = %s\n", module_path != NULL ? module_path : M2P_SOFTHSM);
    if (pin != NULL)
        fprintf(fp, "pkcs11-module-token-pin = %s\n", pin);
    fprintf(fp, "activate = 1\n");
    return fclose(fp) == 0;
}

int fx_write_ref(const char *path, const char *uri)
{
    BIO *b = BIO_new_file(path, "w");
    int ok = b != NULL && m2c_keyref_pem_write(b, uri);

    return BIO_free(b) && ok;
}

int fx_setup(fx_t *fx, int keys)
{
    char path[PATH_MAX + 16];
    FILE *fp;

    memset(fx, 0, sizeof(*fx));
    strcpy(fx->dir, "/tmp/m2p-test-XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return 0;
    snprintf(path, sizeof(path), "%s/tokens", fx->dir);
    if (!fx_run("mkdir -p '%s'", path))
        return 0;
    snprintf(path, sizeof(path), "%s/softhsm2.conf", fx->dir);
    if ((fp = fopen(path, "w")) == NULL)
        return 0;
    fprintf(fp, "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n",
            fx->dir);
    fclose(fp);
    setenv("SOFTHSM2_CONF", path, 1);
    if (!fx_run("'%s' --init-token --free --label " FX_TOKEN " --pin " FX_PIN
                " --so-pin 5678 >/dev/null", M2P_SOFTHSM_UTIL))
        return 0;
#define KEYGEN(type, id, label)                                                                \
    fx_run("'%s' --module '%s' --token-label " FX_TOKEN " --login --pin " FX_PIN               \
           " --keypairgen --key-type %s --id %s --label %s --usage-sign --sensitive >/dev/null", \
           M2P_PKCS11_TOOL, M2P_SOFTHSM, type, id, label)
    if ((keys & FX_KEY_EC) && !KEYGEN("EC:prime256v1", "01", "ec"))
        return 0;
    if ((keys & FX_KEY_RSA) && !KEYGEN("rsa:2048", "02", "rsa"))
        return 0;
    if ((keys & FX_KEY_EC384) && !KEYGEN("EC:secp384r1", "03", "ec384"))
        return 0;
    if ((keys & FX_KEY_EC521) && !KEYGEN("EC:secp521r1", "04", "ec521"))
        return 0;
    if ((keys & FX_KEY_EC2) && !KEYGEN("EC:prime256v1", "05", "ec2"))
        return 0;
    snprintf(fx->pinfile, sizeof(fx->pinfile), "%s/pin", fx->dir);
    if ((fp = fopen(fx->pinfile, "w")) == NULL)
        return 0;
    fprintf(fp, FX_PIN "\n");
    fclose(fp);
    snprintf(path, sizeof(path), "file:%s", fx->pinfile);
    snprintf(fx->conf, sizeof(fx->conf), "%s/openssl.cnf", fx->dir);
    snprintf(fx->conf_first, sizeof(fx->conf_first), "%s/openssl-first.cnf", fx->dir);
    snprintf(fx->ecref, sizeof(fx->ecref), "%s/ec-ref.pem", fx->dir);
    snprintf(fx->rsaref, sizeof(fx->rsaref), "%s/rsa-ref.pem", fx->dir);
    return fx_write_conf(fx->conf, FX_ORDER_LAST, path, NULL)
        && fx_write_conf(fx->conf_first, FX_ORDER_FIRST, FX_PIN, NULL)
        && fx_write_ref(fx->ecref, FX_EC_URI) && fx_write_ref(fx->rsaref, FX_RSA_URI);
}

void fx_teardown(fx_t *fx)
{
    if (fx->dir[0] != '\0' && strncmp(fx->dir, "/tmp/m2p-test-", 14) == 0)
        fx_run("rm -rf '%s'", fx->dir);
}

OSSL_LIB_CTX *fx_libctx(const char *cnf)
{
    OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();

    if (ctx != NULL && !OSSL_LIB_CTX_load_config(ctx, cnf)) {
        ERR_print_errors_fp(stderr);
        OSSL_LIB_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static struct {
    OSSL_LIB_CTX *ctx;
    OSSL_PROVIDER *prov;
} loaded[16];

OSSL_LIB_CTX *fx_default_libctx(void)
{
    OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();
    OSSL_PROVIDER *p;
    size_t i;

    if (ctx == NULL || (p = OSSL_PROVIDER_load(ctx, "default")) == NULL) {
        OSSL_LIB_CTX_free(ctx);
        return NULL;
    }
    for (i = 0; i < sizeof(loaded) / sizeof(loaded[0]); i++) {
        if (loaded[i].ctx == NULL) {
            loaded[i].ctx = ctx;
            loaded[i].prov = p;
            break;
        }
    }
    return ctx;
}

void fx_libctx_free(OSSL_LIB_CTX *ctx)
{
    size_t i;

    if (ctx == NULL)
        return;
    for (i = 0; i < sizeof(loaded) / sizeof(loaded[0]); i++) {
        if (loaded[i].ctx == ctx) {
            OSSL_PROVIDER_unload(loaded[i].prov);
            loaded[i].ctx = NULL;
            loaded[i].prov = NULL;
        }
    }
    OSSL_LIB_CTX_free(ctx);
}

EVP_PKEY *fx_load(OSSL_LIB_CTX *ctx, const char *uri)
{
    OSSL_STORE_CTX *st = OSSL_STORE_open_ex(uri, ctx, NULL, NULL, NULL, NULL, NULL, NULL);
    EVP_PKEY *pk = NULL;

    if (st == NULL)
        return NULL;
    while (pk == NULL && !OSSL_STORE_eof(st)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(st);

        if (info == NULL)
            break;
        if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            pk = OSSL_STORE_INFO_get1_PKEY(info);
        else if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PUBKEY)
            pk = OSSL_STORE_INFO_get1_PUBKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(st);
    return pk;
}

EVP_PKEY *fx_public(EVP_PKEY *key, OSSL_LIB_CTX *ctx)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    int len = i2d_PUBKEY(key, &der);
    EVP_PKEY *pub;

    if (len <= 0)
        return NULL;
    p = der;
    pub = d2i_PUBKEY_ex(NULL, &p, len, ctx, NULL);
    OPENSSL_free(der);
    return pub;
}

static int set_pss(EVP_PKEY_CTX *pctx, const char *saltlen)
{
    return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0
        && EVP_PKEY_CTX_ctrl_str(pctx, "rsa_pss_saltlen", saltlen) > 0;
}

int fx_sign_verify(OSSL_LIB_CTX *ctx, EVP_PKEY *key, OSSL_LIB_CTX *vctx, EVP_PKEY *pub,
                   const char *md, const char *pss_saltlen)
{
    static const unsigned char msg[] = "oneM2M TS-0003 certificate-based security";
    EVP_MD_CTX *mctx = EVP_MD_CTX_new(), *vmctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char sig[1024];
    size_t siglen = 0, cap = 0;
    int ok = 0;

    if (mctx == NULL || vmctx == NULL)
        goto done;
    if (EVP_DigestSignInit_ex(mctx, &pctx, md, ctx, NULL, key, NULL) != 1)
        goto done;
    if (pss_saltlen != NULL && !set_pss(pctx, pss_saltlen))
        goto done;
    if (EVP_DigestSignUpdate(mctx, msg, 10) != 1 || EVP_DigestSignUpdate(mctx, msg + 10, sizeof(msg) - 10) != 1)
        goto done;
    /* size query first: must not consume the running digest */
    if (EVP_DigestSignFinal(mctx, NULL, &cap) != 1 || cap > sizeof(sig))
        goto done;
    siglen = cap;
    if (EVP_DigestSignFinal(mctx, sig, &siglen) != 1 || siglen > cap)
        goto done;
    if (EVP_DigestVerifyInit_ex(vmctx, &pctx, md, vctx, NULL, pub, NULL) != 1)
        goto done;
    if (pss_saltlen != NULL && !set_pss(pctx, strcmp(pss_saltlen, "max") == 0 ? "auto" : pss_saltlen))
        goto done;
    ok = EVP_DigestVerify(vmctx, sig, siglen, msg, sizeof(msg)) == 1;
done:
    if (!ok)
        ERR_print_errors_fp(stderr);
    EVP_MD_CTX_free(mctx);
    EVP_MD_CTX_free(vmctx);
    return ok;
}

int fx_token_pki(const fx_t *fx, const char *root_cn, const char *server_dns, const char *client_uri)
{
    EVP_PKEY *skey = fx_load(NULL, FX_EC_URI), *ckey = fx_load(NULL, FX_EC2_URI);
    pki_cert ca = { 0 }, xs = { 0 }, xc = { 0 };
    pki_san s_s[] = { { PKI_SAN_DNS, server_dns, 0 }, { 0, 0, 0 } };
    pki_san s_c[] = { { PKI_SAN_URI, client_uri, 0 }, { 0, 0, 0 } };
    int ok = skey != NULL && ckey != NULL && pki_root(root_cn, &ca) && pki_leaf_key(&ca, "server", s_s, skey, &xs)
             && pki_leaf_key(&ca, "client", s_c, ckey, &xc) && pki_write_cert(fx->dir, "ca.pem", ca.cert)
             && pki_write_cert(fx->dir, "s.pem", xs.cert) && pki_write_cert(fx->dir, "c.pem", xc.cert);

    if (!ok)
        fprintf(stderr, "fixture: the certificates of the token's keys\n");
    pki_cert_free(&ca);
    pki_cert_free(&xs);
    pki_cert_free(&xc);
    EVP_PKEY_free(skey);
    EVP_PKEY_free(ckey);
    return ok;
}

int fx_errors_contain(const char *needle)
{
    unsigned long e;
    const char *data, *file, *func;
    int flags, line, found = 0;
    char buf[512];

    while ((e = ERR_get_error_all(&file, &line, &func, &data, &flags)) != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        fprintf(stderr, "  error: %s | %s\n", buf, (flags & ERR_TXT_STRING) ? data : "");
        if (((flags & ERR_TXT_STRING) && strstr(data, needle) != NULL) || strstr(buf, needle) != NULL)
            found = 1;
    }
    return found;
}
