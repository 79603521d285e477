/* SPDX-License-Identifier: Apache-2.0 */
/* The state m2mtls keeps on an SSL_CTX: its current policy (swapped
 * atomically, taken by each handshake as a snapshot) and the application's
 * callbacks that m2mtls's own chain (client hello, session tickets).
 *
 * The lowest of the context and connection files: it uses only the policy
 * (reference counting) and the error functions. The hooks that use this
 * state are in context.c (servers), initiator.c (clients), tickets.c. */
#include <pthread.h>
#include <stdlib.h>
#include "internal.h"

struct m2_ctx_state {
    pthread_mutex_t lock;     /* guards `policy` (the pointer, not the policy) */
    m2mtls_policy  *policy;
    SSL_client_hello_cb_fn app_hello;  /* the application's, run before ours */
    void           *app_hello_arg;
    SSL_CTX_generate_session_ticket_fn app_ticket_gen;  /* the application's, chained */
    SSL_CTX_decrypt_session_ticket_fn  app_ticket_dec;
    void           *app_ticket_arg;
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

m2_ctx_state *m2_ctx_state_new(SSL_CTX *ctx, m2mtls_policy *p)
{
    pthread_once(&ctx_once, ctx_index_init);
    if (ctx_index < 0) {
        m2_set_error("m2mtls_ctx_install: cannot allocate OpenSSL ex_data indexes");
        return NULL;
    }
    m2_ctx_state *st = calloc(1, sizeof *st);
    if (st == NULL || pthread_mutex_init(&st->lock, NULL) != 0) {
        free(st);
        m2_set_error("m2mtls_ctx_install: out of memory");
        return NULL;
    }
    m2mtls_policy_up_ref(p);
    st->policy = p;
    if (!SSL_CTX_set_ex_data(ctx, ctx_index, st)) {
        ctx_state_free(NULL, st, NULL, 0, 0, NULL);
        m2_set_error("m2mtls_ctx_install: out of memory");
        return NULL;
    }
    return st;
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

void m2_ctx_state_app_hello(const m2_ctx_state *st, SSL_client_hello_cb_fn *cb, void **arg)
{
    *cb = st != NULL ? st->app_hello : NULL;
    *arg = st != NULL ? st->app_hello_arg : NULL;
}

void m2_ctx_state_app_tickets(const m2_ctx_state *st, SSL_CTX_generate_session_ticket_fn *gen,
                              SSL_CTX_decrypt_session_ticket_fn *dec, void **arg)
{
    *gen = st != NULL ? st->app_ticket_gen : NULL;
    *dec = st != NULL ? st->app_ticket_dec : NULL;
    *arg = st != NULL ? st->app_ticket_arg : NULL;
}

/* ---- the public setters --------------------------------------------------------- */

/* The state of CTX, or NULL with CALLER's error when m2mtls is not installed there. */
static m2_ctx_state *installed_state(const SSL_CTX *ctx, const char *caller)
{
    m2_ctx_state *st = m2_ctx_state_get(ctx);
    if (st == NULL)
        m2_set_error("%s: m2mtls_ctx_install was not called on this context", caller);
    return st;
}

int m2mtls_ctx_set_policy(SSL_CTX *ctx, m2mtls_policy *p)
{
    if (p == NULL) {
        m2_set_error("m2mtls_ctx_set_policy: the policy is NULL");
        return 0;
    }
    m2_ctx_state *st = installed_state(ctx, "m2mtls_ctx_set_policy");
    if (st == NULL)
        return 0;
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
    m2_ctx_state *st = installed_state(ctx, "m2mtls_ctx_set_client_hello_cb");
    if (st == NULL)
        return 0;
    st->app_hello = cb;
    st->app_hello_arg = arg;
    return 1;
}

int m2mtls_ctx_set_session_ticket_cb(SSL_CTX *ctx, SSL_CTX_generate_session_ticket_fn gen,
                                     SSL_CTX_decrypt_session_ticket_fn dec, void *arg)
{
    m2_ctx_state *st = installed_state(ctx, "m2mtls_ctx_set_session_ticket_cb");
    if (st == NULL)
        return 0;
    st->app_ticket_gen = gen;
    st->app_ticket_dec = dec;
    st->app_ticket_arg = arg;
    return 1;
}
