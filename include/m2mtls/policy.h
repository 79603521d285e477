/* SPDX-License-Identifier: Apache-2.0 */
/*
 * m2mtls — oneM2M TS-0003 Certificate-Based Security Association Establishment
 * Framework for OpenSSL 3 programs.
 *
 * The policy library: load a policy file, install a verifier on an SSL_CTX,
 * read the oneM2M identity bound to each TLS/DTLS connection.
 * The file format and every function here are a public contract
 * (see README.md, "Policy file" and "C API"; man pages libm2mtls(3) and
 * m2mtls-policy(5)).
 *
 * Conventions for every function below:
 * - Ownership. A returned `const char *` belongs to the library: never free
 *   it. Its lifetime is stated per function ("valid while ..."). Objects the
 *   caller passes in stay the caller's unless a function says it keeps a
 *   reference. Failures return 0 or NULL and leave a message in
 *   m2mtls_last_error().
 * - Threads. A policy is immutable once loaded: any number of threads may
 *   read, share and evaluate it at once. An SSL is used by one thread at a
 *   time (OpenSSL's rule): the m2mtls_ssl_* calls run on the thread that
 *   drives that SSL. SSL_CTX set-up calls (install, credential, profile,
 *   client hello callback) run before the context is shared between threads,
 *   like OpenSSL's own SSL_CTX_set_* calls; m2mtls_ctx_set_policy is the
 *   exception: it may run at any time, from any thread.
 * - Compatibility. The ABI of libm2mtls.so.1 only grows within major
 *   version 1 (symbol version M2MTLS_1); structures keep their layout and
 *   enums keep their values. See README "Versioning and compatibility".
 *
 * libm2mtls-preload.so exports every function of this header too, with the
 * same ABI: a program that links libm2mtls.so and runs under the preload
 * (LD_PRELOAD, M2MTLS_POLICY, M2MTLS_RELOAD) calls the preload's copy and
 * reads the labels the preload bound. There M2MTLS_POLICY governs every
 * context: m2mtls_ctx_install / m2mtls_ctx_set_policy on a context the preload
 * governs keep it (logged; they return 1). Link the shared library: a static
 * copy sees no label under the preload. (README.md, "Adding TS-0003 to an
 * existing CSE".)
 */
#ifndef M2MTLS_POLICY_H
#define M2MTLS_POLICY_H

#include <time.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <m2mtls/version.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define M2MTLS_API __attribute__((visibility("default")))
#else
#define M2MTLS_API
#endif

typedef struct m2mtls_policy m2mtls_policy;

/* ---- Version ------------------------------------------------------------ */

/* The library's version at run time ("1.0.0"), which may be newer than the
 * M2MTLS_VERSION_STRING a program was compiled with. Static string; any
 * thread. */
M2MTLS_API const char *m2mtls_version(void);
/* The same as a number, 0xMMmmpp (compare with M2MTLS_VERSION_NUMBER). */
M2MTLS_API unsigned long m2mtls_version_number(void);

/* ---- Policies ---------------------------------------------------------- */

/* Loads a policy file. Returns a new policy holding one reference (release it
 * with m2mtls_policy_free), or NULL; m2mtls_last_error() then holds every
 * mistake found, one "FILE:LINE: what is wrong" a line. Any thread. */
M2MTLS_API m2mtls_policy *m2mtls_policy_load(const char *path);
/* Policies are reference counted: up_ref adds one (1 ok, 0 for NULL), free
 * drops one and frees the policy with the last. NULL is ignored. Any thread,
 * concurrently (atomic counts). */
M2MTLS_API int  m2mtls_policy_up_ref(m2mtls_policy *p);
M2MTLS_API void m2mtls_policy_free(m2mtls_policy *p);
/* This thread's last failure; never NULL ("" when none). The string belongs
 * to the calling thread (thread-local): valid until that thread's next
 * failing m2mtls call, or until it exits. Any thread, for itself. */
M2MTLS_API const char *m2mtls_last_error(void);

/* Number of `peer` lines. The local-id line, NULL if none: valid while P
 * lives. Any thread. */
M2MTLS_API size_t      m2mtls_policy_peer_count(const m2mtls_policy *p);
M2MTLS_API const char *m2mtls_policy_local_id(const m2mtls_policy *p);

/* Where the peer is reached (the `at=` of its peer line: TS-0003 "IdB routes
 * the (D)TLS exchange"). 1 and HOST (valid while P lives), PORT and DTLS
 * (1 for dtls://) set when the line has at=; 0 otherwise. Any of HOST, PORT,
 * DTLS may be NULL. Any thread. */
M2MTLS_API int m2mtls_policy_peer_address(const m2mtls_policy *p, const char *peer_id,
                                          const char **host, unsigned *port, int *dtls);

/* ---- Roles and refusals ------------------------------------------------- */

/* Which side of the handshake the policy speaks for. */
typedef enum m2mtls_role {
    M2MTLS_RESPONDER = 0, /* we are the server: the peer is a TLS client */
    M2MTLS_INITIATOR = 1  /* we are the client: the peer is a TLS server */
} m2mtls_role;
/* The names were macros before 1.0: `#ifdef M2MTLS_RESPONDER` keeps working. */
#define M2MTLS_RESPONDER M2MTLS_RESPONDER
#define M2MTLS_INITIATOR M2MTLS_INITIATOR

/* The class of a refusal, next to its text (m2mtls_ssl_reject_code,
 * m2mtls_verdict_code): what a program can act on without parsing the
 * reason. Values are stable; later versions may add classes, so treat an
 * unknown value like M2MTLS_REJECT_INTERNAL. */
typedef enum m2mtls_reject_code {
    M2MTLS_REJECT_NONE = 0,           /* not refused (accepted, or not evaluated) */
    M2MTLS_REJECT_NO_CERTIFICATE = 1, /* the peer presented no certificate */
    M2MTLS_REJECT_NAME = 2,           /* Certificate Name: no association (or not the one the
                                         initiator asked for) matches the certificate's names,
                                         or a name carries a wildcard or a NUL */
    M2MTLS_REJECT_ROOT_OF_TRUST = 3,  /* the chain does not verify to the association's own
                                         anchor: unknown issuer, signature, validity period,
                                         basic or name constraints, purpose */
    M2MTLS_REJECT_REVOCATION = 4,     /* a certificate of the chain is revoked, or its CRL is
                                         missing or unusable (revocation fails closed) */
    M2MTLS_REJECT_AMBIGUOUS = 5,      /* the certificate selects more than one identity */
    M2MTLS_REJECT_PROFILE = 6,        /* the certificate breaks the TS-0003 profile (keyUsage
                                         without digitalSignature, undecodable extensions,
                                         keys or signatures below the strength floor) */
    M2MTLS_REJECT_APPLICATION = 7,    /* the application's own verify callback refused */
    M2MTLS_REJECT_RESUMPTION = 8,     /* a resumed session that the current policy no longer
                                         grants to this association */
    M2MTLS_REJECT_INTERNAL = 9,       /* not the peer's doing: out of memory, a context
                                         without m2mtls_ctx_install */
    M2MTLS_REJECT_KEY_PROOF = 10      /* the certificate was accepted, but the peer did not
                                         prove possession of its private key (CertificateVerify
                                         failed, or the handshake ended before it) */
} m2mtls_reject_code;

/* A short stable token for CODE ("name", "root-of-trust", ...; "unknown"
 * for a value this version does not know), for logs and JSON. Static string;
 * any thread. */
M2MTLS_API const char *m2mtls_reject_code_name(m2mtls_reject_code code);

/* ---- Evaluating a certificate outside a handshake ----------------------- */

/* The result of m2mtls_policy_check_cert. Every pointer in it is owned by the
 * verdict and released by m2mtls_verdict_clear (strings with free(), the
 * chain with sk_X509_pop_free(chain, X509_free)): a caller that keeps a field
 * takes it out and sets it to NULL before clearing. The layout is part of the
 * ABI and does not change within major version 1. */
typedef struct m2mtls_verdict {
    int   accepted;       /* 1 when exactly one identity results */
    char *peer_id;        /* bound identity (IdA at B, IdB at A); NULL when rejected */
    char *local_id;       /* own identity toward that peer, NULL if none */
    char *cert_name;      /* the configured name that matched: "dns:..." / "uri:...";
                             a key identity: its "key:<alg>;<base64url>" */
    char *anchor;         /* name of the anchor the chain was verified to; NULL for a
                             key identity (no anchor: the key is the identity) */
    char *reason;         /* why it was rejected; NULL when accepted */
    STACK_OF(X509) *chain;/* verified chain, leaf first; NULL when rejected; a key
                             identity: the certificate that carried the key, alone */
    m2mtls_reject_code code; /* the class of the refusal; M2MTLS_REJECT_NONE when accepted */
} m2mtls_verdict;

/* Evaluates CERT (with untrusted CHAIN, may be NULL) as the policy would in a
 * handshake. PEER_ID non-NULL: only that association (initiator semantics).
 * AT: verification time, 0 for now. Returns 1 when the evaluation ran (read
 * out->accepted), 0 on an internal error (m2mtls_last_error()). OUT is
 * overwritten without being cleared first: clear an earlier verdict before
 * reusing it. P, CERT and CHAIN are only read; the verdict's chain holds its
 * own references. Any thread; several threads may evaluate with one policy at
 * once. OpenSSL 3.0 caches a certificate's extensions on first use, without
 * a lock: a CERT shared between threads must have been through one
 * evaluation (or X509_check_purpose(cert, -1, 0)) first.
 * The chain is held to the security level of a default SSL_CTX of this
 * OpenSSL (its configuration), and never to less than level 2, as in a
 * handshake: a certificate accepted here is not refused by a handshake for
 * a reason of its chain. OpenSSL errors queued by the caller stay queued. */
M2MTLS_API int  m2mtls_policy_check_cert(const m2mtls_policy *p, X509 *cert,
                                         STACK_OF(X509) *chain, const char *peer_id,
                                         m2mtls_role role, time_t at, m2mtls_verdict *out);
/* The same at a given SECURITY_LEVEL (0..5: the level of the SSL_CTX the
 * handshake would use; -1: that of a default SSL_CTX). The policy applies
 * the higher of SECURITY_LEVEL and 2. */
M2MTLS_API int  m2mtls_policy_check_cert_ex(const m2mtls_policy *p, X509 *cert,
                                            STACK_OF(X509) *chain, const char *peer_id,
                                            m2mtls_role role, time_t at, int security_level,
                                            m2mtls_verdict *out);
/* Frees what V owns (see m2mtls_verdict) and zeroes it; V itself is the
 * caller's. NULL is ignored. Thread: the one that owns V. */
M2MTLS_API void m2mtls_verdict_clear(m2mtls_verdict *v);
/* The class of V's refusal (V->code): M2MTLS_REJECT_NONE when accepted (or
 * zeroed, or V is NULL). Thread: the one that owns V. */
M2MTLS_API m2mtls_reject_code m2mtls_verdict_code(const m2mtls_verdict *v);

/* ---- SSL_CTX ------------------------------------------------------------ */

/* Installs the verifier: requires and verifies the peer certificate on every
 * handshake (in the handshake itself: no post-handshake authentication, no
 * external PSK, no 0-RTT data, no renegotiation), labels each connection.
 * Takes the context's client hello, session ticket, "not resumable" and
 * certificate verify callbacks and a ClientHello extension callback (type
 * 0xff4d, never sent). Keeps its own reference to P (the caller may free its
 * own at once); installing on a context that already has a policy swaps it
 * (m2mtls_ctx_set_policy). 1 ok, 0 error. Set-up time.
 * The policy owns the verification parameters (purpose, time, depth, flags,
 * revocation): from the context's X509_VERIFY_PARAM only what tightens is
 * taken (a smaller depth, a higher security level, X509_V_FLAG_X509_STRICT,
 * X509_V_FLAG_CHECK_SS_SIGNATURE, the Suite B flags, host / IP / e-mail
 * checks). Every chain is held to at least security level 2. */
M2MTLS_API int m2mtls_ctx_install(SSL_CTX *ctx, m2mtls_policy *p);
/* Atomically replaces the policy of a context already installed; handshakes
 * already started finish with the policy they started with. Keeps a
 * reference to P and drops the one to the old policy. 1 ok, 0 error. Any
 * time, any thread, concurrently with handshakes on CTX. */
M2MTLS_API int m2mtls_ctx_set_policy(SSL_CTX *ctx, m2mtls_policy *p);
/* Servers: m2mtls_ctx_install uses OpenSSL's client hello callback. An
 * application that needs its own registers it here instead (before it
 * serves); it runs first, and m2mtls's part runs when it returns success.
 * ARG stays the caller's. 1 ok, 0 when CTX has no m2mtls_ctx_install.
 * Set-up time. */
M2MTLS_API int m2mtls_ctx_set_client_hello_cb(SSL_CTX *ctx, SSL_client_hello_cb_fn cb, void *arg);
/* Servers: m2mtls_ctx_install uses OpenSSL's session ticket callbacks (the
 * label travels in the ticket). An application that needs its own registers
 * them here instead: they run first and see only their own ticket app data
 * (SSL_SESSION_set1_ticket_appdata); a ticket its decrypt callback refuses
 * is not resumed, one it accepts is still re-checked by the policy. 1 ok. */
M2MTLS_API int m2mtls_ctx_set_session_ticket_cb(SSL_CTX *ctx, SSL_CTX_generate_session_ticket_fn gen,
                                                SSL_CTX_decrypt_session_ticket_fn dec, void *arg);
/* Loads the policy's `cert` (leaf + chain) and `key` (PEM file, key
 * reference PEM or pkcs11: URI, through OSSL_STORE) into CTX (which holds its
 * own references to them). 1 ok, 0 error. Set-up time. */
M2MTLS_API int m2mtls_ctx_use_credential(SSL_CTX *ctx, const m2mtls_policy *p);
/* TS-0003 10.2: TLS 1.2 suite ECDHE-ECDSA-AES128-SHA256 (DTLS:
 * ECDHE-ECDSA-AES128-CCM8), group P-256, ECDSA-SHA256; minimum version
 * (D)TLS 1.2; TLS 1.3 stays allowed (on OpenSSL >= 3.5 its key exchange
 * prefers the hybrid SecP256r1MLKEM768, then P-256). On DTLS contexts the
 * context's security callback is wrapped so that ECDHE-ECDSA-AES128-CCM8,
 * which OpenSSL >= 3.2 allows only at security level 0, is rated at its key
 * strength (128 bits); the security level itself is not changed. 1 ok, 0 error. Set-up time. */
M2MTLS_API int m2mtls_ctx_apply_ts0003_profile(SSL_CTX *ctx);

/* ---- Connections -------------------------------------------------------- */
/* Every m2mtls_ssl_* call runs on the thread that drives SSL. A string one of
 * them returns is valid until SSL is freed or starts a new handshake
 * (SSL_clear and reuse), whichever comes first; copy it to keep it longer.
 *
 * A label is what the handshake that completed proved (README "Security
 * model"): a chain verified in that handshake, or a session resumed in it and
 * re-checked by the policy of the context the connection ended up on. There
 * is none before the handshake completed, after it failed, after SSL_clear,
 * nor during a renegotiation; a second certificate on the connection must
 * name the same identity or the connection is aborted. Every getter accepts
 * NULL. */

/* Initiator: the association (peer id) this connection is for, before
 * SSL_connect, checked against the current policy of SSL's context (and
 * again when each handshake starts). Only that association is accepted; SNI
 * is set to its dNSName when it has one. PEER_ID is copied. 1 ok, 0 when the
 * policy has no such association, or while a handshake is under way (the
 * association it is verified for stays). */
M2MTLS_API int m2mtls_ssl_set_peer(SSL *ssl, const char *peer_id);
/* Identity bound to the connection (full or resumed handshake), NULL if none. */
M2MTLS_API const char *m2mtls_ssl_peer_id(const SSL *ssl);
/* Own identity toward this peer (`as=` of its peer line, else local-id);
 * NULL if none. */
M2MTLS_API const char *m2mtls_ssl_local_id(const SSL *ssl);
/* The configured name that matched and the anchor name, NULL if none. A key
 * identity (peer ID key:sha-256;...; README "Raw public keys"): the name is its
 * "key:<alg>;<base64url>" and the anchor NULL. With OpenSSL >= 3.2 its key may
 * have come as an RFC 7250 raw public key (SSL_get0_peer_rpk), negotiated by
 * m2mtls per connection toward a key identity (SSL_set1_client_cert_type,
 * SSL_set1_server_cert_type). */
M2MTLS_API const char *m2mtls_ssl_peer_cert_name(const SSL *ssl);
M2MTLS_API const char *m2mtls_ssl_anchor(const SSL *ssl);
/* Why the peer was refused (or, after a failed handshake, what the peer did
 * not prove), NULL if it was not, or if the peer ended the handshake itself. */
M2MTLS_API const char *m2mtls_ssl_reject_reason(const SSL *ssl);
/* The class of that refusal: M2MTLS_REJECT_NONE exactly when
 * m2mtls_ssl_reject_reason() is NULL. */
M2MTLS_API m2mtls_reject_code m2mtls_ssl_reject_code(const SSL *ssl);
/* TS-0003 7.2.1: 1 when FROM (CSE-relative, SP-relative or absolute form)
 * names the identity bound to SSL, 0 otherwise (ORIGINATOR_NOT_AUTHENTICATED).
 * A relative FROM is completed with the receiving CSE's own CSE-ID and SP-ID
 * (the connection's local id; the policy's `sp-id` line when that local id
 * is SP-relative), never with the peer's: without an own SP-ID, a relative
 * FROM does not name an absolute identity. FROM is only read. */
M2MTLS_API int m2mtls_ssl_check_originator(const SSL *ssl, const char *from);

#ifdef __cplusplus
}
#endif
#endif
