/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Loopback handshakes for the m2mtls tests: TCP (TLS) or connected UDP
 * sockets (DTLS, BIO_new_dgram) on 127.0.0.1 with a port chosen by the
 * kernel, non-blocking I/O driven with poll() and a deadline so nothing can
 * hang. The server side runs in its own thread.
 */
#ifndef M2MTLS_TESTS_HS_H
#define M2MTLS_TESTS_HS_H

#include <openssl/ssl.h>

#define HS_TIMEOUT_MS 10000

/* What one side saw. Strings are copies (free with hs_side_clear). */
typedef struct hs_side {
    int   ok;            /* handshake and one application message each way */
    int   handshake_ok;  /* SSL_do_handshake returned 1 */
    int   set_peer_ok;   /* client: m2mtls_ssl_set_peer() result (1 when not called) */
    int   reused;        /* SSL_session_reused() */
    int   version;       /* SSL_version() */
    char  cipher[64];    /* SSL_get_cipher_name() */
    char *peer_id;       /* m2mtls_ssl_peer_id() */
    char *local_id;      /* m2mtls_ssl_local_id() */
    char *cert_name;     /* m2mtls_ssl_peer_cert_name() */
    char *anchor;        /* m2mtls_ssl_anchor() */
    char *reason;        /* m2mtls_ssl_reject_reason() */
    int   reject_code;   /* m2mtls_ssl_reject_code() */
    char *sni;           /* server: SSL_get_servername() */
    char  ssl_error[256];/* first OpenSSL error seen, for diagnostics */
    SSL_SESSION *session;/* client: SSL_get1_session() after the exchange */
    SSL  *ssl;           /* kept only when hs_opts.keep */
    int   fd;            /* kept only when hs_opts.keep; else -1 */
} hs_side;

typedef struct hs_opts {
    SSL_CTX     *server_ctx;
    SSL_CTX     *client_ctx;
    int          dtls;     /* 0: TCP, 1: UDP */
    const char  *peer;     /* client: m2mtls_ssl_set_peer(ssl, peer) when non-NULL */
    SSL_SESSION *session;  /* client: SSL_set_session() when non-NULL */
    int          keep;     /* keep both SSL objects open (not shut down) in the results */
    int          session_first; /* client: SSL_set_session() before m2mtls_ssl_set_peer() */
    /* client: called on the SSL last, before the handshake (an application's
     * own settings: SNI, verify mode, info callback, ...). */
    void       (*client_setup)(SSL *ssl, void *arg);
    void        *client_setup_arg;
    /* when set, the client reaches the server through a loopback proxy that
     * passes each client record to this function first (proxy.h) */
    void       (*tamper)(unsigned char *rec, size_t len, int dtls, void *arg);
    void        *tamper_arg;
} hs_opts;

/* One connection: server in a thread, client in the caller. 1 when the run
 * itself worked (sockets, thread); read server->ok / client->ok for the outcome. */
int  hs_run(const hs_opts *o, hs_side *server, hs_side *client);
void hs_side_clear(hs_side *s);

/* Contexts: a (D)TLS server or client context with the TS-0003 profile and,
 * MAX_VERSION non-zero, that highest version; NULL on error. */
SSL_CTX *hs_ctx_new(int server, int dtls, int max_version);
/* m2mtls_ctx_install + m2mtls_ctx_use_credential with the policy file
 * DIR/POLICY. 1 ok; 0 with the reason on stderr. */
int      hs_ctx_install(SSL_CTX *ctx, const char *dir, const char *policy);

/* Lower level, for tests that keep a listener. */
int  hs_listen(int dtls, int *port);  /* bound to 127.0.0.1:0; fd or -1 */
/* Server: accept (TCP) or wait for the first datagram (UDP, the socket is
 * then connected to the client and used for this connection only), then
 * handshake and exchange. Returns 1 when a connection was handled, 0 when
 * none arrived within ACCEPT_MS, -1 on a socket error. */
int  hs_server_conn(SSL_CTX *ctx, int lfd, int dtls, int accept_ms, int keep, hs_side *out);
/* Client: an SSL the caller prepared (m2mtls_ssl_set_peer, a session, or
 * reused after SSL_clear) connects to 127.0.0.1:PORT, handshakes and
 * exchanges; the SSL is freed unless KEEP. */
void hs_client_run(SSL *ssl, int port, int dtls, int keep, hs_side *out);
/* Client: connect to 127.0.0.1:PORT, handshake and exchange. */
void hs_client_conn(SSL_CTX *ctx, int port, int dtls, const char *peer, SSL_SESSION *sess,
                    int keep, hs_side *out);

#endif
