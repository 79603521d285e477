/* SPDX-License-Identifier: Apache-2.0 */
/* The label of a connection, and the invariant it keeps (README "Security
 * model"): a label is the identity a handshake proved - a chain verified in
 * that very handshake, or a session really resumed and re-checked - and it
 * is visible only once that handshake completed. Labels are named by the
 * handshake's randoms, so nothing proven by an earlier handshake (before
 * SSL_clear, or before a renegotiation) can be mistaken for this one's; a
 * later handshake on the same connection must prove the same identity.
 *
 * Above ctx_state.c (the context's current policy) and session_label.c (a
 * resumed session's label); the hooks that drive it (context.c,
 * initiator.c, tickets.c, guard.c) are above it. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

static int conn_index = -1;
static pthread_once_t conn_once = PTHREAD_ONCE_INIT;

static void conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    m2_conn *c = ptr;
    if (c == NULL)
        return;
    m2_proof_clear(&c->pending);
    m2_proof_clear(&c->label);
    free(c->bound_id);
    free(c->reason);
    free(c->expected);
    m2_label_memo_clear(&c->resumed);
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
    c->reason = m2_strdup(reason); /* NULL clears it */
    c->reason_code = c->reason != NULL ? code : M2MTLS_REJECT_NONE;
    if (reason != NULL && c->reason == NULL) { /* out of memory: still refused, still said */
        c->reason = m2_strdup("out of memory");
        c->reason_code = M2MTLS_REJECT_INTERNAL;
    }
}

/* ---- proofs ------------------------------------------------------------------ */

void m2_hs_id(const SSL *ssl, unsigned char out[M2_HS_ID_LEN])
{
    memset(out, 0, M2_HS_ID_LEN);
    SSL_get_client_random(ssl, out, M2_HS_ID_LEN / 2);
    SSL_get_server_random(ssl, out + M2_HS_ID_LEN / 2, M2_HS_ID_LEN / 2);
}

static int proof_of(const m2_proof *p, const unsigned char hs[M2_HS_ID_LEN])
{
    return p->how != M2_PROVEN_NONE && memcmp(p->hs, hs, M2_HS_ID_LEN) == 0;
}

void m2_proof_clear(m2_proof *p)
{
    free(p->peer_id);
    free(p->local_id);
    free(p->cert_name);
    free(p->anchor);
    memset(p, 0, sizeof *p);
}

void m2_proof_take(m2_proof *proof, int how, m2mtls_verdict *v, const unsigned char anchor_sha256[32],
                   const SSL *ssl)
{
    m2_proof_clear(proof);
    proof->how = how;
    proof->peer_id = v->peer_id;
    proof->local_id = v->local_id;
    proof->cert_name = v->cert_name;
    proof->anchor = v->anchor;
    v->peer_id = v->local_id = v->cert_name = v->anchor = NULL;
    proof->key = proof->cert_name != NULL && strncmp(proof->cert_name, "key:", 4) == 0;
    memcpy(proof->anchor_sha256, anchor_sha256, 32);
    m2_hs_id(ssl, proof->hs);
    m2mtls_verdict_clear(v);
}

/* ---- the handshake under way -------------------------------------------------- */

void m2_conn_use_policy(m2_conn *c, m2_ctx_state *st)
{
    m2mtls_policy *p = m2_ctx_state_policy(st);
    if (p != c->policy)
        m2_label_memo_clear(&c->resumed); /* (it names the policy it was made with) */
    m2mtls_policy_free(c->policy);
    c->policy = p;
    c->st = st;
}

int m2_conn_is_later(const SSL *ssl)
{
    /* The peer's Finished of an earlier handshake is still held: only
     * SSL_new and SSL_clear forget it. */
    unsigned char fin[1];
    return SSL_get_peer_finished(ssl, fin, sizeof fin) != 0;
}

void m2_conn_start(SSL *ssl, m2_conn *c, m2_ctx_state *st, int settle_previous)
{
    if (m2_conn_is_later(ssl)) {
        /* A renegotiation: settle the handshake that completed (when its
         * randoms are still the current ones), a new one must prove the same. */
        if (settle_previous)
            m2_conn_settle(ssl, c, 1);
    } else {
        m2_proof_clear(&c->label);
        free(c->bound_id);
        c->bound_id = NULL;
        c->settled = 0;
    }
    m2_proof_clear(&c->pending);
    m2_conn_set_reason(c, M2MTLS_REJECT_NONE, NULL);
    m2_conn_use_policy(c, st);
    if (c->unpoliced) { /* back on an m2mtls context (SSL_clear and reuse): the application's callback */
        SSL_set_verify(ssl, SSL_get_verify_mode(ssl), c->app_verify_cb);
        c->unpoliced = 0;
    }
}

/* A later handshake (renegotiation, post-handshake authentication) must
 * prove the identity the connection was first bound to. */
static int same_as_bound(m2_conn *c, const char *peer_id)
{
    if (c->bound_id == NULL || strcmp(c->bound_id, peer_id) == 0)
        return 1;
    m2_buf b = { 0 };
    m2_buf_addf(&b, "a later handshake on this connection proved '%s'; the connection is bound to '%s'", peer_id,
                c->bound_id);
    char *why = m2_buf_take(&b);
    m2_conn_set_reason(c, M2MTLS_REJECT_NAME, why != NULL ? why : "out of memory");
    free(why);
    return 0;
}

/* A resumed handshake: the session's label against the policy of the
 * context the connection ended up on (SNI may have switched it). */
static int prove_resumed(SSL *ssl, m2_conn *c)
{
    m2_ctx_state *st = m2_ctx_state_get(SSL_get_SSL_CTX(ssl));
    if (st == NULL) {
        m2_conn_set_reason(c, M2MTLS_REJECT_INTERNAL,
                           "the connection ended up on a context without m2mtls_ctx_install");
        return 0;
    }
    if (c->st != st || c->policy == NULL)
        m2_conn_use_policy(c, st);
    m2mtls_verdict v;
    unsigned char sha[32];
    int role = SSL_is_server(ssl) ? M2MTLS_RESPONDER : M2MTLS_INITIATOR;
    if (!m2_session_label_valid(c->policy, SSL_get0_session(ssl), c->expected, role, &v, sha, &c->resumed)) {
        m2_conn_set_reason(c, v.reason != NULL ? v.code : M2MTLS_REJECT_INTERNAL,
                           v.reason != NULL ? v.reason : "out of memory");
        m2mtls_verdict_clear(&v);
        return 0;
    }
    m2_proof_take(&c->pending, M2_PROVEN_RESUMED, &v, sha, ssl);
    return 1;
}

const m2_proof *m2_conn_prove(SSL *ssl, m2_conn *c)
{
    unsigned char hs[M2_HS_ID_LEN];
    m2_hs_id(ssl, hs);
    if (proof_of(&c->label, hs))
        return &c->label; /* settled already (OpenSSL may still be sending tickets) */
    if (!proof_of(&c->pending, hs)) {
        if (!SSL_session_reused(ssl)) {
            if (c->reason == NULL)
                m2_conn_set_reason(c, M2MTLS_REJECT_NO_CERTIFICATE,
                                   "no peer certificate was verified in this handshake");
            return NULL;
        }
        if (!prove_resumed(ssl, c))
            return NULL;
    }
    if (!same_as_bound(c, c->pending.peer_id)) {
        m2_proof_clear(&c->pending);
        return NULL;
    }
    if (c->bound_id == NULL && (c->bound_id = m2_strdup(c->pending.peer_id)) == NULL) {
        m2_conn_set_reason(c, M2MTLS_REJECT_INTERNAL, "out of memory");
        return NULL;
    }
    return &c->pending;
}

void m2_conn_settle(const SSL *ssl, m2_conn *c, int completed)
{
    unsigned char hs[M2_HS_ID_LEN];
    m2_hs_id(ssl, hs);
    if (!completed || (c->settled && memcmp(c->settled_hs, hs, M2_HS_ID_LEN) == 0))
        return;
    c->settled = 1; /* once per handshake, label or not */
    memcpy(c->settled_hs, hs, M2_HS_ID_LEN);
    m2_proof_clear(&c->label);
    /* The callbacks' view of the SSL is const; the state is ours. */
    if (m2_conn_prove((SSL *)ssl, c) == NULL)
        return;
    c->label = c->pending;
    memset(&c->pending, 0, sizeof c->pending);
    m2_conn_set_reason(c, M2MTLS_REJECT_NONE, NULL);
}

/* ---- the public getters ---------------------------------------------------------- */

/* The handshake under way completed (OpenSSL leaves "init" only then; also
 * true in its HANDSHAKE_DONE info callback, where SSL_is_init_finished is not
 * yet). A failed handshake stays in init. With TLS 1.3 early data OpenSSL
 * leaves init once before the end, in state TLS_ST_EARLY_DATA (and says
 * HANDSHAKE_DONE): a server that calls SSL_read_early_data after sending its
 * Finished, before the client's certificate; a client that calls
 * SSL_write_early_data after its ClientHello, before the server's. That is
 * not the end: settling there would leave the real end without its label. */
int m2_handshake_completed(const SSL *ssl)
{
    OSSL_HANDSHAKE_STATE at = SSL_get_state(ssl);
    return !SSL_in_init(ssl) && at != TLS_ST_BEFORE && at != TLS_ST_EARLY_DATA;
}

/* The connection, when the handshake named by its randoms completed with a label. */
static m2_conn *labelled(const SSL *ssl)
{
    m2_conn *c = ssl != NULL ? m2_conn_get(ssl, 0) : NULL;
    if (c == NULL)
        return NULL;
    m2_conn_settle(ssl, c, m2_handshake_completed(ssl));
    unsigned char hs[M2_HS_ID_LEN];
    m2_hs_id(ssl, hs);
    return proof_of(&c->label, hs) ? c : NULL;
}

const char *m2mtls_ssl_peer_id(const SSL *ssl)
{
    m2_conn *c = labelled(ssl);
    return c != NULL ? c->label.peer_id : NULL;
}

const char *m2mtls_ssl_peer_cert_name(const SSL *ssl)
{
    m2_conn *c = labelled(ssl);
    return c != NULL ? c->label.cert_name : NULL;
}

const char *m2mtls_ssl_anchor(const SSL *ssl)
{
    m2_conn *c = labelled(ssl);
    return c != NULL ? c->label.anchor : NULL;
}

const char *m2mtls_ssl_local_id(const SSL *ssl)
{
    m2_conn *c = labelled(ssl);
    if (c != NULL)
        return c->label.local_id;
    /* Before the handshake an initiator already knows who it will be. */
    c = ssl != NULL ? m2_conn_get(ssl, 0) : NULL;
    if (c == NULL || c->policy == NULL || c->expected == NULL || m2_handshake_completed(ssl))
        return NULL;
    uint32_t i = m2_policy_find_peer(c->policy, c->expected);
    if (i != M2_NONE && c->policy->peers[i].as != NULL)
        return c->policy->peers[i].as;
    return c->policy->local_id;
}

/* Why a handshake that did not complete has no label, when the peer is the
 * cause: it did not prove its key, or (server) sent no certificate. NULL
 * when the peer ended the handshake with an alert (it refused us) or
 * nothing came from it. */
static const char *unfinished_reason(const SSL *ssl, const m2_conn *c, const unsigned char hs[M2_HS_ID_LEN],
                                     m2mtls_reject_code *code)
{
    if (SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN)
        return NULL;
    OSSL_HANDSHAKE_STATE at = SSL_get_state(ssl);
    if (proof_of(&c->pending, hs)) {
        *code = M2MTLS_REJECT_KEY_PROOF;
        if (at == TLS_ST_SR_CERT_VRFY || at == TLS_ST_CR_CERT_VRFY)
            return "the peer's certificate was accepted, but its CertificateVerify failed: the peer did not prove "
                   "possession of the certificate's private key";
        return "the peer's certificate was accepted, but the handshake did not complete";
    }
    if (!SSL_is_server(ssl))
        return NULL;
    *code = M2MTLS_REJECT_NO_CERTIFICATE;
    return "no peer certificate was verified: the peer sent none, or the handshake ended before it";
}

/* The refusal of SSL and its class; NULL and M2MTLS_REJECT_NONE if none. */
static const char *reject_reason(const SSL *ssl, m2mtls_reject_code *code)
{
    *code = M2MTLS_REJECT_NONE;
    m2_conn *c = ssl != NULL ? m2_conn_get(ssl, 0) : NULL;
    if (c == NULL)
        return NULL;
    int done = m2_handshake_completed(ssl);
    m2_conn_settle(ssl, c, done);
    unsigned char hs[M2_HS_ID_LEN];
    m2_hs_id(ssl, hs);
    if (proof_of(&c->label, hs))
        return NULL;
    if (c->reason != NULL) {
        *code = c->reason_code;
        return c->reason;
    }
    if (done || SSL_get_state(ssl) == TLS_ST_BEFORE)
        return NULL; /* nothing was refused (yet) */
    const char *why = unfinished_reason(ssl, c, hs, code);
    if (why == NULL)
        *code = M2MTLS_REJECT_NONE;
    return why;
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
