/* SPDX-License-Identifier: Apache-2.0 */
/* Per-connection identity labels, and how they survive resumption.
 *
 * OpenSSL runs no verification on a resumed handshake, so the label travels
 * in the session itself (ticket app data, which is also kept in the session
 * cache and in serialized client sessions) and is re-checked against the
 * current policy whenever a session is resumed: the stored peer certificate
 * must still select exactly that identity, through an anchor with the same
 * certificate as the one that verified the chain. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

#define LABEL_MAGIC "m2mtls-label-1"
#define LABEL_MAGIC_LEN (sizeof LABEL_MAGIC) /* with its NUL */

static int conn_index = -1;
static pthread_once_t conn_once = PTHREAD_ONCE_INIT;

static void conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    m2_conn *c = ptr;
    if (c == NULL)
        return;
    m2_conn_clear_label(c);
    free(c->reason);
    free(c->expected);
    m2mtls_policy_free(c->policy);
    free(c);
}

/* SSL_dup must not share the state (it would be freed twice). */
static int conn_dup(CRYPTO_EX_DATA *to, const CRYPTO_EX_DATA *from, void **from_d, int idx, long argl, void *argp)
{
    *from_d = NULL;
    return 1;
}

static void conn_index_init(void)
{
    conn_index = CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL, 0, NULL, NULL, conn_dup, conn_free);
}

int m2_conn_index(void)
{
    pthread_once(&conn_once, conn_index_init);
    return conn_index;
}

m2_conn *m2_conn_get(const SSL *ssl, int create)
{
    if (ssl == NULL || m2_conn_index() < 0)
        return NULL;
    m2_conn *c = SSL_get_ex_data(ssl, conn_index);
    if (c != NULL || !create)
        return c;
    c = calloc(1, sizeof *c);
    /* The label is state attached to the SSL, not part of its const view. */
    if (c != NULL && !SSL_set_ex_data((SSL *)ssl, conn_index, c)) {
        free(c);
        c = NULL;
    }
    return c;
}

void m2_conn_set_reason(m2_conn *c, m2mtls_reject_code code, const char *reason)
{
    free(c->reason);
    c->reason = reason != NULL ? m2_reason_new(code, reason) : NULL;
}

void m2_conn_clear_label(m2_conn *c)
{
    free(c->peer_id);
    free(c->local_id);
    free(c->cert_name);
    free(c->anchor);
    c->peer_id = c->local_id = c->cert_name = c->anchor = NULL;
    c->labelled = 0;
}

void m2_conn_bind(m2_conn *c, m2mtls_verdict *v, const unsigned char *anchor_sha256)
{
    m2_conn_clear_label(c);
    c->peer_id = v->peer_id;
    c->local_id = v->local_id;
    c->cert_name = v->cert_name;
    c->anchor = v->anchor;
    v->peer_id = v->local_id = v->cert_name = v->anchor = NULL;
    memcpy(c->anchor_sha256, anchor_sha256, 32);
    free(c->reason);
    c->reason = NULL;
    c->labelled = 1;
    m2mtls_verdict_clear(v);
}

/* Record: magic, SHA-256 of the anchor certificate, the peer id (NUL ended). */
void m2_session_store_label(SSL *ssl, const m2_conn *c)
{
    SSL_SESSION *sess = SSL_get_session(ssl);
    if (sess == NULL || !c->labelled)
        return;
    size_t id_len = strlen(c->peer_id) + 1;
    size_t n = LABEL_MAGIC_LEN + 32 + id_len;
    unsigned char *rec = malloc(n);
    if (rec == NULL)
        return; /* the session then resumes without a label: fails closed */
    memcpy(rec, LABEL_MAGIC, LABEL_MAGIC_LEN);
    memcpy(rec + LABEL_MAGIC_LEN, c->anchor_sha256, 32);
    memcpy(rec + LABEL_MAGIC_LEN + 32, c->peer_id, id_len);
    SSL_SESSION_set1_ticket_appdata(sess, rec, n);
    free(rec);
}

/* The stored label of SESS: its anchor digest and peer id, or 0. */
static int read_label(SSL_SESSION *sess, const unsigned char **sha, const char **peer_id)
{
    void *data = NULL;
    size_t n = 0;
    if (sess == NULL || !SSL_SESSION_get0_ticket_appdata(sess, &data, &n) || data == NULL)
        return 0;
    const unsigned char *d = data;
    if (n < LABEL_MAGIC_LEN + 32 + 2 || memcmp(d, LABEL_MAGIC, LABEL_MAGIC_LEN) != 0 || d[n - 1] != '\0')
        return 0;
    *sha = d + LABEL_MAGIC_LEN;
    *peer_id = (const char *)d + LABEL_MAGIC_LEN + 32;
    return memchr(*peer_id, '\0', n - LABEL_MAGIC_LEN - 32) == (const void *)&d[n - 1];
}

int m2_session_label_valid(const m2mtls_policy *p, SSL_SESSION *sess, const char *expected, int role,
                           m2mtls_verdict *out, unsigned char anchor_sha256[32])
{
    memset(out, 0, sizeof *out);
    const unsigned char *sha;
    const char *id;
    if (!read_label(sess, &sha, &id)) {
        out->reason = m2_reason_new(M2MTLS_REJECT_RESUMPTION, "resumed session carries no m2mtls identity label");
        return 0;
    }
    X509 *peer = SSL_SESSION_get0_peer(sess);
    m2_eval_opts o = { .role = role, .expected = expected, .resumed_anchor_sha256 = sha };
    if (!m2_evaluate(p, peer, NULL, &o, out, NULL))
        return 0;
    if (!out->accepted) {
        m2_buf b = { 0 };
        m2_buf_addf(&b, "resumed session of '%s' is not authorized by the current policy: %s", id,
                    out->reason ? out->reason : "");
        free(out->reason);
        out->reason = m2_reason_adopt(m2_buf_take(&b), M2MTLS_REJECT_RESUMPTION);
        return 0;
    }
    if (strcmp(out->peer_id, id) != 0) {
        m2_buf b = { 0 };
        m2_buf_addf(&b, "resumed session belongs to '%s', the current policy names '%s'", id, out->peer_id);
        m2mtls_verdict_clear(out);
        out->reason = m2_reason_adopt(m2_buf_take(&b), M2MTLS_REJECT_RESUMPTION);
        return 0;
    }
    memcpy(anchor_sha256, sha, 32);
    return 1;
}

/* Binds (or refuses) the label of a resumed connection, once. */
static void label_resumed(const SSL *ssl, m2_conn *c)
{
    if (c->labelled || c->resume_checked || !SSL_session_reused(ssl))
        return;
    c->resume_checked = 1;
    m2mtls_policy *p = c->policy;
    if (p == NULL) {
        m2_ctx_state *st = m2_ctx_state_get(SSL_get_SSL_CTX(ssl));
        if (st == NULL) {
            m2_conn_set_reason(c, M2MTLS_REJECT_INTERNAL,
                               "m2mtls_ctx_install was not called on this connection's context");
            return;
        }
        p = c->policy = m2_ctx_state_policy(st);
    }
    m2mtls_verdict v;
    unsigned char sha[32];
    int role = SSL_is_server(ssl) ? M2MTLS_RESPONDER : M2MTLS_INITIATOR;
    if (m2_session_label_valid(p, SSL_get0_session(ssl), c->expected, role, &v, sha)) {
        m2_conn_bind(c, &v, sha);
        return;
    }
    if (v.reason != NULL)
        m2_conn_set_reason(c, m2_reason_code(v.reason), v.reason);
    else
        m2_conn_set_reason(c, M2MTLS_REJECT_INTERNAL, "out of memory");
    m2mtls_verdict_clear(&v);
}

static m2_conn *labelled_conn(const SSL *ssl)
{
    m2_conn *c = m2_conn_get(ssl, SSL_session_reused(ssl));
    if (c == NULL)
        return NULL;
    label_resumed(ssl, c);
    return c->labelled ? c : NULL;
}

const char *m2mtls_ssl_peer_id(const SSL *ssl)
{
    m2_conn *c = labelled_conn(ssl);
    return c != NULL ? c->peer_id : NULL;
}

const char *m2mtls_ssl_peer_cert_name(const SSL *ssl)
{
    m2_conn *c = labelled_conn(ssl);
    return c != NULL ? c->cert_name : NULL;
}

const char *m2mtls_ssl_anchor(const SSL *ssl)
{
    m2_conn *c = labelled_conn(ssl);
    return c != NULL ? c->anchor : NULL;
}

const char *m2mtls_ssl_local_id(const SSL *ssl)
{
    m2_conn *c = labelled_conn(ssl);
    if (c != NULL)
        return c->local_id;
    /* Before the handshake an initiator already knows who it will be. */
    c = m2_conn_get(ssl, 0);
    if (c == NULL || c->policy == NULL || c->expected == NULL)
        return NULL;
    uint32_t i = m2_policy_find_peer(c->policy, c->expected);
    if (i != M2_NONE && c->policy->peers[i].as != NULL)
        return c->policy->peers[i].as;
    return c->policy->local_id;
}

/* The refusal of SSL and its class; NULL and M2MTLS_REJECT_NONE if none. */
static const char *reject_reason(const SSL *ssl, m2mtls_reject_code *code)
{
    *code = M2MTLS_REJECT_NONE;
    m2_conn *c = m2_conn_get(ssl, 0);
    if (c == NULL)
        return NULL;
    label_resumed(ssl, c);
    if (c->reason != NULL) {
        *code = m2_reason_code(c->reason);
        return c->reason;
    }
    if (!c->labelled && SSL_is_server(ssl) && c->policy != NULL && SSL_get0_peer_certificate(ssl) == NULL
        && !SSL_is_init_finished(ssl)) {
        *code = M2MTLS_REJECT_NO_CERTIFICATE;
        return "no peer certificate was verified: the peer sent none, or the handshake ended before it";
    }
    return NULL;
}

const char *m2mtls_ssl_reject_reason(const SSL *ssl)
{
    m2mtls_reject_code code;
    return reject_reason(ssl, &code);
}

m2mtls_reject_code m2mtls_ssl_reject_code(const SSL *ssl)
{
    m2mtls_reject_code code;
    reject_reason(ssl, &code);
    return code;
}

/* Initiator, at the start of the handshake: a session is offered only when
 * the current policy still grants its identity for the association asked
 * for; a session of another association (or one no longer authorized) is
 * dropped, and the handshake is a full one with a full verification. */
static void initiator_info_cb(const SSL *cssl, int where, int ret)
{
    SSL *ssl = (SSL *)cssl; /* the callback's view is const; the SSL is ours to change */
    m2_conn *c = m2_conn_get(ssl, 0);
    if (c != NULL && (where & SSL_CB_HANDSHAKE_START) && !SSL_is_server(ssl)) {
        /* An application may have set SSL_VERIFY_NONE after installing: an
         * initiator still aborts on a peer its association refuses. */
        SSL_set_verify(ssl, SSL_get_verify_mode(ssl) | SSL_VERIFY_PEER, SSL_get_verify_callback(ssl));
        SSL_SESSION *sess = SSL_get_session(ssl);
        m2mtls_verdict v;
        unsigned char sha[32];
        if (sess != NULL && m2_session_label_valid(c->policy, sess, c->expected, M2MTLS_INITIATOR, &v, sha)) {
            m2_conn_bind(c, &v, sha); /* replaced by the verify hook if the server does not resume */
            c->resume_checked = 1;
        } else if (sess != NULL) {
            m2mtls_verdict_clear(&v);
            SSL_set_session(ssl, NULL);
        }
    }
    void (*app)(const SSL *, int, int) = c != NULL ? c->app_info_cb : NULL;
    if (app == NULL)
        app = SSL_CTX_get_info_callback(SSL_get_SSL_CTX(ssl));
    if (app != NULL)
        app(cssl, where, ret);
}

int m2mtls_ssl_set_peer(SSL *ssl, const char *peer_id)
{
    if (ssl == NULL || peer_id == NULL || *peer_id == '\0') {
        m2_set_error("m2mtls_ssl_set_peer: %s", ssl == NULL ? "the SSL is NULL" : "no peer id given");
        return 0;
    }
    m2_ctx_state *st = m2_ctx_state_get(SSL_get_SSL_CTX(ssl));
    m2_conn *c = m2_conn_get(ssl, 1);
    if (st == NULL || c == NULL) {
        m2_set_error("m2mtls_ssl_set_peer: %s", st == NULL ? "m2mtls_ctx_install was not called on this SSL's context"
                                                           : "out of memory");
        return 0;
    }
    if (c->policy == NULL)
        c->policy = m2_ctx_state_policy(st);
    const m2mtls_policy *p = c->policy;
    uint32_t i = m2_policy_find_peer(p, peer_id);
    if (i == M2_NONE && m2_policy_find_pfc_for(p, peer_id, 0) == M2_NONE) {
        m2_set_error("m2mtls_ssl_set_peer: the policy %s has no association with peer '%s'", p->path, peer_id);
        return 0;
    }
    char *expected = m2_strdup(peer_id);
    if (expected == NULL) {
        m2_set_error("m2mtls_ssl_set_peer: out of memory");
        return 0;
    }
    free(c->expected);
    c->expected = expected;
    /* SNI names the peer's authority (TS-0003 10.2.1) when it has a DNS name. */
    if (i != M2_NONE && strncmp(p->peers[i].name, "dns:", 4) == 0
        && !SSL_set_tlsext_host_name(ssl, p->peers[i].name + 4)) {
        m2_set_error("m2mtls_ssl_set_peer: cannot set SNI");
        return 0;
    }
    /* Whatever session the application sets, before or after this call, is
     * checked when the handshake starts. */
    if (SSL_get_info_callback(ssl) != initiator_info_cb) {
        c->app_info_cb = SSL_get_info_callback(ssl);
        SSL_set_info_callback(ssl, initiator_info_cb);
    }
    return 1;
}

/* ---- tickets ------------------------------------------------------------------ */

static int ticket_gen(SSL *ssl, void *arg)
{
    return 1; /* the label was stored in the session when it was verified */
}

/* A ticket whose identity the current policy no longer grants is not resumed:
 * the client gets a full handshake, and with it a full verification. */
static SSL_TICKET_RETURN ticket_dec(SSL *ssl, SSL_SESSION *sess, const unsigned char *keyname, size_t keyname_len,
                                    SSL_TICKET_STATUS status, void *arg)
{
    if (status != SSL_TICKET_SUCCESS && status != SSL_TICKET_SUCCESS_RENEW)
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    m2_conn *c = m2_conn_get(ssl, 1);
    if (c == NULL)
        return SSL_TICKET_RETURN_ABORT;
    if (c->policy == NULL)
        c->policy = m2_ctx_state_policy(arg);
    m2mtls_verdict v;
    unsigned char sha[32];
    if (!m2_session_label_valid(c->policy, sess, NULL, M2MTLS_RESPONDER, &v, sha)) {
        m2mtls_verdict_clear(&v);
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    }
    /* Checked once here; should the handshake still fall back to a full
     * one, the verify hook replaces this label. */
    m2_conn_bind(c, &v, sha);
    c->resume_checked = 1;
    return status == SSL_TICKET_SUCCESS_RENEW ? SSL_TICKET_RETURN_USE_RENEW : SSL_TICKET_RETURN_USE;
}

int m2_install_ticket_cb(SSL_CTX *ctx, m2_ctx_state *st)
{
    return SSL_CTX_set_session_ticket_cb(ctx, ticket_gen, ticket_dec, st);
}
