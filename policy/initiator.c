/* SPDX-License-Identifier: Apache-2.0 */
/* Initiators (TLS clients): the association a connection is for, and what
 * happens when each of its handshakes starts.
 *
 * The start of every client handshake is caught by a ClientHello extension
 * callback that never adds an extension: unlike an info callback, the
 * application cannot replace it. There the connection takes the current
 * policy of its context, the association asked for must still be in it, the
 * peer certificate is required again (whatever verify mode the application
 * set), post-handshake authentication and external PSKs are off, and a
 * session offered for resumption must be one of that association under the
 * current policy, or the handshake is aborted.
 *
 * Uses ctx_state.c, session_label.c, connection.c and guard.c; context.c
 * installs its hook (m2_install_initiator_hook) and nothing here calls
 * back into context.c. */
#include <stdlib.h>
#include <string.h>
#include "internal.h"

/* Never sent: a private-use extension type (RFC 8446 4.2, 0xff00-0xffff
 * minus renegotiation_info 0xff01) reserved by m2mtls for this hook. */
#define M2_HOOK_EXT_TYPE 0xff4d

/* The session SSL will offer, checked for the association asked for. */
static int session_fits(SSL *ssl, m2_conn *c, SSL_SESSION *sess, char **why)
{
    m2mtls_verdict v;
    unsigned char sha[32];
    int ok = m2_session_label_valid(c->policy, sess, c->expected, M2MTLS_INITIATOR, &v, sha, &c->resumed);
    if (!ok && why != NULL)
        *why = v.reason, v.reason = NULL;
    m2mtls_verdict_clear(&v);
    return ok;
}

static int association_known(const m2mtls_policy *p, const char *peer_id)
{
    return m2_policy_find_peer(p, peer_id) != M2_NONE || m2_policy_find_pfc_for(p, peer_id, 0) != M2_NONE;
}

/* Everything a client handshake needs from m2mtls before its ClientHello. */
static int client_start(SSL *ssl, m2_conn *c, m2_ctx_state *st, int settle_previous)
{
    m2_conn_start(ssl, c, st, settle_previous);
    if (c->expected != NULL && !association_known(c->policy, c->expected)) {
        m2_buf b = { 0 };
        m2_buf_addf(&b, "the policy %s (current) has no association with peer '%s'", c->policy->path, c->expected);
        char *why = m2_buf_take(&b);
        m2_conn_set_reason(c, M2MTLS_REJECT_NAME, why != NULL ? why : "out of memory");
        free(why);
        return 0;
    }
    SSL_set_verify(ssl, SSL_get_verify_mode(ssl) | SSL_VERIFY_PEER, SSL_get_verify_callback(ssl));
    /* (Called while the ClientHello is made, this is after its cipher list
     * was written: the ServerHello is then held to the shorter list.) */
    if (!m2_certificate_suites_only(ssl, c))
        return 0;
    SSL_set_post_handshake_auth(ssl, 0);
    SSL_set_psk_use_session_callback(ssl, NULL);
    SSL_set_psk_client_callback(ssl, NULL);
    return 1;
}

static int hello_hook(SSL *ssl, unsigned int ext_type, unsigned int context, const unsigned char **out,
                      size_t *outlen, X509 *x, size_t chainidx, int *al, void *add_arg)
{
    if (SSL_is_server(ssl))
        return 0;
    m2_ctx_state *st = m2_ctx_state_get(SSL_get_SSL_CTX(ssl));
    if (st == NULL)
        return 0; /* the SSL was moved to a context without m2mtls: not ours to judge */
    m2_conn *c = m2_conn_get(ssl, 1);
    *al = SSL_AD_INTERNAL_ERROR;
    if (c == NULL)
        return -1;
    if (!client_start(ssl, c, st, 0))
        return -1;
    SSL_SESSION *sess = SSL_get_session(ssl);
    char *why = NULL;
    if (sess != NULL && SSL_SESSION_is_resumable(sess) && !session_fits(ssl, c, sess, &why)) {
        m2_buf b = { 0 };
        m2_buf_addf(&b, "the session offered for resumption does not fit association '%s': %s",
                    c->expected ? c->expected : "(any)", why ? why : "out of memory");
        free(why);
        why = m2_buf_take(&b);
        m2_conn_set_reason(c, M2MTLS_REJECT_RESUMPTION, why != NULL ? why : "out of memory");
        free(why);
        return -1;
    }
    return 0; /* no extension: this callback only watches */
}

int m2_install_initiator_hook(SSL_CTX *ctx)
{
    SSL_CTX_set_post_handshake_auth(ctx, 0);
    return SSL_CTX_add_custom_ext(ctx, M2_HOOK_EXT_TYPE, SSL_EXT_CLIENT_HELLO, hello_hook, NULL, NULL, NULL, NULL);
}

/* Before the ClientHello is made: a session that does not fit the
 * association is dropped (the handshake is then a full one) rather than
 * refused by hello_hook. The application's own info callback (of the SSL,
 * or else of the SSL_CTX) is still called. */
static void initiator_info_cb(const SSL *cssl, int where, int ret)
{
    SSL *ssl = (SSL *)cssl; /* the callback's view is const; the SSL is ours to change */
    m2_conn *c = m2_conn_get(ssl, 0);
    m2_ctx_state *st = m2_ctx_state_get(SSL_get_SSL_CTX(ssl));
    if (c != NULL && st == NULL && c->expected != NULL && !SSL_is_server(ssl) && (where & SSL_CB_HANDSHAKE_START))
        m2_refuse_unpoliced(ssl, c); /* moved to a context without m2mtls (SSL_set_SSL_CTX) */
    if (c != NULL && st != NULL && !SSL_is_server(ssl)) {
        if ((where & SSL_CB_HANDSHAKE_START) && client_start(ssl, c, st, 1)) {
            /* The current policy decides whether the association is a key's. */
            m2_rpk_client_start(ssl, c->policy, c->expected);
            SSL_SESSION *sess = SSL_get_session(ssl);
            if (sess != NULL && SSL_SESSION_is_resumable(sess) && !session_fits(ssl, c, sess, NULL))
                SSL_set_session(ssl, NULL);
        }
        if (where & SSL_CB_HANDSHAKE_DONE)
            m2_conn_settle(ssl, c, m2_handshake_completed(ssl));
    }
    void (*app)(const SSL *, int, int) = c != NULL ? c->app_info_cb : NULL;
    if (app == NULL)
        app = SSL_CTX_get_info_callback(SSL_get_SSL_CTX(ssl));
    if (app != NULL && app != initiator_info_cb)
        app(cssl, where, ret);
}

int m2mtls_ssl_set_peer(SSL *ssl, const char *peer_id)
{
    if (ssl == NULL || peer_id == NULL || *peer_id == '\0') {
        m2_set_error("m2mtls_ssl_set_peer: %s", ssl == NULL ? "the SSL is NULL" : "no peer id given");
        return 0;
    }
    /* The association of a handshake under way is the one it is being
     * verified for: changing it now would leave a connection proven for one
     * association while the application believes it asked for another. */
    if (SSL_in_init(ssl) && !SSL_in_before(ssl)) {
        m2_set_error("m2mtls_ssl_set_peer: a handshake is under way (call it before SSL_connect, or after SSL_clear)");
        return 0;
    }
    m2_ctx_state *st = m2_ctx_state_get(SSL_get_SSL_CTX(ssl));
    m2_conn *c = st != NULL ? m2_conn_get(ssl, 1) : NULL;
    if (st == NULL || c == NULL) {
        m2_set_error("m2mtls_ssl_set_peer: %s", st == NULL ? "m2mtls_ctx_install was not called on this SSL's context"
                                                           : "out of memory");
        return 0;
    }
    /* The current policy decides, not the one of an earlier connection. */
    m2_conn_use_policy(c, st);
    const m2mtls_policy *p = c->policy;
    uint32_t i = m2_policy_find_peer(p, peer_id);
    if (!association_known(p, peer_id)) {
        m2_set_error("m2mtls_ssl_set_peer: the policy %s has no association with peer '%s'", p->path, peer_id);
        return 0;
    }
    char *expected = m2_strdup(peer_id);
    if (expected == NULL) {
        m2_set_error("m2mtls_ssl_set_peer: out of memory");
        return 0;
    }
    /* SNI names the peer's authority (TS-0003 10.2.1) when it has a DNS name. */
    if (i != M2_NONE && strncmp(p->peers[i].name, "dns:", 4) == 0
        && !SSL_set_tlsext_host_name(ssl, p->peers[i].name + 4)) {
        free(expected);
        m2_set_error("m2mtls_ssl_set_peer: cannot set SNI");
        return 0;
    }
    free(c->expected);
    c->expected = expected;
    /* RFC 7250 toward a key identity, before the ClientHello is made. */
    m2_rpk_client_start(ssl, p, peer_id);
    if (SSL_get_info_callback(ssl) != initiator_info_cb) {
        c->app_info_cb = SSL_get_info_callback(ssl);
        SSL_set_info_callback(ssl, initiator_info_cb);
    }
    return 1;
}
