/* SPDX-License-Identifier: Apache-2.0 */
/* Internal interfaces of libm2mtls. Nothing here is exported from the shared
 * library (hidden visibility); the m2mtls tool links the static library. */
#ifndef M2MTLS_INTERNAL_H
#define M2MTLS_INTERNAL_H

#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <openssl/err.h>
#include <m2mtls/policy.h>

#define M2_HIDDEN __attribute__((visibility("hidden")))
#define M2_NONE   UINT32_MAX

/* ---- error.c ------------------------------------------------------------ */
/* Sets this thread's last error (printf style). */
M2_HIDDEN void m2_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The OpenSSL error queue's reasons, root cause first, into buf; reads the
 * queue empty, so only between m2_err_stash and m2_err_unstash. */
M2_HIDDEN void m2_openssl_reason(char *buf, size_t len);

/* The application's OpenSSL errors are never read or dropped by us:
 * m2_err_stash takes them out of this thread's queue (which then holds only
 * what we push), m2_err_unstash drops what we left and puts them back in
 * order. m2_err_discard_own drops our own entries in between. */
#define M2_ERR_SAVED 16 /* the size of OpenSSL 3's per-thread error ring */
typedef struct m2_err_entry { unsigned long code; int line; char *file, *func, *data; } m2_err_entry;
typedef struct m2_err_saved { int n; m2_err_entry e[M2_ERR_SAVED]; } m2_err_saved;
M2_HIDDEN void m2_err_stash(m2_err_saved *s);
M2_HIDDEN void m2_err_unstash(m2_err_saved *s);
M2_HIDDEN void m2_err_discard_own(void);

/* An error list: the parser collects every mistake, then publishes them. */
typedef struct m2_errors {
    char  *text;   /* "FILE:LINE: ...\n" lines */
    size_t len, cap;
    unsigned count;
} m2_errors;
M2_HIDDEN void m2_errors_add(m2_errors *e, const char *file, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
M2_HIDDEN void m2_errors_publish(m2_errors *e); /* -> last error; frees */

/* A growable string for reasons. */
typedef struct m2_buf { char *s; size_t len, cap; int oom; } m2_buf;
M2_HIDDEN void  m2_buf_addf(m2_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
M2_HIDDEN void  m2_buf_add_escaped(m2_buf *b, const unsigned char *s, size_t n, size_t max);
M2_HIDDEN char *m2_buf_take(m2_buf *b); /* caller owns; NULL on OOM */


/* ---- strtab.c: arena of strings and an open-addressing index ------------ */
typedef struct m2_arena_chunk m2_arena_chunk;
typedef struct m2_arena { m2_arena_chunk *head; size_t used, bytes; } m2_arena;
M2_HIDDEN const char *m2_arena_strndup(m2_arena *a, const char *s, size_t n);
M2_HIDDEN void m2_arena_free(m2_arena *a);

/* Maps byte strings to a uint32 value; keys are owned by the caller (arena).
 * The key function gives, for a stored value, its key bytes. */
typedef struct m2_index {
    uint32_t *slots;  /* value + 1, 0 = empty */
    uint32_t  mask, count;
    uint64_t  seed;
} m2_index;
typedef const char *(*m2_index_key_fn)(const void *owner, uint32_t value, size_t *len);
M2_HIDDEN uint64_t m2_hash(uint64_t seed, const void *key, size_t len);
M2_HIDDEN int      m2_index_init(m2_index *ix, uint32_t expected);
M2_HIDDEN void     m2_index_free(m2_index *ix);
/* Inserts VALUE unless an equal key is there: returns M2_NONE when inserted,
 * the existing value otherwise; sets *oom on allocation failure. */
M2_HIDDEN uint32_t m2_index_put(m2_index *ix, const void *owner, m2_index_key_fn key,
                                uint32_t value, int *oom);
M2_HIDDEN uint32_t m2_index_get(const m2_index *ix, const void *owner, m2_index_key_fn key,
                                const char *k, size_t klen);

/* ---- identifier.c: oneM2M identifiers (TS-0001 7.2) ---------------------- */
/* A DNS name (labels of letters, digits, '-', '_'; no empty label). */
M2_HIDDEN int m2_valid_dns_name(const char *s, size_t n);
/* 'C' or 'S', then only URI unreserved characters (A-Z a-z 0-9 - . _ ~). */
M2_HIDDEN int m2_ae_id_stem(const char *s, size_t n);
/* A peers-from-cert prefix: //SP-ID/ or //SP-ID/CSE-ID/; 0 with WHY if not. */
M2_HIDDEN int m2_pfc_prefix_check(const char *prefix, char *why, size_t why_len);
/* //SP-ID/CSE-ID/C-stem or //SP-ID/S-stem; 0 with WHY if not. */
M2_HIDDEN int m2_absolute_ae_id(const char *s, size_t n, char *why, size_t why_len);

/* ---- the policy ---------------------------------------------------------- */
enum m2_name_type { M2_NAME_DNS = 1, M2_NAME_URI = 2, M2_NAME_KEY = 3 };
enum m2_transport { M2_AT_NONE = 0, M2_AT_TLS = 1, M2_AT_DTLS = 2 };

typedef struct m2_anchor {
    const char *name;
    X509       *cert;
    X509_STORE *store;           /* this anchor alone (+ the policy's CRLs) */
    unsigned char sha256[32];    /* of the anchor certificate's DER */
    unsigned line;
} m2_anchor;

/* One `peer` line: an association. Strings live in the policy arena. */
typedef struct m2_peer {
    const char *id;
    const char *name;            /* "dns:<lower-cased fqdn>" or "uri:<value>": the index key;
                                    a key identity: "key:<alg>;<base64url>", then its NUL, the
                                    id's length and its bytes (m2_peer_key_id) */
    const char *as;              /* own identity toward this peer, or NULL */
    const char *at_host;         /* NULL when no at= */
    uint32_t    anchor;          /* index into anchors; M2_NONE for a key identity */
    uint32_t    next_same_name;  /* next peer with the same name, M2_NONE ends */
    uint32_t    line;
    uint16_t    at_port;
    uint8_t     name_type;       /* enum m2_name_type */
    uint8_t     at_transport;    /* enum m2_transport */
} m2_peer;

/* One `peers-from-cert` line. */
typedef struct m2_pfc {
    uint32_t    anchor;
    const char *prefix;
    size_t      prefix_len;
    unsigned    line;
} m2_pfc;

struct m2mtls_policy {
    atomic_int  refs;
    char       *path;
    char       *local_id;
    char       *sp_id;          /* the `sp-id` line without its "//": own SP when local-id is SP-relative */
    char       *key_ref;        /* resolved path or pkcs11: URI */
    X509       *cert;           /* own leaf */
    STACK_OF(X509) *chain;      /* own chain (may be empty) */
    STACK_OF(X509_CRL) *crls;
    m2_anchor  *anchors;  uint32_t n_anchors;
    m2_peer    *peers;    uint32_t n_peers, cap_peers;
    m2_pfc     *pfcs;     uint32_t n_pfcs;
    m2_index    by_id;      /* peer id -> peer */
    m2_index    by_name;    /* (type, name) -> first peer with that name */
    m2_index    by_key;     /* first M2_KEYID_MIN bytes of a key id -> its key peer */
    uint32_t    n_key_peers;
    unsigned char digest[32];   /* of everything that decides trust: the session id context */
    m2_arena    arena;
};

/* policy.c */
M2_HIDDEN m2mtls_policy *m2_policy_new(const char *path);
M2_HIDDEN uint32_t m2_policy_find_anchor(const m2mtls_policy *p, const char *name);
M2_HIDDEN uint32_t m2_policy_find_peer(const m2mtls_policy *p, const char *id);
/* First peer configured with KEY ("dns:<lower-case>" / "uri:<bytes>"). */
M2_HIDDEN uint32_t m2_policy_find_name(const m2mtls_policy *p, const char *key, size_t len);
M2_HIDDEN const char *m2_peer_name_key(const void *owner, uint32_t v, size_t *len);
M2_HIDDEN const char *m2_peer_id_key(const void *owner, uint32_t v, size_t *len);
/* The key peer whose RFC 6920 id is a prefix of SHA (the SPKI's SHA-256),
 * M2_NONE if none. */
M2_HIDDEN uint32_t m2_policy_find_key(const m2mtls_policy *p, const unsigned char sha[32]);
M2_HIDDEN const char *m2_peer_keyid_key(const void *owner, uint32_t v, size_t *len);
/* A key identity's id bytes (LEN: 32, 16 or 15); NULL for a certificate peer. */
M2_HIDDEN const unsigned char *m2_peer_key_id(const m2_peer *peer, size_t *len);
/* The pfc rule that could make PEER_ID an identity (its prefix, then one
 * AE-ID-Stem), M2_NONE if none. */
M2_HIDDEN uint32_t m2_policy_find_pfc_for(const m2mtls_policy *p, const char *peer_id, uint32_t from);

/* parser.c (above policy.c; m2mtls_policy_load is there): P filled from F,
 * with p->path naming it (the fuzz target). */
M2_HIDDEN int m2_parse_policy_stream(m2mtls_policy *p, FILE *f, m2_errors *errs);

/* ---- matcher.c: names of a certificate -> candidate associations --------- */
typedef struct m2_candidate {
    uint32_t peer;      /* index into peers, or M2_NONE for a peers-from-cert identity */
    uint32_t pfc;       /* index into pfcs when peer == M2_NONE */
    uint32_t anchor;
} m2_candidate;

typedef struct m2_match {
    m2_candidate *cand; size_t n, cap;
    char *pfc_id;        /* the URI SAN that is the identity for pfc candidates */
    char *names;         /* "dns:a, uri:b" for messages (bounded) */
} m2_match;

/* Fills M with the associations the names of LEAF select. EXPECTED: the only
 * association allowed (initiator), or NULL. Returns 1 when there is at least
 * one candidate, 0 with *reason set (owned by caller) otherwise. */
M2_HIDDEN int  m2_match_names(const m2mtls_policy *p, X509 *leaf, const char *expected,
                              m2_match *m, char **reason);
M2_HIDDEN void m2_match_free(m2_match *m);

/* ---- keyid.c: RFC 6920 key identifiers ----------------------------------- */
#define M2_KEYID_MIN 15  /* bytes of the shortest id (sha-256-120): the look-up key */
/* The byte length of an id of hash ALG ("sha-256" 32, "sha-256-128" 16,
 * "sha-256-120" 15), 0 for any other name. */
M2_HIDDEN size_t m2_keyid_alg_len(const char *alg);
/* "<ALG>;<BASE64URL>" (the text after "key:") -> its bytes and the canonical
 * name of ALG; 0 with WHY (bad algorithm, base64url or length). */
M2_HIDDEN int m2_keyid_parse(const char *s, unsigned char out[32], size_t *len, const char **alg, char *why,
                             size_t why_len);
/* SHA-256 of KEY's DER SubjectPublicKeyInfo. 1 ok. */
M2_HIDDEN int m2_key_sha256(const EVP_PKEY *key, unsigned char out[32]);
/* The same of the peer's key: LEAF's (its SubjectPublicKeyInfo as decoded),
 * or RPK's when LEAF is NULL. */
M2_HIDDEN int m2_peer_key_sha256(X509 *leaf, const EVP_PKEY *rpk, unsigned char out[32]);
/* "<ALG>;<BASE64URL>" of the first bytes of SHA into BUF (returned). */
M2_HIDDEN const char *m2_keyid_format(const unsigned char sha[32], const char *alg, char *buf, size_t len);
#define M2_KEYID_TEXT 64 /* room for any formatted id */

/* ---- verdict.c: the verdict record (m2mtls_verdict_clear, its code) ------- */
/* A verdict that a key identity gave (its cert_name is "key:..."). */
M2_HIDDEN int m2_verdict_by_key(const m2mtls_verdict *v);

/* ---- verifier.c ---------------------------------------------------------- */
typedef struct m2_eval_opts {
    int         role;          /* M2MTLS_RESPONDER / M2MTLS_INITIATOR */
    const char *expected;      /* initiator's association, or NULL */
    time_t      at;            /* 0 = now */
    SSL        *ssl;           /* for the application's verify callback and its security level, or NULL */
    /* The handshake's parameters, or NULL: only what tightens is read (params.c). */
    X509_VERIFY_PARAM *param;
    int         security_level; /* without an SSL: the context's level to apply (at least 2 is) */
    /* Resumption: no chain to verify; an anchor is satisfied when its
     * certificate's SHA-256 equals this one (the anchor that verified the
     * chain when the session was made). */
    const unsigned char *resumed_anchor_sha256;
    /* A session's label is re-checked (certificate or key identity): the
     * certificate is the one the full handshake that made the label checked,
     * the same bytes kept in the session, so its own profile (encoding,
     * keyUsage) is not checked again; what the current policy decides is. */
    int         resumed;
    /* The peer's RFC 7250 raw public key, when it sent no certificate
     * (OpenSSL >= 3.2), or NULL. */
    EVP_PKEY   *rpk;
} m2_eval_opts;

M2_HIDDEN int m2_evaluate(const m2mtls_policy *p, X509 *leaf, STACK_OF(X509) *untrusted,
                          const m2_eval_opts *o, m2mtls_verdict *out, int *x509_err);
/* A bare public key evaluated as the raw public key of a handshake
 * (m2mtls inspect on a PUBLIC KEY PEM); the arguments of
 * m2mtls_policy_check_cert_ex otherwise. */
M2_HIDDEN int m2_policy_check_key(const m2mtls_policy *p, EVP_PKEY *key, const char *peer_id, m2mtls_role role,
                                  int security_level, m2mtls_verdict *out);

/* ---- keypeer.c: key identities (RFC 6920 ids, RFC 7250 raw public keys) -- */
/* Decides (*DECIDED = 1, OUT filled, accepted or not) when the key of LEAF
 * (or RPK, without a certificate) is configured for a key peer, or when the
 * initiator expects a key peer, or when there is no certificate; leaves the
 * certificate to the name associations otherwise (*DECIDED = 0). 0 only when
 * out of memory. */
M2_HIDDEN int  m2_key_evaluate(const m2mtls_policy *p, X509 *leaf, STACK_OF(X509) *untrusted,
                               const m2_eval_opts *o, m2mtls_verdict *out, int *x509_err, int *decided);
/* Adds to a name refusal of LEAF that its key is not configured either. */
M2_HIDDEN void m2_key_note_unknown(const m2mtls_policy *p, X509 *leaf, m2mtls_verdict *out);

/* ---- params.c: the verification parameters the policy owns --------------- */
#define M2_MIN_SECURITY_LEVEL 2   /* every chain: 112-bit keys and signatures at least */
#define M2_VERIFY_DEPTH      10   /* intermediates at most; an application may ask fewer */
/* The security level of a default SSL_CTX of this OpenSSL (its configuration). */
M2_HIDDEN int  m2_default_security_level(void);
/* The level a chain is held to: the context's (or O's), never below the floor. */
M2_HIDDEN int  m2_effective_security_level(const m2_eval_opts *o);
/* Purpose, flags, depth, level and time of one anchor check. */
M2_HIDDEN void m2_set_verify_params(X509_STORE_CTX *xs, const m2mtls_policy *p, const m2_eval_opts *o);
/* The application's host / IP / e-mail checks on LEAF; 0 with WHY when one fails. */
M2_HIDDEN int  m2_app_name_checks(X509 *leaf, const m2_eval_opts *o, m2_buf *why);

/* ---- ncons.c: URI name constraints for scheme-less Absolute AE-IDs ------- */
/* In a verify callback that got X509_V_ERR_UNSUPPORTED_NAME_SYNTAX: the
 * error to report instead (X509_V_OK when every constraint holds). */
M2_HIDDEN int  m2_ae_name_constraints(X509_STORE_CTX *xs);
/* "permitted ...; excluded ..." of every CA above DEPTH of the chain. */
M2_HIDDEN void m2_describe_name_constraints(STACK_OF(X509) *chain, int depth, m2_buf *why);

/* ---- extensions.c --------------------------------------------------------- */
/* 1 with WHY when OpenSSL found X's extensions invalid, 0 when they are fine. */
M2_HIDDEN int  m2_cert_extensions_invalid(X509 *x, m2_buf *why);

/* ---- the context and connection files, lowest first: ctx_state.c,
 * session_label.c, connection.c, guard.c, tickets.c, initiator.c,
 * context.c. Each uses only those before it (context.c: initiator.c too). */

/* ctx_state.c: m2mtls's state on an SSL_CTX (its policy, the application's
 * chained callbacks). */
typedef struct m2_ctx_state m2_ctx_state;
M2_HIDDEN m2_ctx_state   *m2_ctx_state_get(const SSL_CTX *ctx);
/* Attaches a new state holding a reference to P to CTX; NULL with the
 * last error set. */
M2_HIDDEN m2_ctx_state   *m2_ctx_state_new(SSL_CTX *ctx, m2mtls_policy *p);
/* A new reference to the context's current policy. */
M2_HIDDEN m2mtls_policy  *m2_ctx_state_policy(m2_ctx_state *st);
/* libm2mtls-preload.so governs every context of a program with the one policy
 * of M2MTLS_POLICY, which it may reload (M2MTLS_RELOAD): when this is set,
 * m2_ctx_state_policy() takes the policy from it (a new reference) instead of
 * from the context, so that one swap reaches every context at once, including
 * a context a connection switched to. NULL in libm2mtls; set once, before the
 * first context is made. */
M2_HIDDEN extern m2mtls_policy *(*m2_policy_source)(void);
/* The application's client hello callback run before m2mtls's (NULL if none). */
M2_HIDDEN void m2_ctx_state_app_hello(const m2_ctx_state *st, SSL_client_hello_cb_fn *cb, void **arg);
/* The application's session ticket callbacks chained by m2mtls's (NULL if none). */
M2_HIDDEN void m2_ctx_state_app_tickets(const m2_ctx_state *st, SSL_CTX_generate_session_ticket_fn *gen,
                                        SSL_CTX_decrypt_session_ticket_fn *dec, void **arg);

/* A handshake is named by its client and server randoms: they are new for
 * every handshake (SSL_clear and renegotiation included) and stay the same
 * through TLS 1.3 post-handshake messages. */
#define M2_HS_ID_LEN 64

/* What one handshake proved about the peer. A proof becomes the connection's
 * label only once its handshake completed. */
enum m2_proven { M2_PROVEN_NONE = 0, M2_PROVEN_CHAIN = 1, M2_PROVEN_RESUMED = 2 };
typedef struct m2_proof {
    int   how;                          /* enum m2_proven */
    int   key;                          /* a key identity: anchor_sha256 holds the key's SPKI SHA-256 */
    char *peer_id, *local_id, *cert_name, *anchor;
    unsigned char anchor_sha256[32];    /* the anchor certificate that verified the chain */
    unsigned char hs[M2_HS_ID_LEN];     /* the handshake that proved it */
} m2_proof;

/* The last re-check of a session's label that passed on one connection
 * (session_label.c): a client checks the session it offers when its
 * handshake starts, when its ClientHello is made and when the handshake
 * completes; a server when it decrypts the ticket and when the handshake
 * completes. The same policy snapshot, session, label record and association
 * give the same verdict: it is computed once. */
typedef struct m2_label_memo {
    SSL_SESSION *sess;                  /* a reference: its address is never another session's */
    /* ... but its content may be: d2i_SSL_SESSION(&sess, ...) decodes
     * another session into the same object. What the verdict was made of is
     * named too: the peer's certificate and raw public key (references, so
     * their addresses are never another's either). */
    X509        *peer;
    EVP_PKEY    *rpk;
    const m2mtls_policy *policy;        /* the connection's snapshot (a new one clears the memo) */
    int   role;
    char *expected;
    unsigned char *rec;                 /* the label record as it was read */
    size_t rec_len;
    m2mtls_verdict v;                   /* accepted */
    unsigned char sha[32];
} m2_label_memo;

/* session_label.c: the label record carried by a session (ticket app data,
 * followed by the application's own ticket data, if any). */
M2_HIDDEN int      m2_session_store_label(SSL_SESSION *sess, const m2_proof *proof);
/* Re-checks a session's stored label against POLICY; 1 valid (OUT accepted).
 * MEMO (or NULL): a connection's last re-check that passed, used when it was
 * of the same POLICY, SESS (and its peer certificate or key), label record,
 * EXPECTED and ROLE, else replaced. */
M2_HIDDEN int      m2_session_label_valid(const m2mtls_policy *p, SSL_SESSION *sess,
                                          const char *expected, int role, m2mtls_verdict *out,
                                          unsigned char anchor_sha256[32], m2_label_memo *memo);
M2_HIDDEN void     m2_label_memo_clear(m2_label_memo *memo);
/* A copy of the application's part of SESS's app data (NULL when none). */
M2_HIDDEN unsigned char *m2_session_app_part(SSL_SESSION *sess, size_t *len);
/* Sets SESS's app data to the record of PROOF (or none) followed by APP. */
M2_HIDDEN int      m2_session_set_appdata(SSL_SESSION *sess, const m2_proof *proof, const void *app,
                                          size_t app_len);
/* The record of SESS as a resumed proof in OUT (its peer id a copy, NULL
 * when out of memory); 0 with OUT cleared when SESS has none. */
M2_HIDDEN int      m2_session_read_label(SSL_SESSION *sess, m2_proof *out);

/* connection.c: the label of a connection. */
typedef struct m2_conn {
    m2_ctx_state  *st;         /* the context `policy` was taken from */
    m2mtls_policy *policy;     /* snapshot the handshake under way uses (a reference) */
    char *expected;            /* initiator: the association asked for */
    m2_proof pending;          /* proven in the handshake under way: not a label yet */
    m2_proof label;            /* the label, for the handshake that completed */
    char *bound_id;            /* identity of the connection's first handshake: later ones must name it */
    char *reason;              /* why the handshake under way (or the last one) was refused */
    m2mtls_reject_code reason_code; /* its class (M2MTLS_REJECT_NONE without a reason) */
    int   settled;             /* settled_hs completed and was settled (label or reason) */
    unsigned char settled_hs[M2_HS_ID_LEN];
    void (*app_info_cb)(const SSL *, int, int); /* initiator: the SSL's callback ours replaced */
    int   unpoliced;           /* m2_refuse_unpoliced replaced the SSL's verify callback ... */
    SSL_verify_cb app_verify_cb; /* ... which was this; the next handshake gets it back */
    m2_label_memo resumed;     /* the last session label re-check that passed */
} m2_conn;

/* The name of the handshake under way on SSL (connection.c). */
M2_HIDDEN void     m2_hs_id(const SSL *ssl, unsigned char out[M2_HS_ID_LEN]);
M2_HIDDEN int      m2_conn_index(void);
M2_HIDDEN m2_conn *m2_conn_get(const SSL *ssl, int create);
/* A copy of REASON with its class CODE (NULL clears both). */
M2_HIDDEN void     m2_conn_set_reason(m2_conn *c, m2mtls_reject_code code, const char *reason);
M2_HIDDEN void     m2_proof_clear(m2_proof *p);
/* Makes PROOF of the accepted verdict V (takes its strings) for this handshake. */
M2_HIDDEN void     m2_proof_take(m2_proof *proof, int how, m2mtls_verdict *v,
                                 const unsigned char anchor_sha256[32], const SSL *ssl);
/* Takes the current policy of ST as the connection's snapshot. */
M2_HIDDEN void     m2_conn_use_policy(m2_conn *c, m2_ctx_state *st);
/* A handshake starts on SSL: nothing of an earlier one carries over but,
 * for a renegotiation, the identity the connection is bound to. With
 * SETTLE_PREVIOUS (the randoms are still the previous handshake's) that
 * handshake is settled first. Takes ST's current policy. */
M2_HIDDEN void     m2_conn_start(SSL *ssl, m2_conn *c, m2_ctx_state *st, int settle_previous);
/* The connection's first handshake completed already (this one is a
 * renegotiation or a TLS 1.3 post-handshake authentication). */
M2_HIDDEN int      m2_conn_is_later(const SSL *ssl);
/* Decides what the handshake under way proves, for the end-of-handshake
 * checks: its proof (c->pending, or c->label once settled), or NULL with
 * c->reason set. */
M2_HIDDEN const m2_proof *m2_conn_prove(SSL *ssl, m2_conn *c);
/* The handshake under way has completed (not only its early-data part). */
M2_HIDDEN int      m2_handshake_completed(const SSL *ssl);
/* When the handshake named by SSL's randoms has completed (COMPLETED),
 * makes its proof the label, or records why there is none. */
M2_HIDDEN void     m2_conn_settle(const SSL *ssl, m2_conn *c, int completed);

/* guard.c: only suites that authenticate a certificate stay in SSL's
 * (D)TLS 1.2 cipher list (no anonymous, PSK or SRP suite); 0 with C's
 * reason when none is left. */
M2_HIDDEN int      m2_certificate_suites_only(SSL *ssl, m2_conn *c);
/* The connection ended up on a context without m2mtls_ctx_install: its
 * handshake is made to fail at the peer's certificate, with C's reason. */
M2_HIDDEN void     m2_refuse_unpoliced(SSL *ssl, m2_conn *c);

/* tickets.c: the server's session ticket callbacks on CTX. */
M2_HIDDEN int      m2_install_ticket_cb(SSL_CTX *ctx, m2_ctx_state *st);

/* initiator.c: the client's start of every handshake (a ClientHello
 * extension callback: it cannot be replaced by the application). */
M2_HIDDEN int      m2_install_initiator_hook(SSL_CTX *ctx);

M2_HIDDEN char *m2_strdup(const char *s);

/* credential.c: a private key from a file, a key reference PEM or a pkcs11:
 * URI, through OSSL_STORE (the m2mtls provider serves the last two). */
/* The URI of a key reference PEM file ('PKCS#11 PROVIDER URI'), or NULL
 * with WHY; OPENSSL_free it. */
M2_HIDDEN char *m2_keyref_uri(const char *file, char *why, size_t why_len);
M2_HIDDEN EVP_PKEY *m2_load_private_key(const char *ref, pem_password_cb *cb, void *cb_data, char *why,
                                        size_t why_len);

/* rpk.c: RFC 7250 raw public keys (OpenSSL >= 3.2; no-ops before).
 * Server: accept and send raw public keys when POLICY has key identities.
 * Client: offer them when the association asked for is a key identity. */
M2_HIDDEN void m2_rpk_server_start(SSL *ssl, const m2mtls_policy *policy);
M2_HIDDEN void m2_rpk_client_start(SSL *ssl, const m2mtls_policy *policy, const char *expected);
/* The peer's raw public key (or, in a verification, the store's), NULL if
 * none or before OpenSSL 3.2. */
M2_HIDDEN EVP_PKEY *m2_rpk_of_store(X509_STORE_CTX *xs);
M2_HIDDEN EVP_PKEY *m2_rpk_of_session(SSL_SESSION *sess);

/* profile.c: on a DTLS context, rates TS-0003's ECDHE-ECDSA-AES128-CCM8 at
 * its key strength (OpenSSL >= 3.2 rates it below security level 1); the
 * context's level and every other check stay. No-op on TLS. 1 ok, 0 error. */
M2_HIDDEN int m2_ctx_allow_ts0003_dtls_suite(SSL_CTX *ctx);

#endif
