/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/x509v3.h>
#include "pkcs11.h" /* common/ */
#include "prov_fixture.h"
#include "keyref.h"   /* common/: the key reference codec */

#include <dlfcn.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

X509 *fx_self_signed(OSSL_LIB_CTX *ctx, EVP_PKEY *key, const char *cn)
{
    X509 *x = X509_new_ex(ctx, NULL);
    X509_NAME *name = X509_NAME_new();
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    int ok = 0;

    if (x == NULL || name == NULL || mctx == NULL)
        goto done;
    if (!X509_set_version(x, X509_VERSION_3) || !ASN1_INTEGER_set(X509_get_serialNumber(x), 1)
        || !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0)
        || !X509_set_subject_name(x, name) || !X509_set_issuer_name(x, name)
        || X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL
        || X509_gmtime_adj(X509_getm_notAfter(x), 86400) == NULL || !X509_set_pubkey(x, key))
        goto done;
    if (EVP_DigestSignInit_ex(mctx, NULL, "SHA256", ctx, NULL, key, NULL) != 1
        || X509_sign_ctx(x, mctx) <= 0)
        goto done;
    ok = 1;
done:
    if (!ok) {
        ERR_print_errors_fp(stderr);
        X509_free(x);
        x = NULL;
    }
    X509_NAME_free(name);
    EVP_MD_CTX_free(mctx);
    return x;
}

int fx_write_pem_cert(const char *path, X509 *x)
{
    FILE *fp = fopen(path, "w");
    int ok;

    if (fp == NULL)
        return 0;
    ok = PEM_write_X509(fp, x);
    return fclose(fp) == 0 && ok;
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

/* ---- TLS over loopback -------------------------------------------------------- */

typedef struct {
    fx_tls *t;
    int lfd;
    int ok;
    char err[256];
    char sigalg[64];
} srv_arg;

static void err_to(char *buf, size_t n, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char eb[200];

    ERR_error_string_n(e, eb, sizeof(eb));
    snprintf(buf, n, "%s: %s", what, e ? eb : "no OpenSSL error");
}

static void *server_main(void *a)
{
    srv_arg *sa = a;
    int fd = accept(sa->lfd, NULL, NULL);
    SSL *ssl;

    if (fd < 0) {
        snprintf(sa->err, sizeof(sa->err), "accept failed");
        return NULL;
    }
    ssl = SSL_new(sa->t->server);
    SSL_set_fd(ssl, fd);
    if (sa->t->on_server != NULL)
        sa->t->on_server(ssl, 0, sa->t->arg);
    if (SSL_accept(ssl) == 1) {
        char buf[8];
        int nid = 0;

        if (sa->t->on_server != NULL)
            sa->t->on_server(ssl, 1, sa->t->arg);

        sa->ok = SSL_get0_peer_certificate(ssl) != NULL && SSL_get_verify_result(ssl) == X509_V_OK;
        if (!sa->ok)
            snprintf(sa->err, sizeof(sa->err), "server: client certificate not verified");
        if (SSL_get_peer_signature_type_nid(ssl, &nid))
            snprintf(sa->sigalg, sizeof(sa->sigalg), "%s", OBJ_nid2sn(nid));
        if (SSL_read(ssl, buf, 1) == 1)
            SSL_write(ssl, buf, 1);
        SSL_shutdown(ssl);
    } else {
        err_to(sa->err, sizeof(sa->err), "server SSL_accept");
        ERR_clear_error();
    }
    SSL_free(ssl);
    close(fd);
    return NULL;
}

int fx_tls_handshake(fx_tls *t)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    int lfd = socket(AF_INET, SOCK_STREAM, 0), fd = -1, ok = 0;
    srv_arg sa;
    pthread_t th;
    SSL *ssl = NULL;

    memset(&sa, 0, sizeof(sa));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(lfd, 1) != 0
        || getsockname(lfd, (struct sockaddr *)&sin, &sl) != 0) {
        snprintf(t->error, sizeof(t->error), "socket setup failed");
        if (lfd >= 0)
            close(lfd);
        return 0;
    }
    SSL_CTX_set_min_proto_version(t->server, t->version);
    SSL_CTX_set_max_proto_version(t->server, t->version);
    SSL_CTX_set_min_proto_version(t->client, t->version);
    SSL_CTX_set_max_proto_version(t->client, t->version);
    if (t->groups != NULL) {
        SSL_CTX_set1_groups_list(t->server, t->groups);
        SSL_CTX_set1_groups_list(t->client, t->groups);
    }
    sa.t = t;
    sa.lfd = lfd;
    if (pthread_create(&th, NULL, server_main, &sa) != 0) {
        close(lfd);
        return 0;
    }
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0) {
        ssl = SSL_new(t->client);
        SSL_set_fd(ssl, fd);
        if (t->on_client != NULL)
            t->on_client(ssl, 0, t->arg);
        if (SSL_connect(ssl) == 1) {
            char c = 'x';

            if (t->on_client != NULL)
                t->on_client(ssl, 1, t->arg);

            ok = SSL_get_verify_result(ssl) == X509_V_OK && SSL_write(ssl, &c, 1) == 1
                && SSL_read(ssl, &c, 1) == 1;
            if (!ok)
                snprintf(t->error, sizeof(t->error), "client: verify or data exchange failed");
            SSL_shutdown(ssl);
        } else {
            err_to(t->error, sizeof(t->error), "client SSL_connect");
        }
    } else {
        snprintf(t->error, sizeof(t->error), "connect failed");
    }
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
    pthread_join(th, NULL);
    SSL_free(ssl);
    if (fd >= 0)
        close(fd);
    close(lfd);
    if (!sa.ok) {
        if (t->error[0] == '\0' || strstr(t->error, "client SSL_connect") != NULL)
            snprintf(t->error + strlen(t->error), sizeof(t->error) - strlen(t->error), " / %s",
                     sa.err);
        ok = 0;
    }
    snprintf(t->server_sigalg, sizeof(t->server_sigalg), "%s", sa.sigalg);
    ERR_clear_error();
    return ok;
}

/* A root (CA NULL: self-signed with SUBJECT's key given as CA_KEY) or a leaf
 * with subjectAltName SAN, ECDSA/SHA-256 signed by CA_KEY (which may live in
 * the token). NULL with the OpenSSL errors printed. */
X509 *fx_issue(EVP_PKEY *subject, const char *cn, const char *san, X509 *ca, EVP_PKEY *ca_key)
{
    static long serial = 1000;
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    X509V3_CTX v3;
    X509_EXTENSION *ext;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    int ok;

    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, ca != NULL ? X509_get_subject_name(ca) : name);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, subject);
    X509V3_set_ctx(&v3, ca != NULL ? ca : x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, ca == NULL ? "critical,CA:TRUE" : "critical,CA:FALSE");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_key_usage,
                              ca == NULL ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    if (san != NULL) {
        ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    ok = EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, ca_key) == 1 && X509_sign_ctx(x, m) > 0;
    EVP_MD_CTX_free(m);
    X509_NAME_free(name);
    if (!ok) {
        ERR_print_errors_fp(stderr);
        X509_free(x);
        return NULL;
    }
    return x;
}
