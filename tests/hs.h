/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one handshake driver of the m2mtls tests. Every test that makes a
 * (D)TLS connection goes through it:
 * - hs_run: one connection over loopback, the server in a thread of its own:
 *   TCP (TLS) or connected UDP sockets (DTLS, BIO_new_dgram) on 127.0.0.1
 *   with a port chosen by the kernel, non-blocking I/O driven with poll()
 *   and a deadline so nothing can hang (or, for the server, one blocking
 *   handshake call); TLS 1.2, 1.3, DTLS 1.2; resumption, SNI, the
 *   application's own settings and callbacks on either SSL; keys of any
 *   provider (a token's keys through m2mtls.so); a proxy that lets a test
 *   change the client's records (proxy.h);
 * - the pieces it is made of, for tests that keep a listener, prepare an
 *   SSL themselves, stall, or talk to a server process (m2mtls serve);
 * - hs_server: a server thread handling connections one after another;
 * - hs_load: client threads connecting again and again, each to a server
 *   thread of its own, every connection checked (policy swaps, faults);
 * - hs_mem_*: SSLs on memory BIOs driven in one thread (fuzzing, hand-made
 *   flights toward a server process).
 */
#ifndef M2MTLS_TESTS_HS_H
#define M2MTLS_TESTS_HS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include <openssl/ssl.h>
#include <m2mtls/policy.h>

#include "proxy.h"

#define HS_TIMEOUT_MS 10000

/* What the ends send each other once the handshake is done (hs_opts.exchange). */
enum hs_exchange {
    HS_PING_PONG = 0, /* the client sends "ping", the server answers "pong" */
    HS_ECHO,          /* the client sends "ping" and reads "ping" back (a server that echoes) */
    HS_NO_DATA        /* nothing: the handshake is all */
};

/* What one side saw. Strings are copies (free with hs_side_clear). */
typedef struct hs_side {
    int   ok;            /* handshake and the exchange (hs_opts.exchange) done */
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
    long  verify_result; /* SSL_get_verify_result() */
    int   peer_cert;     /* the peer presented a certificate */
    char  peer_sigalg[64]; /* the peer's signature algorithm (short name), "" when none */
    char  errors[4096];  /* a failed connection: every error of the queue with its
                          * data ("error:...:reason: data | ..."), e.g. "C_Sign: CKR_..." */
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
    /* --- more of each side ---------------------------------------------- */
    SSL         *client_ssl;  /* client: this SSL (the caller's, freed unless keep) instead of a new one
                               * of client_ctx; peer, session, sni and client_setup still apply */
    const char  *sni;         /* client: SSL_set_tlsext_host_name(), after m2mtls_ssl_set_peer() */
    int          version;     /* both: only this version (TLS1_2_VERSION, ...); 0: the contexts' */
    const char  *groups;      /* both: SSL_set1_groups_list(); NULL: the contexts' */
    int          exchange;    /* enum hs_exchange */
    int          timeout_ms;  /* each side's deadline for handshake and exchange; 0: HS_TIMEOUT_MS */
    /* server: called on the SSL before the handshake (the application's settings) */
    void       (*server_setup)(SSL *ssl, void *arg);
    void        *server_setup_arg;
    /* server: called right after the handshake call returned, before
     * anything else touches the thread's error queue */
    void       (*server_done)(SSL *ssl, int handshake_ok, void *arg);
    void        *server_done_arg;
    /* server: a blocking socket (timeouts set), so that the whole handshake
     * runs in one SSL_do_handshake call, as in a blocking server */
    int          server_blocking;
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
/* hs_ctx_new + hs_ctx_install; NULL (the reason on stderr) on error. */
SSL_CTX *hs_ctx_for(int server, int dtls, int max_version, const char *dir, const char *policy);

/* Both ends of a connection kept by hs_run (keep) through what the server
 * started after the handshake (SSL_verify_client_post_handshake, a
 * renegotiation): the client only reads, and so answers; then it sends one
 * byte. 1 when the server reads it, 0 when the server failed. */
int  hs_pump(const hs_side *server, const hs_side *client);

/* ---- the pieces ------------------------------------------------------- */

/* A listening (TCP) or bound (UDP) non-blocking socket on 127.0.0.1:0; fd or -1. */
int  hs_listen(int dtls, int *port);
/* A thread serving a listener (hs_run's server, hs_server, the proxy). */
typedef struct hs_thread {
    int        lfd;    /* hs_listen's socket, set before the thread starts */
    pthread_t  thread;
    atomic_int stop;   /* set by hs_thread_stop: the thread's loop ends */
} hs_thread;
/* hs_listen, then FN(ARG) in a new thread. 1 ok; 0 with nothing left open. */
int  hs_thread_start(hs_thread *t, int dtls, int *port, void *(*fn)(void *), void *arg);
/* Sets the stop flag, joins the thread, closes the listener. */
void hs_thread_stop(hs_thread *t);
/* hs_thread_start for OBJ, malloc'd with an hs_thread as its first member:
 * OBJ, or NULL with OBJ freed. hs_thread_end stops it and frees OBJ. */
void *hs_thread_run(void *obj, int dtls, int *port, void *(*fn)(void *));
void  hs_thread_end(void *obj);
/* The next connection of LFD within TIMEOUT_MS: accepted (TCP), or (UDP)
 * LFD connected to the first datagram's sender and duplicated, so the
 * listener serves this client only. A non-blocking fd; -1 when none came
 * in time, -2 on a socket error. */
int  hs_accept(int lfd, int dtls, int timeout_ms);
/* A non-blocking socket connected to 127.0.0.1:PORT, bound to the address
 * SOURCE first when not NULL (e.g. "127.0.0.2"); -1 on error (errno set). */
int  hs_connect(int port, int dtls, const char *source);
/* Makes FD blocking, each send and receive timing out after TIMEOUT_MS. 1 ok. */
int  hs_set_blocking(int fd, int timeout_ms);
/* Attaches connected socket FD to SSL: SSL_set_fd (TCP) or a datagram BIO
 * that knows its peer (UDP). 1 ok. The SSL does not close FD. */
int  hs_set_fd(SSL *ssl, int fd, int dtls);

/* Server: the next connection of LFD (within ACCEPT_MS), handshake and
 * exchange. 1 when a connection was handled, 0 when none arrived in time,
 * -1 on a socket error. */
int  hs_server_conn(SSL_CTX *ctx, int lfd, int dtls, int accept_ms, int keep, hs_side *out);
/* Client: an SSL the caller prepared (m2mtls_ssl_set_peer, a session, or
 * reused after SSL_clear) connects to 127.0.0.1:PORT, handshakes and
 * exchanges; the SSL is freed unless KEEP. */
void hs_client_run(SSL *ssl, int port, int dtls, int keep, hs_side *out);
/* Client: connect to 127.0.0.1:PORT, handshake and exchange. */
void hs_client_conn(SSL_CTX *ctx, int port, int dtls, const char *peer, SSL_SESSION *sess,
                    int keep, hs_side *out);
/* Client: the client side of O toward 127.0.0.1:PORT (any server: an
 * hs_server, a listener of the test, a server process). */
void hs_client(const hs_opts *o, int port, hs_side *out);

/* ---- a server thread ---------------------------------------------------- */

typedef struct hs_server hs_server;
/* Called in the server thread after each connection (RC 1, S its result,
 * cleared afterwards) or on a socket error (RC -1; the thread ends). */
typedef void (*hs_served_fn)(int rc, const hs_side *s, void *arg);
/* Serves the server side of O on 127.0.0.1 (port in *PORT), one connection
 * after the other, until hs_server_stop. NULL on error. */
hs_server *hs_server_start(const hs_opts *o, hs_served_fn served, void *arg, int *port);
void       hs_server_stop(hs_server *srv);

/* ---- handshakes under load -------------------------------------------------- */

#define HS_LOAD_MAX 8

/* CLIENTS client threads, each against an hs_server of its own, all with O's
 * contexts and association (O.peer): every client connects ROUNDS times,
 * and on while MORE is set, resuming the session of its previous connection
 * every other time. Each end must complete the exchange with the labels
 * below; anything else is a failure (counted, the first one described). */
typedef struct hs_load hs_load;
struct hs_load_client {
    hs_load  *load;
    int       port;
    pthread_t thread;
};
struct hs_load {
    hs_opts     o;               /* server_ctx, client_ctx, peer, dtls */
    const char *server_peer_id;  /* the label the server must bind */
    const char *server_local_id; /* the server's local id; NULL: not checked */
    const char *client_local_id; /* the client's local id; NULL: not checked */
    int         clients, rounds; /* CLIENTS at most HS_LOAD_MAX */
    int         max_failures;    /* clients stop after more failures than this */
    atomic_int  more;            /* set by hs_load_start; clear it to let clients end */
    atomic_int  failures, server_conns, client_conns, resumed;
    char        first_failure[1024];
    /* the run's own */
    pthread_mutex_t       lock;
    hs_server            *server[HS_LOAD_MAX];
    struct hs_load_client client[HS_LOAD_MAX];
    int                   started;
};
/* Starts servers and clients. 1 ok; 0: nothing runs. */
int  hs_load_start(hs_load *l);
/* Waits for the clients, then stops the servers. */
void hs_load_wait(hs_load *l);
/* Counts a failure of WHO (S may be NULL), describing the first one. Any thread. */
void hs_load_failure(hs_load *l, const char *who, const hs_side *s);

/* ---- in memory, one thread ------------------------------------------------ */

/* An SSL of CTX on two memory BIOs, in the accept (SERVER) or connect state. */
SSL *hs_mem_ssl(SSL_CTX *ctx, int server);
/* What FROM wrote goes into TO's read BIO, record by record, each through
 * TAMPER first when set (a record cut short at the end passes as it is cut,
 * less than a header as it is). */
void hs_mem_move(SSL *from, SSL *to, proxy_tamper_fn tamper, void *arg);
/* Both ends until both finished, one failed, or 32 rounds; then one byte
 * each way. The client's records pass through TAMPER. Clears the queue. */
void hs_mem_run(SSL *client, SSL *server, proxy_tamper_fn tamper, void *arg);
/* Client CLIENT (hs_mem_ssl) handshakes with the peer on the blocking socket
 * FD. Each flight it writes (N = 1, 2, ...) goes to FLIGHT first, which may
 * change it and returns how many of its bytes to send; *STOP = 1 ends the
 * run after sending them. 1 when the handshake completed. */
typedef size_t (*hs_flight_fn)(int n, unsigned char *buf, size_t len, int *stop, void *arg);
int  hs_mem_flights(SSL *client, int fd, hs_flight_fn flight, void *arg);

/* ---- for CMocka tests (hs_check.c): an error fails the running test ---- */

/* The (D)TLS versions a loopback test runs each case in. */
typedef struct hs_mode {
    const char *name;
    int         dtls;
    int         max_version;  /* 0: the highest */
    long        options;      /* extra SSL_OP_ on both contexts (hs_test_mode_ctx) */
} hs_mode;
extern const hs_mode HS_TLS12, HS_TLS13, HS_DTLS12;
/* TLS 1.2 resuming by session id (SSL_OP_NO_TICKET) */
extern const hs_mode HS_TLS12_SID;
#define HS_N_ALL 3
/* TLS 1.2, TLS 1.3, DTLS 1.2 */
extern const hs_mode *const HS_ALL[HS_N_ALL];
/* hs_test_ctx for M (its version and options). */
SSL_CTX *hs_test_mode_ctx(int server, const hs_mode *m, const char *dir, const char *policy);

/* The policy file DIR/NAME, loaded; the test fails with m2mtls_last_error(). */
m2mtls_policy *hs_policy_load(const char *dir, const char *name);
/* hs_ctx_new, and hs_ctx_install of DIR/POLICY unless POLICY is NULL. */
SSL_CTX *hs_test_ctx(int server, int dtls, int max_version, const char *dir, const char *policy);
/* CTX presents the certificate DIR/NAME.pem with the key DIR/NAME.key (a
 * program without m2mtls). */
void hs_test_ctx_use(SSL_CTX *ctx, const char *dir, const char *name);
/* The same for one SSL (SSL_use_certificate_file, SSL_use_PrivateKey_file). */
void hs_test_ssl_use(SSL *ssl, const char *dir, const char *name);
/* hs_run; the test fails when the run itself did not work ("WHAT: ..."). */
void hs_test_run(const hs_opts *o, const char *what, hs_side *s, hs_side *c);
/* A group teardown: removes and frees the directory (a pki_tmpdir) the group
 * setup left in *STATE. */
int  hs_test_dir_teardown(void **state);
/* hs_side_clear of both sides of a connection. */
void hs_side_pair_clear(hs_side *s, hs_side *c);
/* The test fails unless both sides completed (WHAT, may be NULL, names the run). */
void hs_expect_ok(const char *what, const hs_side *s, const hs_side *c);

#endif
