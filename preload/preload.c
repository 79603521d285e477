/* SPDX-License-Identifier: Apache-2.0 */
/* libm2mtls-preload.so: the m2mtls policy for unmodified servers.
 *
 *   LD_PRELOAD=libm2mtls-preload.so M2MTLS_POLICY=/etc/m2mtls/in-cse.policy server ...
 *
 * Every SSL_CTX the program creates gets m2mtls_ctx_install() with the policy;
 * the program's own verify callback still runs (inside m2mtls's verification),
 * its client hello, session ticket and info callbacks (of the SSL_CTX and of
 * each SSL) are chained, and every server-side connection is logged once:
 * the bound peer identity, or why it was refused (M2MTLS_LOG=stderr, the
 * default, or syslog), whatever callbacks the program sets. A handshake
 * that completed without a label leaves a connection that carries no
 * application data. Security decisions fail closed: without a loadable
 * policy, no SSL_CTX is created at all.
 *
 * The other files: reload.c (the one policy of every context, M2MTLS_RELOAD),
 * address.c (the peer's address in the log lines), api.c (libm2mtls's API,
 * exported so that a program that links libm2mtls sees the preload's label). */
#include <dlfcn.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <m2mtls/policy.h>
#include "preload.h"
#include "internal.h"

#define EXPORT __attribute__((visibility("default")))

typedef void (*info_cb_fn)(const SSL *, int, int);

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int have_policy; /* M2MTLS_POLICY loaded (reload.c holds it) */
static int use_syslog;
static int ctx_index = -1, ssl_index = -1;
/* Calls made by m2mtls itself (or by libssl inside an interposed call) go
 * straight to OpenSSL. */
static _Thread_local int inside;

void pl_enter(void)
{
    inside++;
}

void pl_leave(void)
{
    inside--;
}

/* OpenSSL's own functions, found behind this library (RTLD_NEXT). */
static struct {
    SSL_CTX *(*ctx_new)(const SSL_METHOD *);
    SSL_CTX *(*ctx_new_ex)(OSSL_LIB_CTX *, const char *, const SSL_METHOD *);
    void (*ctx_free)(SSL_CTX *);
    void (*ctx_set_verify)(SSL_CTX *, int, SSL_verify_cb);
    void (*set_verify)(SSL *, int, SSL_verify_cb);
    void (*ctx_set_cert_verify_callback)(SSL_CTX *, int (*)(X509_STORE_CTX *, void *), void *);
    void (*ctx_set_client_hello_cb)(SSL_CTX *, SSL_client_hello_cb_fn, void *);
    void (*ctx_set_info_callback)(SSL_CTX *, info_cb_fn);
    void (*set_info_callback)(SSL *, info_cb_fn);
    int (*ctx_set_session_ticket_cb)(SSL_CTX *, SSL_CTX_generate_session_ticket_fn,
                                     SSL_CTX_decrypt_session_ticket_fn, void *);
    int (*write_early_data)(SSL *, const void *, size_t, size_t *);
} ossl;
static pthread_once_t resolved = PTHREAD_ONCE_INIT;

static void *real(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (f == NULL) {
        fprintf(stderr, "m2mtls-preload: %s not found in the program's OpenSSL\n", name);
        abort(); /* nothing sensible can run without it */
    }
    return f;
}

static void resolve(void)
{
    *(void **)&ossl.ctx_new = real("SSL_CTX_new");
    *(void **)&ossl.ctx_new_ex = real("SSL_CTX_new_ex");
    *(void **)&ossl.ctx_free = real("SSL_CTX_free");
    *(void **)&ossl.ctx_set_verify = real("SSL_CTX_set_verify");
    *(void **)&ossl.set_verify = real("SSL_set_verify");
    *(void **)&ossl.ctx_set_cert_verify_callback = real("SSL_CTX_set_cert_verify_callback");
    *(void **)&ossl.ctx_set_client_hello_cb = real("SSL_CTX_set_client_hello_cb");
    *(void **)&ossl.ctx_set_info_callback = real("SSL_CTX_set_info_callback");
    *(void **)&ossl.set_info_callback = real("SSL_set_info_callback");
    *(void **)&ossl.ctx_set_session_ticket_cb = real("SSL_CTX_set_session_ticket_cb");
    *(void **)&ossl.write_early_data = real("SSL_write_early_data");
}

#define OSSL() pthread_once(&resolved, resolve)

void plog(int prio, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (use_syslog)
        syslog(prio, "%s", line);
    else
        fprintf(stderr, "m2mtls: %s\n", line);
}

static void conn_log_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp);

static void load_policy(void)
{
    const char *log = getenv("M2MTLS_LOG");
    use_syslog = log != NULL && strcmp(log, "syslog") == 0;
    if (use_syslog)
        openlog("m2mtls", LOG_PID, LOG_AUTH);
    else if (log != NULL && *log && strcmp(log, "stderr") != 0)
        fprintf(stderr, "m2mtls: M2MTLS_LOG=%s is neither stderr nor syslog: using stderr\n", log);
    ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    ssl_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_log_free);
    const char *path = getenv("M2MTLS_POLICY");
    if (path == NULL || *path == '\0') {
        plog(LOG_ERR, "M2MTLS_POLICY is not set: no TLS context will be created");
        return;
    }
    have_policy = pl_policy_start(path);
    if (have_policy)
        m2_policy_source = pl_policy_current; /* every context, every handshake */
}

/* ---- logging, once per connection ------------------------------------------ */

static const char *client_of(const SSL *ssl, char *buf, size_t len)
{
    return pl_peer_address(ssl, buf, len); /* address.c */
}

/* What the preload knows of one connection. */
typedef struct conn_log {
    int        started;        /* a handshake began */
    int        verdict;        /* 0 none logged yet, 1 accepted, 2 refused */
    char       client[80];     /* taken while the socket is open */
    char       alert[64];      /* a fatal alert the peer sent */
    int        app_set;        /* the program set this SSL's own info callback */
    info_cb_fn app;            /* ... to this (may be NULL) */
} conn_log;

static conn_log *conn_log_of(const SSL *ssl, int create)
{
    conn_log *l = SSL_get_ex_data(ssl, ssl_index);
    if (l == NULL && create && (l = calloc(1, sizeof *l)) != NULL && !SSL_set_ex_data((SSL *)ssl, ssl_index, l)) {
        free(l);
        l = NULL;
    }
    if (l != NULL && l->client[0] == '\0')
        snprintf(l->client, sizeof l->client, "-");
    return l;
}

static void log_accepted(const SSL *ssl, conn_log *l, const char *peer)
{
    const char *local = m2mtls_ssl_local_id(ssl), *name = m2mtls_ssl_peer_cert_name(ssl);
    const char *anchor = m2mtls_ssl_anchor(ssl);
    plog(LOG_INFO, "accepted client=%s peer=%s local=%s name=%s anchor=%s protocol=%s resumed=%s", l->client, peer,
         local ? local : "-", name ? name : "-", anchor ? anchor : "-", SSL_get_version(ssl),
         SSL_session_reused(ssl) ? "yes" : "no");
    l->verdict = 1;
}

/* A reason quotes what the peer sent (certificate names, subjects): a '"'
 * in it would end the log line's quoted reason early and let the peer write
 * fields of its own ("... peer=//sp/CSE/Cadmin ..."). */
static void quote_safe(const char *in, char *out, size_t len)
{
    size_t n = 0;
    for (; *in != '\0' && n + 5 < len; in++) {
        if (*in == '"')
            n += (size_t)snprintf(out + n, len - n, "\\x22");
        else
            out[n++] = *in;
    }
    out[n] = '\0';
}

static void log_refused(const SSL *ssl, conn_log *l, const char *why, const char *alert)
{
    const char *ours = ssl != NULL ? m2mtls_ssl_reject_reason(ssl) : NULL;
    char reason[1600];
    quote_safe(ours ? ours : why, reason, sizeof reason);
    plog(LOG_WARNING, "refused client=%s reason=\"%s\"%s%s", l->client, reason, alert ? " alert=" : "",
         alert ? alert : "");
    l->verdict = 2;
}

/* A handshake completed: the label it proved, or no application data at
 * all on this connection (the program may not look at the label). */
static void handshake_done(const SSL *ssl, conn_log *l)
{
    const char *peer = m2mtls_ssl_peer_id(ssl);
    if (peer == NULL) {
        SSL_set_shutdown((SSL *)ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        if (SSL_is_server(ssl) && l->verdict != 2)
            log_refused(ssl, l, "the handshake completed without an identity: the connection is closed", NULL);
        return;
    }
    if (SSL_is_server(ssl) && l->verdict == 0)
        log_accepted(ssl, l, peer);
}

/* Server connections: one line each (and one more when a connection that
 * was accepted is later aborted: a second certificate of another identity). */
static void watch(const SSL *ssl, conn_log *l, int where, int ret)
{
    if (where & SSL_CB_HANDSHAKE_START) {
        if (!l->started)
            client_of(ssl, l->client, sizeof l->client);
        l->started = 1;
    }
    if (where & SSL_CB_HANDSHAKE_DONE) {
        /* (TLS 1.3 early data: OpenSSL says "done" once before the end) */
        if (m2_handshake_completed(ssl))
            handshake_done(ssl, l);
        return;
    }
    if (!SSL_is_server(ssl) || !(where & SSL_CB_ALERT) || (ret >> 8) != SSL3_AL_FATAL || l->verdict == 2)
        return;
    /* After it was accepted, a connection is "refused" only when the policy
     * took its label back (a second certificate of another identity). */
    if (l->verdict == 1 && m2mtls_ssl_peer_id(ssl) != NULL)
        return;
    if (where & SSL_CB_WRITE)
        log_refused(ssl, l, "no peer identity was bound", SSL_alert_desc_string_long(ret));
    else
        snprintf(l->alert, sizeof l->alert, "%s", SSL_alert_desc_string_long(ret));
}

/* SSL_free: a connection that started a handshake and was never logged
 * (the peer went away, or sent an alert) gets its line now. */
static void conn_log_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    conn_log *l = ptr;
    if (l != NULL && l->started && l->verdict == 0 && parent != NULL && SSL_is_server(parent)) {
        if (l->alert[0] != '\0')
            log_refused(NULL, l, "the peer ended the handshake", l->alert);
        else
            log_refused(parent, l, "the connection ended during the handshake", NULL);
    }
    free(l);
}

static _Thread_local int in_info_cb; /* a program callback that calls back into ours */

static void info_cb(const SSL *ssl, int where, int ret)
{
    conn_log *l = conn_log_of(ssl, 1);
    info_cb_fn app = l != NULL && l->app_set ? l->app : SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_index);
    if (app != NULL && app != info_cb && !in_info_cb) {
        in_info_cb++;
        app(ssl, where, ret);
        in_info_cb--;
    }
    if (l != NULL)
        watch(ssl, l, where, ret);
}

/* ---- the interposed OpenSSL functions ---------------------------------------------- */

/* The policy on a context the program created; 0 when there is none to
 * put on it (logged). */
static int install_policy(SSL_CTX *ctx)
{
    pthread_once(&once, load_policy);
    m2mtls_policy *policy = have_policy ? pl_policy_current() : NULL;
    if (policy == NULL)
        return 0;
    inside++;
    /* TS-0003's DTLS suite at the program's own security level (OpenSSL
     * >= 3.2 allows CCM8 only at level 0); the program's cipher list stays. */
    int ok = m2mtls_ctx_install(ctx, policy) && m2_ctx_allow_ts0003_dtls_suite(ctx);
    if (ok)
        ossl.ctx_set_info_callback(ctx, info_cb);
    inside--;
    m2mtls_policy_free(policy); /* the context keeps its own reference */
    if (!ok)
        plog(LOG_ERR, "cannot install the policy on a TLS context: %s", m2mtls_last_error());
    return ok;
}

/* A context the program just created: the policy goes on it, or it goes
 * (fail closed: no policy, no TLS). */
static SSL_CTX *prepare(SSL_CTX *ctx)
{
    if (ctx == NULL || inside)
        return ctx;
    if (!install_policy(ctx)) {
        ossl.ctx_free(ctx);
        return NULL;
    }
    return ctx;
}

/* ---- contexts the interposed functions do not see ----------------------------------- */

/* A program may reach libssl's SSL_CTX_new_ex without the dynamic linker's
 * lookup that LD_PRELOAD governs: dlsym() on its own handle of libssl.so.3
 * (runtimes that load OpenSSL at run time), or a pointer libssl handed out.
 * OpenSSL calls the "new" function of every SSL_CTX ex_data index for every
 * context it creates, however it was reached: the preload registers one when
 * it is loaded and puts the policy on such a context there. The context is
 * still being built then (its certificate, store, cipher lists and methods
 * exist; OpenSSL only sets defaults after this point, which the policy's
 * hooks re-assert at every handshake). When no policy can go on it, it
 * refuses every handshake: it cannot be taken away from the program. */
static int refuse_hello(SSL *ssl, int *alert, void *arg)
{
    (void)ssl;
    (void)arg;
    *alert = SSL_AD_ACCESS_DENIED;
    return SSL_CLIENT_HELLO_ERROR;
}

static int refuse_client_hello(SSL *ssl, unsigned int type, unsigned int context, const unsigned char **out,
                               size_t *outlen, X509 *x, size_t chainidx, int *al, void *arg)
{
    (void)ssl, (void)type, (void)context, (void)out, (void)outlen, (void)x, (void)chainidx, (void)arg;
    *al = SSL_AD_ACCESS_DENIED;
    return -1;
}

static int refuse_chain(X509_STORE_CTX *xs, void *arg)
{
    (void)arg;
    X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
}

static void refuse_everything(SSL_CTX *ctx)
{
    inside++;
    ossl.ctx_set_client_hello_cb(ctx, refuse_hello, NULL);            /* servers */
    (void)SSL_CTX_add_custom_ext(ctx, 0xff4d, SSL_EXT_CLIENT_HELLO,   /* clients: m2mtls's hook type */
                                 refuse_client_hello, NULL, NULL, NULL, NULL);
    ossl.ctx_set_cert_verify_callback(ctx, refuse_chain, NULL);
    inside--;
}

static void ctx_created(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)ptr, (void)ad, (void)idx, (void)argl, (void)argp;
    SSL_CTX *ctx = parent;
    if (ctx == NULL || inside)
        return; /* the interposed SSL_CTX_new / SSL_CTX_new_ex: prepare() follows */
    OSSL();
    static atomic_flag told = ATOMIC_FLAG_INIT;
    if (!atomic_flag_test_and_set(&told))
        plog(LOG_NOTICE, "the program creates TLS contexts without the interposed SSL_CTX_new "
                         "(dlopen/dlsym of libssl): the policy is put on them as OpenSSL creates them");
    if (!install_policy(ctx)) {
        plog(LOG_ERR, "the policy cannot be applied to a TLS context the program created: every handshake "
                      "on it is refused");
        refuse_everything(ctx);
    }
}

__attribute__((constructor)) static void watch_contexts(void)
{
    (void)CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL_CTX, 0, NULL, ctx_created, NULL, NULL);
}

/* Is this a context m2mtls governs, and is the call the program's own?
 * (Known by m2mtls's own state on the context: not by a callback the
 * program could have replaced through a pointer of its own.) */
static int governed(const SSL_CTX *ctx)
{
    return !inside && ctx != NULL && have_policy && m2_ctx_state_get(ctx) != NULL;
}

EXPORT SSL_CTX *SSL_CTX_new(const SSL_METHOD *method)
{
    OSSL();
    inside++;
    SSL_CTX *ctx = ossl.ctx_new(method);
    inside--;
    return prepare(ctx);
}

EXPORT SSL_CTX *SSL_CTX_new_ex(OSSL_LIB_CTX *libctx, const char *propq, const SSL_METHOD *method)
{
    OSSL();
    inside++;
    SSL_CTX *ctx = ossl.ctx_new_ex(libctx, propq, method);
    inside--;
    return prepare(ctx);
}

/* The program's verify callback is kept (it runs inside m2mtls's checks);
 * the requirement of a peer certificate is not given up. */
/* The peer's certificate, in the handshake itself (not only after it, not
 * only at the first of several handshakes). */
static int required(int mode)
{
    return (mode | SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT)
           & ~(SSL_VERIFY_POST_HANDSHAKE | SSL_VERIFY_CLIENT_ONCE);
}

EXPORT void SSL_CTX_set_verify(SSL_CTX *ctx, int mode, SSL_verify_cb cb)
{
    OSSL();
    if (governed(ctx))
        mode = required(mode);
    ossl.ctx_set_verify(ctx, mode, cb);
}

EXPORT void SSL_set_verify(SSL *ssl, int mode, SSL_verify_cb cb)
{
    OSSL();
    if (ssl != NULL && governed(SSL_get_SSL_CTX(ssl)))
        mode = required(mode);
    ossl.set_verify(ssl, mode, cb);
}

/* Replacing the chain verification would switch the policy off: refused. */
EXPORT void SSL_CTX_set_cert_verify_callback(SSL_CTX *ctx, int (*cb)(X509_STORE_CTX *, void *), void *arg)
{
    OSSL();
    if (governed(ctx)) {
        plog(LOG_WARNING, "the program's certificate verification callback is not installed: m2mtls verifies");
        return;
    }
    ossl.ctx_set_cert_verify_callback(ctx, cb, arg);
}

EXPORT void SSL_CTX_set_client_hello_cb(SSL_CTX *ctx, SSL_client_hello_cb_fn cb, void *arg)
{
    OSSL();
    if (governed(ctx)) {
        m2mtls_ctx_set_client_hello_cb(ctx, cb, arg); /* runs before m2mtls's */
        return;
    }
    ossl.ctx_set_client_hello_cb(ctx, cb, arg);
}

EXPORT void SSL_CTX_set_info_callback(SSL_CTX *ctx, info_cb_fn cb)
{
    OSSL();
    if (governed(ctx)) {
        SSL_CTX_set_ex_data(ctx, ctx_index, (void *)cb); /* called from ours */
        return;
    }
    ossl.ctx_set_info_callback(ctx, cb);
}

/* The program's callback of one SSL: kept, and called from ours (which
 * stays on the SSL_CTX and so sees every connection). */
EXPORT void SSL_set_info_callback(SSL *ssl, info_cb_fn cb)
{
    OSSL();
    conn_log *l = ssl != NULL && governed(SSL_get_SSL_CTX(ssl)) ? conn_log_of(ssl, 1) : NULL;
    if (l == NULL) {
        ossl.set_info_callback(ssl, cb);
        return;
    }
    /* NULL (or ours) gives the SSL back the SSL_CTX's callback, as in OpenSSL. */
    l->app = cb == info_cb ? NULL : cb;
    l->app_set = l->app != NULL;
    ossl.set_info_callback(ssl, NULL);
}

/* The program's ticket callbacks run first and keep their own ticket data;
 * m2mtls's (the label travels in the ticket) stay installed. */
EXPORT int SSL_CTX_set_session_ticket_cb(SSL_CTX *ctx, SSL_CTX_generate_session_ticket_fn gen,
                                         SSL_CTX_decrypt_session_ticket_fn dec, void *arg)
{
    OSSL();
    if (governed(ctx))
        return m2mtls_ctx_set_session_ticket_cb(ctx, gen, dec, arg);
    return ossl.ctx_set_session_ticket_cb(ctx, gen, dec, arg);
}

/* TLS 1.3 "0.5-RTT" data: after SSL_read_early_data, a server may write
 * with SSL_write_early_data once it sent its Finished, before the client's
 * certificate and Finished arrived (OpenSSL: "writing to an unauthenticated
 * client"). Nothing reaches a peer the policy has not verified: on a server
 * whose connection has no label yet, it fails (the program writes once the
 * handshake completed). */
EXPORT int SSL_write_early_data(SSL *ssl, const void *buf, size_t num, size_t *written)
{
    OSSL();
    if (ssl != NULL && SSL_is_server(ssl) && governed(SSL_get_SSL_CTX(ssl)) && m2mtls_ssl_peer_id(ssl) == NULL) {
        ERR_raise_data(ERR_LIB_SSL, ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED,
                       "m2mtls: no data to a client before the policy verified it (0.5-RTT)");
        return 0;
    }
    return ossl.write_early_data(ssl, buf, num, written);
}
