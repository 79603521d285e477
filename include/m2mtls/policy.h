/*
 * m2mtls — oneM2M TS-0003 Certificate-Based Security Association Establishment
 * Framework for OpenSSL 3 programs.
 *
 * The policy library: load a policy file, install a verifier on an SSL_CTX,
 * read the oneM2M identity bound to each TLS/DTLS connection.
 * The file format and every function here are a public contract
 * (see README.md, "Policy file" and "C API").
 */
#ifndef M2MTLS_POLICY_H
#define M2MTLS_POLICY_H

#include <time.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define M2MTLS_API __attribute__((visibility("default")))
#else
#define M2MTLS_API
#endif

#define M2MTLS_VERSION_STRING "0.1.0"

typedef struct m2mtls_policy m2mtls_policy;

/* ---- Policies ---------------------------------------------------------- */

/* Loads a policy file. NULL on error; m2mtls_last_error() then holds every
 * mistake found, one "FILE:LINE: what is wrong" a line. */
M2MTLS_API m2mtls_policy *m2mtls_policy_load(const char *path);
/* Policies are reference counted: up_ref adds one, free drops one. NULL ok. */
M2MTLS_API int  m2mtls_policy_up_ref(m2mtls_policy *p);
M2MTLS_API void m2mtls_policy_free(m2mtls_policy *p);
/* This thread's last failure; never NULL ("" when none). */
M2MTLS_API const char *m2mtls_last_error(void);

/* Number of `peer` lines; the local-id line (NULL if none). */
M2MTLS_API size_t      m2mtls_policy_peer_count(const m2mtls_policy *p);
M2MTLS_API const char *m2mtls_policy_local_id(const m2mtls_policy *p);

/* Where the peer is reached (the `at=` of its peer line: TS-0003 "IdB routes
 * the (D)TLS exchange"). 1 and HOST (valid while P lives), PORT and DTLS
 * (1 for dtls://) set when the line has at=; 0 otherwise. */
M2MTLS_API int m2mtls_policy_peer_address(const m2mtls_policy *p, const char *peer_id,
                                          const char **host, unsigned *port, int *dtls);

/* ---- Evaluating a certificate outside a handshake ----------------------- */

#define M2MTLS_RESPONDER 0 /* we are the server: the peer is a TLS client */
#define M2MTLS_INITIATOR 1 /* we are the client: the peer is a TLS server */

typedef struct m2mtls_verdict {
    int   accepted;       /* 1 when exactly one identity results */
    char *peer_id;        /* bound identity (IdA at B, IdB at A) */
    char *local_id;       /* own identity toward that peer, NULL if none */
    char *cert_name;      /* the configured name that matched: "dns:..." / "uri:..." */
    char *anchor;         /* name of the anchor the chain was verified to */
    char *reason;         /* why it was rejected; NULL when accepted */
    STACK_OF(X509) *chain;/* verified chain, leaf first; NULL when rejected */
} m2mtls_verdict;

/* Evaluates CERT (with untrusted CHAIN, may be NULL) as the policy would in a
 * handshake. PEER_ID non-NULL: only that association (initiator semantics).
 * AT: verification time, 0 for now. Returns 1 when the evaluation ran (read
 * out->accepted), 0 on an internal error (m2mtls_last_error()). */
M2MTLS_API int  m2mtls_policy_check_cert(const m2mtls_policy *p, X509 *cert,
                                         STACK_OF(X509) *chain, const char *peer_id,
                                         int role, time_t at, m2mtls_verdict *out);
M2MTLS_API void m2mtls_verdict_clear(m2mtls_verdict *v);

/* ---- SSL_CTX ------------------------------------------------------------ */

/* Installs the verifier: requires and verifies the peer certificate on every
 * handshake (in the handshake itself: no post-handshake authentication, no
 * external PSK, no 0-RTT data, no renegotiation), labels each connection.
 * Takes the context's client hello, session ticket, "not resumable" and
 * certificate verify callbacks and a ClientHello extension callback (type
 * 0xff4d, never sent). Keeps a reference to P. 1 ok, 0 error. */
M2MTLS_API int m2mtls_ctx_install(SSL_CTX *ctx, m2mtls_policy *p);
/* Atomically replaces the policy of a context already installed; handshakes
 * already started finish with the policy they started with. 1 ok, 0 error. */
M2MTLS_API int m2mtls_ctx_set_policy(SSL_CTX *ctx, m2mtls_policy *p);
/* Servers: m2mtls_ctx_install uses OpenSSL's client hello callback. An
 * application that needs its own registers it here instead (before it
 * serves); it runs first, and m2mtls's part runs when it returns success. */
M2MTLS_API int m2mtls_ctx_set_client_hello_cb(SSL_CTX *ctx, SSL_client_hello_cb_fn cb, void *arg);
/* Servers: m2mtls_ctx_install uses OpenSSL's session ticket callbacks (the
 * label travels in the ticket). An application that needs its own registers
 * them here instead: they run first and see only their own ticket app data
 * (SSL_SESSION_set1_ticket_appdata); a ticket its decrypt callback refuses
 * is not resumed, one it accepts is still re-checked by the policy. 1 ok. */
M2MTLS_API int m2mtls_ctx_set_session_ticket_cb(SSL_CTX *ctx, SSL_CTX_generate_session_ticket_fn gen,
                                                SSL_CTX_decrypt_session_ticket_fn dec, void *arg);
/* Loads the policy's `cert` (leaf + chain) and `key` (PEM file, key
 * reference PEM or pkcs11: URI, through OSSL_STORE) into CTX. 1 ok, 0 error. */
M2MTLS_API int m2mtls_ctx_use_credential(SSL_CTX *ctx, const m2mtls_policy *p);
/* TS-0003 10.2: TLS 1.2 suite ECDHE-ECDSA-AES128-SHA256 (DTLS:
 * ECDHE-ECDSA-AES128-CCM8), group P-256, ECDSA-SHA256; minimum version
 * (D)TLS 1.2; TLS 1.3 stays allowed. 1 ok, 0 error. */
M2MTLS_API int m2mtls_ctx_apply_ts0003_profile(SSL_CTX *ctx);

/* ---- Connections -------------------------------------------------------- */
/* A label is what the handshake that completed proved (README "Security
 * model"): a chain verified in that handshake, or a session resumed in it and
 * re-checked by the policy of the context the connection ended up on. There
 * is none before the handshake completed, after it failed, after SSL_clear,
 * nor during a renegotiation; a second certificate on the connection must
 * name the same identity or the connection is aborted. Every getter accepts
 * NULL. */

/* Initiator: the association (peer id) this connection is for, checked
 * against the current policy of SSL's context (and again when each handshake
 * starts). Only that association is accepted; SNI is set to its dNSName when
 * it has one. 1 ok, 0 when the policy has no such association. */
M2MTLS_API int m2mtls_ssl_set_peer(SSL *ssl, const char *peer_id);
/* Identity bound to the connection (full or resumed handshake), NULL if none. */
M2MTLS_API const char *m2mtls_ssl_peer_id(const SSL *ssl);
/* Own identity toward this peer (`as=` of its peer line, else local-id). */
M2MTLS_API const char *m2mtls_ssl_local_id(const SSL *ssl);
/* The configured name that matched and the anchor name, NULL if none. */
M2MTLS_API const char *m2mtls_ssl_peer_cert_name(const SSL *ssl);
M2MTLS_API const char *m2mtls_ssl_anchor(const SSL *ssl);
/* Why the peer was refused (or, after a failed handshake, what the peer did
 * not prove), NULL if it was not, or if the peer ended the handshake itself. */
M2MTLS_API const char *m2mtls_ssl_reject_reason(const SSL *ssl);
/* TS-0003 7.2.1: 1 when FROM (CSE-relative, SP-relative or absolute form)
 * names the identity bound to SSL, 0 otherwise (ORIGINATOR_NOT_AUTHENTICATED).
 * A relative FROM is completed with the receiving CSE's own CSE-ID and SP-ID
 * (the connection's local id; the policy's `sp-id` line when that local id
 * is SP-relative), never with the peer's: without an own SP-ID, a relative
 * FROM does not name an absolute identity. */
M2MTLS_API int m2mtls_ssl_check_originator(const SSL *ssl, const char *from);

#ifdef __cplusplus
}
#endif
#endif
