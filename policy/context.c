/* SPDX-License-Identifier: Apache-2.0 */
/* m2mtls_ctx_install: the verify hook, the per-handshake policy snapshot and
 * the atomic policy swap on a live SSL_CTX. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

struct m2_ctx_state {
    pthread_mutex_t lock;     /* guards `policy` (the pointer, not the policy) */
    m2mtls_policy  *policy;
    SSL_client_hello_cb_fn app_hello;  /* the application's, run before ours */
    void           *app_hello_arg;
};

static int ctx_index = -1;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;

static void ctx_state_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    m2_ctx_state *st = ptr;
    if (st == NULL)
        return;
    m2mtls_policy_free(st->policy);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

static void ctx_index_init(void)
{
    ctx_index = CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL_CTX, 0, NULL, NULL, NULL, ctx_state_free);
}

m2_ctx_state *m2_ctx_state_get(const SSL_CTX *ctx)
{
    pthread_once(&ctx_once, ctx_index_init);
    if (ctx == NULL || ctx_index < 0)
        return NULL;
    return SSL_CTX_get_ex_data(ctx, ctx_index);
}

m2mtls_policy *(*m2_policy_source)(void);

m2mtls_policy *m2_ctx_state_policy(m2_ctx_state *st)
{
    if (m2_policy_source != NULL) {
        m2mtls_policy *shared = m2_policy_source();
        if (shared != NULL)
            return shared;
    }
    pthread_mutex_lock(&st->lock);
    m2mtls_policy *p = st->policy;
    m2mtls_policy_up_ref(p);
    pthread_mutex_unlock(&st->lock);
    return p;
}

/* The policy one handshake uses: taken once, so a swap in the middle of a
 * handshake cannot mix two policies. */
static m2mtls_policy *conn_policy(m2_conn *c, m2_ctx_state *st)
{
    if (c->policy == NULL)
        c->policy = m2_ctx_state_policy(st);
    return c->policy;
}

/* Replaces OpenSSL's chain verification for the peer's certificate. */
static int verify_hook(X509_STORE_CTX *xs, void *arg)
{
    m2_ctx_state *st = arg;
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    m2_conn *c = ssl != NULL ? m2_conn_get(ssl, 1) : NULL;
    if (c == NULL) {
        X509_STORE_CTX_set_error(xs, X509_V_ERR_OUT_OF_MEM);
        return 0;
    }
    const m2mtls_policy *p = conn_policy(c, st);
    m2_eval_opts o = {
        .role = SSL_is_server(ssl) ? M2MTLS_RESPONDER : M2MTLS_INITIATOR,
        .expected = c->expected,
        .ssl = ssl,
        .param = X509_STORE_CTX_get0_param(xs),
    };
    X509 *leaf = X509_STORE_CTX_get0_cert(xs);
    m2mtls_verdict v;
    int err = X509_V_ERR_APPLICATION_VERIFICATION;
    m2_conn_clear_label(c);
    if (!m2_evaluate(p, leaf, X509_STORE_CTX_get0_untrusted(xs), &o, &v, &err)) {
        m2_conn_set_reason(c, M2MTLS_REJECT_INTERNAL, "out of memory");
        X509_STORE_CTX_set_error(xs, X509_V_ERR_OUT_OF_MEM);
        return 0;
    }
    if (!v.accepted) {
        m2_conn_set_reason(c, m2_reason_code(v.reason), v.reason);
        m2mtls_verdict_clear(&v);
        X509_STORE_CTX_set_current_cert(xs, leaf);
        X509_STORE_CTX_set_error(xs, err);
        return 0;
    }
    /* libssl keeps the verified chain (SSL_get0_verified_chain) from here. */
    X509_STORE_CTX_set0_verified_chain(xs, v.chain);
    v.chain = NULL;
    X509_STORE_CTX_set_error(xs, X509_V_OK);
    uint32_t a = m2_policy_find_anchor(p, v.anchor);
    m2_conn_bind(c, &v, p->anchors[a].sha256);
    m2_session_store_label(ssl, c);
    return 1;
}

/* Server: runs before session resumption is decided. It takes the policy
 * snapshot, makes the session id context the policy's digest (a changed
 * policy cannot resume sessions made under another), and requires a client
 * certificate even if the application changed the verify mode later. */
static int hello_hook(SSL *ssl, int *alert, void *arg)
{
    m2_ctx_state *st = arg;
    if (st->app_hello != NULL) {
        int r = st->app_hello(ssl, alert, st->app_hello_arg);
        if (r != SSL_CLIENT_HELLO_SUCCESS)
            return r;
    }
    m2_conn *c = m2_conn_get(ssl, 1);
    if (c == NULL) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    /* A new handshake (an SSL object may be reused after SSL_clear): the
     * current policy, and nothing left from an earlier connection. */
    m2mtls_policy *current = m2_ctx_state_policy(arg);
    m2mtls_policy_free(c->policy);
    c->policy = current;
    m2_conn_clear_label(c);
    m2_conn_set_reason(c, M2MTLS_REJECT_NONE, NULL);
    c->resume_checked = 0;
    const m2mtls_policy *p = c->policy;
    if (!SSL_set_session_id_context(ssl, p->digest, sizeof p->digest)) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    SSL_set_verify(ssl, SSL_get_verify_mode(ssl) | SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                   SSL_get_verify_callback(ssl));
    return SSL_CLIENT_HELLO_SUCCESS;
}

int m2mtls_ctx_install(SSL_CTX *ctx, m2mtls_policy *p)
{
    if (ctx == NULL || p == NULL) {
        m2_set_error("m2mtls_ctx_install: %s is NULL", ctx == NULL ? "the SSL_CTX" : "the policy");
        return 0;
    }
    if (m2_ctx_state_get(ctx) != NULL)
        return m2mtls_ctx_set_policy(ctx, p);
    if (ctx_index < 0 || m2_conn_index() < 0) {
        m2_set_error("m2mtls_ctx_install: cannot allocate OpenSSL ex_data indexes");
        return 0;
    }
    m2_ctx_state *st = calloc(1, sizeof *st);
    if (st == NULL || pthread_mutex_init(&st->lock, NULL) != 0) {
        free(st);
        m2_set_error("m2mtls_ctx_install: out of memory");
        return 0;
    }
    m2mtls_policy_up_ref(p);
    st->policy = p;
    if (!SSL_CTX_set_ex_data(ctx, ctx_index, st)) {
        ctx_state_free(NULL, st, NULL, 0, 0, NULL);
        m2_set_error("m2mtls_ctx_install: out of memory");
        return 0;
    }
    /* Keep the application's verify callback: it still runs, inside ours. */
    SSL_CTX_set_verify(ctx, SSL_CTX_get_verify_mode(ctx) | SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       SSL_CTX_get_verify_callback(ctx));
    SSL_CTX_set_cert_verify_callback(ctx, verify_hook, st);
    SSL_CTX_set_client_hello_cb(ctx, hello_hook, st);
    /* A renegotiation could present another certificate after the label is set. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    if (!SSL_CTX_set_session_id_context(ctx, p->digest, sizeof p->digest) || !m2_install_ticket_cb(ctx, st)) {
        m2_set_error("m2mtls_ctx_install: cannot configure session resumption");
        return 0;
    }
    return 1;
}

int m2mtls_ctx_set_policy(SSL_CTX *ctx, m2mtls_policy *p)
{
    m2_ctx_state *st = m2_ctx_state_get(ctx);
    if (st == NULL || p == NULL) {
        m2_set_error("m2mtls_ctx_set_policy: %s", p == NULL ? "the policy is NULL"
                                                             : "m2mtls_ctx_install was not called on this context");
        return 0;
    }
    m2mtls_policy_up_ref(p);
    pthread_mutex_lock(&st->lock);
    m2mtls_policy *old = st->policy;
    st->policy = p;
    pthread_mutex_unlock(&st->lock);
    m2mtls_policy_free(old);
    return 1;
}

int m2mtls_ctx_set_client_hello_cb(SSL_CTX *ctx, SSL_client_hello_cb_fn cb, void *arg)
{
    m2_ctx_state *st = m2_ctx_state_get(ctx);
    if (st == NULL) {
        m2_set_error("m2mtls_ctx_set_client_hello_cb: m2mtls_ctx_install was not called on this context");
        return 0;
    }
    st->app_hello = cb;
    st->app_hello_arg = arg;
    return 1;
}
