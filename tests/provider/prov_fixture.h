/* SPDX-License-Identifier: Apache-2.0 */
/* Test fixture for the m2mtls provider: a SoftHSM token per test program, in a
 * mkdtemp directory, keys generated in the token, an openssl.cnf loading the
 * provider, key reference files, signatures checked against the default
 * provider. Certificates come from tests/pki.h (pki_self_signed, pki_leaf_key),
 * handshakes from tests/hs.h. */
#ifndef PROV_FIXTURE_H
#define PROV_FIXTURE_H

#include <limits.h>

#include <openssl/evp.h>

#define FX_PIN "1234"
#define FX_TOKEN "m2p"
#define FX_EC_URI "pkcs11:token=" FX_TOKEN ";object=ec;type=private"
#define FX_EC384_URI "pkcs11:token=" FX_TOKEN ";object=ec384;type=private"
#define FX_EC2_URI "pkcs11:token=" FX_TOKEN ";object=ec2;type=private"
#define FX_EC521_URI "pkcs11:token=" FX_TOKEN ";object=ec521;type=private"
#define FX_RSA_URI "pkcs11:token=" FX_TOKEN ";object=rsa;type=private"

enum { FX_KEY_EC = 1, FX_KEY_RSA = 2, FX_KEY_EC384 = 4, FX_KEY_EC521 = 8, FX_KEY_EC2 = 16 };
enum { FX_ORDER_LAST = 0, FX_ORDER_FIRST = 1 };

typedef struct {
    char dir[64];
    char conf[PATH_MAX];            /* openssl.cnf: default first, then m2mtls */
    char conf_first[PATH_MAX];      /* openssl.cnf: m2mtls first */
    char pinfile[PATH_MAX];
    char ecref[PATH_MAX], rsaref[PATH_MAX];
} fx_t;

/* Creates the directory, the token (label FX_TOKEN, PIN FX_PIN), the keys
 * asked for, both openssl.cnf files and key reference files. 1 ok. */
int fx_setup(fx_t *fx, int keys);
void fx_teardown(fx_t *fx);
/* Writes an openssl.cnf; pin may be NULL (no pin line); module_path NULL = SoftHSM. */
int fx_write_conf(const char *path, int order, const char *pin, const char *module_path);
int fx_write_ref(const char *path, const char *uri);
/* A library context configured from cnf. */
OSSL_LIB_CTX *fx_libctx(const char *cnf);
/* A library context with only the default provider (independent verifier). */
OSSL_LIB_CTX *fx_default_libctx(void);
/* Frees any library context made here (unloading what fx_default_libctx loaded). */
void fx_libctx_free(OSSL_LIB_CTX *ctx);
EVP_PKEY *fx_load(OSSL_LIB_CTX *ctx, const char *uri);
/* The public key re-imported into ctx (through SubjectPublicKeyInfo). */
EVP_PKEY *fx_public(EVP_PKEY *key, OSSL_LIB_CTX *ctx);
/* Signs with EVP_DigestSign* and verifies with pub; pss: 0 none, else salt mode string. */
int fx_sign_verify(OSSL_LIB_CTX *ctx, EVP_PKEY *key, OSSL_LIB_CTX *vctx, EVP_PKEY *pub,
                   const char *md, const char *pss_saltlen);
/* The certificates of a server and a client whose keys are FX_EC_URI and
 * FX_EC2_URI (the provider loaded in the default library context): in
 * fx->dir, ca.pem (a new root, CN ROOT_CN), s.pem (dNSName SERVER_DNS) and
 * c.pem (URI CLIENT_URI), issued by tests/pki.c. 1 ok. */
int fx_token_pki(const fx_t *fx, const char *root_cn, const char *server_dns, const char *client_uri);
/* Does the error queue (printed) contain needle? Clears the queue. */
int fx_errors_contain(const char *needle);
int fx_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The key parameter m2mtls-session-cache: "yes", "no (why)", or
 * "(no parameter)" for a key of another provider. */
const char *fx_cache_status(EVP_PKEY *key);
/* Private keys of token FX_TOKEN that are session objects, as this process
 * sees them through the SoftHSM instance the provider loaded: the provider's
 * session copies. -1 on error. */
long fx_session_keys(void);

#endif
