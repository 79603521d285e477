/* SPDX-License-Identifier: Apache-2.0 */
/*
 * m2mtls OpenSSL 3 provider: internal interfaces shared by the provider's files.
 * Nothing here is exported from m2mtls.so (hidden visibility); the only public
 * symbol of the module is OSSL_provider_init.
 */
#ifndef M2MTLS_PROVIDER_H
#define M2MTLS_PROVIDER_H

#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/evp.h>

#include "ckr.h"      /* common/: CKR_ names */
#include "pkcs11.h"

#define M2P_HIDDEN __attribute__((visibility("hidden")))
#define M2P_PROV_NAME "m2mtls"
#define M2P_PROPS "provider=m2mtls"
#define M2P_MAX_RETRIES 3
/* fields read without a lock on hot paths (written under their lock) */
#define ATOMIC_GET(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define ATOMIC_SET(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)

/* ---- error reasons (errors.c) ------------------------------------------ */
enum {
    M2P_R_PKCS11 = 1,      /* "C_Xxx: CKR_YYY" */
    M2P_R_CONFIG,          /* configuration problem */
    M2P_R_URI,             /* bad pkcs11: URI */
    M2P_R_NOT_FOUND,       /* no matching token / object */
    M2P_R_UNSUPPORTED,     /* unsupported key type, curve, digest, padding */
    M2P_R_PIN,             /* PIN problems other than a token refusal */
    M2P_R_INTERNAL,
};

typedef struct m2p_prov m2p_prov;
typedef struct m2p_module m2p_module;
typedef struct m2p_token m2p_token;
typedef struct m2p_key m2p_key;
typedef struct m2p_uri m2p_uri;

M2P_HIDDEN void m2p_err_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in);
M2P_HIDDEN void m2p_err_forget(const OSSL_CORE_HANDLE *handle);
M2P_HIDDEN void m2p_err_raw(int reason, const char *file, int line, const char *func,
                            const char *fmt, ...) __attribute__((format(printf, 5, 6)));
M2P_HIDDEN const OSSL_ITEM *m2p_reason_strings(void);
#define M2P_ERR(reason, ...) m2p_err_raw((reason), __FILE__, __LINE__, __func__, __VA_ARGS__)
/* "C_Login: CKR_PIN_INCORRECT" */
#define M2P_ERR_CK(fn, rv) \
    m2p_err_raw(M2P_R_PKCS11, __FILE__, __LINE__, __func__, "%s: %s", (fn), m2c_ckr_name(rv))

/* ---- provider context (made by init.c, its services in provider.c) ------ */
struct m2p_prov {
    const OSSL_CORE_HANDLE *handle;
    OSSL_LIB_CTX *corectx;          /* child of the application's library context (unused for crypto) */
    char *module_path;              /* pkcs11-module-path */
    char *pin_cfg;                  /* pkcs11-module-token-pin, as configured */
    int cache_keys;                 /* pkcs11-module-cache-keys: sign with session copies */
    char *config_error;             /* a bad configuration value, reported at first use */
    m2p_module *mod;
    /* private library context holding only the default provider: digests and
     * public-key verification never recurse into this provider */
    pthread_mutex_t fb_lock;
    OSSL_LIB_CTX *fbctx;            /* set once (atomic) */
    OSSL_PROVIDER *fbprov;
    /* digests fetched by the names callers used (fetching per signature is slow) */
    struct {
        char name[32];
        EVP_MD *md;                 /* published (atomic) after name is written */
    } md_cache[16];
};

M2P_HIDDEN OSSL_LIB_CTX *m2p_fallback_ctx(m2p_prov *prov);
/* Frees the fallback context and the digest cache (the provider's teardown). */
M2P_HIDDEN void m2p_fallback_free(m2p_prov *prov);
/* a digest by name from the fallback context; reference owned by the caller */
M2P_HIDDEN EVP_MD *m2p_fetch_md(m2p_prov *prov, const char *name);

/* ---- pkcs11: URI (uri.c) -------------------------------------------------- */
struct m2p_uri {
    /* token and slot selection */
    char *token, *manufacturer, *model, *serial;
    char *slot_description, *slot_manufacturer;
    int has_slot_id;
    CK_SLOT_ID slot_id;
    /* object selection */
    char *object;                   /* CKA_LABEL */
    unsigned char *id;              /* CKA_ID */
    size_t id_len;
    int has_id;
    int type;                       /* -1 any, else CKO_* */
    /* query */
    char *pin_value, *pin_source, *module_path;
};

M2P_HIDDEN m2p_uri *m2p_uri_parse(const char *str);
M2P_HIDDEN void m2p_uri_free(m2p_uri *u);

/* ---- token access (token.c) ------------------------------------------------ */
struct m2p_token {
    m2p_module *mod;
    CK_SLOT_ID slot;
    char label[33], manufacturer[33], model[17], serial[17];
    char slot_description[65], slot_manufacturer[33];
    pthread_mutex_t lock;           /* guards everything below */
    CK_SESSION_HANDLE *pool;
    size_t npool, cappool;
    unsigned long gen;              /* module generation the pool belongs to */
    int logged_in;
    int login_required;
    CK_RV login_failed;             /* non-zero: the PIN was refused, never retried */
    char *pin;                      /* PIN that worked or the one to use (from URI / callback) */
    /* The keeper: a session of the pool that is never lent out. The keys'
     * session copies are made in it, and live as long as it does (PKCS#11
     * destroys session objects with the session that made them, and private
     * ones at logout). */
    CK_SESSION_HANDLE keeper;       /* CK_INVALID_HANDLE: none open */
    unsigned long keeper_epoch;     /* bumped whenever the keeper and its copies go (atomic) */
    m2p_token *next;
};

struct m2p_module {
    m2p_prov *prov;
    pthread_mutex_t lock;           /* guards init, generation and the token list */
    void *dl;
    CK_FUNCTION_LIST *f;
    unsigned long forks;            /* m2p_forks() when it was initialised (atomic) */
    unsigned long gen;              /* bumped at every (re)initialisation (atomic) */
    int initialized;                /* (atomic) */
    CK_RV init_failed;              /* module could not be loaded/initialised */
    m2p_token *tokens;
};

/* fork() counting (a pthread_atfork child handler, registered once): a
 * module initialised before the last fork() is its parent's. */
M2P_HIDDEN void m2p_forks_init(void);
M2P_HIDDEN unsigned long m2p_forks(void);
M2P_HIDDEN m2p_module *m2p_module_new(m2p_prov *prov);
M2P_HIDDEN void m2p_module_free(m2p_module *mod);
/* Loads / initialises on first use and again after fork(). Returns the current
 * generation through *gen. 1 ok, 0 error (on the error queue). */
M2P_HIDDEN int m2p_module_ready(m2p_module *mod, unsigned long *gen);
/* Tokens matching the URI's token attributes (present tokens only). Returns
 * the number stored in out (at most max). */
M2P_HIDDEN size_t m2p_tokens_find(m2p_module *mod, const m2p_uri *u, m2p_token **out, size_t max);

typedef struct {
    const char *pin;                /* explicit PIN (URI pin-value / pin-source read), or NULL */
    int no_login;                   /* public objects only: do not log in */
    OSSL_PASSPHRASE_CALLBACK *pw_cb;
    void *pw_cbarg;
} m2p_login_src;

/* Session from the token's pool, logged in when the token needs it. */
M2P_HIDDEN int m2p_session_get(m2p_token *tok, CK_SESSION_HANDLE *s, const m2p_login_src *src);
M2P_HIDDEN void m2p_session_put(m2p_token *tok, CK_SESSION_HANDLE s);
M2P_HIDDEN void m2p_session_drop(m2p_token *tok, CK_SESSION_HANDLE s);
/* The module reported a lost device/login: forget sessions and login state
 * (the pooled sessions and the keeper too, unless logged_out_only). */
M2P_HIDDEN void m2p_token_reset(m2p_token *tok, int logged_out_only);
/* Copies token object obj into a session object (CKA_TOKEN false; sensitivity
 * and extractability unchanged) made in the keeper session, opened on demand.
 * CKR_OK with the copy and the keeper epoch it belongs to, else the CKR_ of
 * C_OpenSession or C_CopyObject. */
M2P_HIDDEN CK_RV m2p_token_copy_key(m2p_token *tok, CK_OBJECT_HANDLE obj, CK_OBJECT_HANDLE *copy,
                                    unsigned long *epoch);
M2P_HIDDEN unsigned long m2p_token_keeper_epoch(m2p_token *tok);
/* Destroys a copy made in epoch when its keeper is still open in this process. */
M2P_HIDDEN void m2p_token_drop_copy(m2p_token *tok, CK_OBJECT_HANDLE copy, unsigned long epoch);

/* Reads one attribute into a freshly allocated buffer (OPENSSL_free). */
M2P_HIDDEN CK_RV m2p_get_attr(m2p_token *tok, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                              CK_ATTRIBUTE_TYPE type, unsigned char **val, size_t *len);
/* Finds objects by template; returns count (up to max) or -1 with an error. */
M2P_HIDDEN long m2p_find(m2p_token *tok, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                         CK_OBJECT_HANDLE *out, CK_ULONG max);

/* ---- keys (key.c; their KEYMGMT in keymgmt.c) ------------------------------ */
enum { M2P_KEY_EC = 1, M2P_KEY_RSA = 2 };

struct m2p_key {
    int refcnt;                     /* atomic */
    m2p_prov *prov;
    int type;                       /* M2P_KEY_EC / M2P_KEY_RSA */
    /* token object (private keys, or public keys found in a token) */
    m2p_token *tok;                 /* NULL: public key imported from elsewhere */
    CK_OBJECT_CLASS cls;            /* CKO_PRIVATE_KEY or CKO_PUBLIC_KEY */
    unsigned char *id;
    size_t id_len;
    char *label;
    pthread_mutex_t lock;           /* guards handle, gen and the session copy below */
    CK_OBJECT_HANDLE handle;        /* the token object, for module generation gen */
    unsigned long gen;
    /* Session key cache (pkcs11-module-cache-keys): signatures use a session
     * copy of the token object, made at first use in tok's keeper session,
     * valid while tok->keeper_epoch == copy_epoch and remade after every
     * recovery. A token that refuses to copy (CKA_COPYABLE false, ...) is
     * asked once per module generation; its answer is kept. */
    CK_OBJECT_HANDLE copy;
    unsigned long copy_epoch;
    CK_RV copy_refused;             /* C_CopyObject's refusal, for refused_gen; CKR_OK: none */
    unsigned long refused_gen;
    /* public part */
    int nid;                        /* EC curve */
    unsigned char *pub;             /* EC: uncompressed point */
    size_t pub_len;
    unsigned char *n, *e;           /* RSA: big-endian */
    size_t n_len, e_len;
    EVP_PKEY *pubkey;               /* public part in the fallback context, for verify/params;
                                     * for a soft key: the whole key */
    /* A "soft" key was generated or set up through this keymgmt for somebody
     * else's use (this provider listed before default: libssl's ephemeral
     * ECDHE keys fetch "EC" from here). It lives in the fallback context and
     * every operation is delegated there; it never touches a token. */
    int soft;
    int soft_sel;                   /* OSSL_KEYMGMT_SELECT_* the soft key holds */
};

M2P_HIDDEN m2p_key *m2p_key_new(m2p_prov *prov, int type);
M2P_HIDDEN void m2p_key_free(m2p_key *k);
M2P_HIDDEN int m2p_key_up_ref(m2p_key *k);
/* The public parts SELECTION asks for (EC: group and point, RSA: n and e),
 * as parameters (OSSL_PARAM_free); NULL on error. */
M2P_HIDDEN OSSL_PARAM *m2p_key_public_params(const m2p_key *k, int selection);
/* Builds key->pubkey from the public fields. 1 ok. */
M2P_HIDDEN int m2p_key_finish_public(m2p_key *k);
M2P_HIDDEN int m2p_key_is_private(const m2p_key *k);
/* A key for a token object: reads its public attributes (finding the matching
 * public key or certificate for an EC private key). NULL on error. */
M2P_HIDDEN m2p_key *m2p_key_from_object(m2p_prov *prov, m2p_token *tok, CK_SESSION_HANDLE s,
                                        CK_OBJECT_HANDLE h, CK_OBJECT_CLASS cls);
/* Signs in the token with recovery (bounded retries). *outlen in: size of out. */
M2P_HIDDEN int m2p_key_sign(m2p_key *k, CK_MECHANISM *mech, const unsigned char *in, size_t inlen,
                            unsigned char *out, size_t *outlen);
/* "yes" or "no (why)": whether the key signs with a session copy (the
 * M2P_PARAM_SESSION_CACHE key parameter). A key that has not signed yet gets
 * its copy now, as its first signature would. 1 ok. */
M2P_HIDDEN int m2p_key_cache_status(m2p_key *k, char *buf, size_t len);
/* Provider-specific key parameter (utf8 string) with that answer. */
#define M2P_PARAM_SESSION_CACHE "m2mtls-session-cache"
M2P_HIDDEN size_t m2p_ec_order_bytes(int nid);
M2P_HIDDEN int m2p_ec_supported_curve(int nid);
/* Normalises an encoded EC point to the uncompressed form (*out: OPENSSL_free). */
M2P_HIDDEN int m2p_ec_point_uncompressed(m2p_prov *prov, int nid, const unsigned char *in,
                                         size_t inlen, unsigned char **out, size_t *outlen);

/* ---- algorithm tables ----------------------------------------------------- */
/* signature algorithm names of this provider alone (see init.c) */
#define M2P_SIG_ECDSA "M2MTLS-ECDSA"
#define M2P_SIG_RSA "M2MTLS-RSA"
extern const OSSL_DISPATCH m2p_ec_keymgmt_functions[] M2P_HIDDEN;
extern const OSSL_DISPATCH m2p_rsa_keymgmt_functions[] M2P_HIDDEN;
extern const OSSL_DISPATCH m2p_ecdsa_signature_functions[] M2P_HIDDEN;
extern const OSSL_DISPATCH m2p_rsa_signature_functions[] M2P_HIDDEN;
extern const OSSL_DISPATCH m2p_store_functions[] M2P_HIDDEN;
extern const OSSL_DISPATCH m2p_pem_decoder_functions[] M2P_HIDDEN;
extern const OSSL_DISPATCH m2p_ec_decoder_functions[] M2P_HIDDEN;
extern const OSSL_DISPATCH m2p_rsa_decoder_functions[] M2P_HIDDEN;

/* ---- small helpers ---------------------------------------------------------- */
M2P_HIDDEN char *m2p_read_pin_file(const char *path);
/* core BIO reading (provider.c), with the core's function given at init */
M2P_HIDDEN void m2p_core_bio_init(OSSL_FUNC_BIO_read_ex_fn *read_ex);
/* reads at most about max bytes (key references are small) */
M2P_HIDDEN int m2p_core_bio_read_all(OSSL_CORE_BIO *cin, size_t max, unsigned char **data,
                                     size_t *len);
/* first private (cls CKO_PRIVATE_KEY) or public key matching a URI (store.c) */
M2P_HIDDEN m2p_key *m2p_key_from_uri(m2p_prov *prov, const char *uri, CK_OBJECT_CLASS cls,
                                     OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg);

#endif
