/* SPDX-License-Identifier: Apache-2.0 */
/* m2mtls_ctx_install and the server's hooks: what puts the policy into
 * every handshake on a live SSL_CTX.
 *
 * Servers: the client hello callback starts each handshake (policy snapshot,
 * session id context, client certificate required, post-handshake
 * authentication and external PSKs off); the "not resumable" callback
 * re-asserts the certificate requirement after SNI and certificate
 * callbacks; the certificate verify callback (also the client's) is the
 * policy's verdict; the ticket callbacks (tickets.c) re-check resumed
 * identities and run the end-of-handshake check. Clients: initiator.c.
 *
 * The top of the policy/ files with initiator.c: it uses ctx_state.c (the
 * context's state and policy swap), connection.c (labels), guard.c,
 * session_label.c, tickets.c and initiator.c (whose hook it installs);
 * none of them calls back into it. */
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include "internal.h"

/* A server requires the client's certificate in the handshake itself:
 * never only after it (SSL_VERIFY_POST_HANDSHAKE: a TLS 1.3 client would be
 * served without one), and again at every renegotiation (no CLIENT_ONCE). */
static void require_client_cert(SSL *ssl)
{
    int mode = (SSL_get_verify_mode(ssl) | SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT)
               & ~(SSL_VERIFY_POST_HANDSHAKE | SSL_VERIFY_CLIENT_ONCE);
    SSL_set_verify(ssl, mode, SSL_get_verify_callback(ssl));
}

/* What a session's label records of an accepted verdict V: the SHA-256 of
 * the anchor certificate that verified the chain, or for a key identity that
 * of the key (SubjectPublicKeyInfo) the peer proved. */
static int proof_digest(const m2mtls_policy *p, const m2mtls_verdict *v, X509 *leaf, EVP_PKEY *rpk,
                        unsigned char sha[32])
{
    if (m2_verdict_by_key(v))
        return m2_peer_key_sha256(leaf, rpk, sha);
    uint32_t a = m2_policy_find_anchor(p, v->anchor);
    if (a == M2_NONE)
        return 0;
    memcpy(sha, p->anchors[a].sha256, 32);
    return 1;
}

/* Replaces OpenSSL's chain verification for the peer's certificate. Called
 * for the context the connection is on now (after an SNI switch, the new
 * one): that context's policy decides. */
static int verify_hook(X509_STORE_CTX *xs, void *arg)
{
    m2_ctx_state *st = arg;
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    m2_conn *c = ssl != NULL ? m2_conn_get(ssl, 1) : NULL;
    if (c == NULL) {
        X509_STORE_CTX_set_error(xs, X509_V_ERR_OUT_OF_MEM);
        return 0;
    }
    int later = m2_conn_is_later(ssl);
    if (c->st != st || c->policy == NULL)
        m2_conn_use_policy(c, st);
    /* A refusal must end the handshake even if the application asked an
     * initiator not to verify (libssl ignores a failed verification then). */
    if (!SSL_is_server(ssl))
        SSL_set_verify(ssl, SSL_get_verify_mode(ssl) | SSL_VERIFY_PEER, SSL_get_verify_callback(ssl));
    const m2mtls_policy *p = c->policy;
    m2_eval_opts o = {
        .role = SSL_is_server(ssl) ? M2MTLS_RESPONDER : M2MTLS_INITIATOR,
        .expected = c->expected,
        .ssl = ssl,
        .param = X509_STORE_CTX_get0_param(xs),
    };
    X509 *leaf = X509_STORE_CTX_get0_cert(xs);
    /* An RFC 7250 raw public key instead of a certificate (OpenSSL >= 3.2). */
    o.rpk = leaf == NULL ? m2_rpk_of_store(xs) : NULL;
    m2mtls_verdict v;
    int err = X509_V_ERR_APPLICATION_VERIFICATION;
    m2_proof_clear(&c->pending);
    if (!later) {
        free(c->bound_id);
        c->bound_id = NULL;
    }
    if (!m2_evaluate(p, leaf, X509_STORE_CTX_get0_untrusted(xs), &o, &v, &err)) {
        m2_conn_set_reason(c, M2MTLS_REJECT_INTERNAL, "out of memory");
        X509_STORE_CTX_set_error(xs, X509_V_ERR_OUT_OF_MEM);
        return 0;
    }
    if (v.accepted && later && c->bound_id != NULL && strcmp(c->bound_id, v.peer_id) != 0) {
        /* Renegotiation or post-handshake authentication with another
         * identity: the connection is aborted, its label gone. */
        m2_buf b = { 0 };
        m2_buf_addf(&b, "a second certificate on this connection names '%s'; the connection is bound to '%s'",
                    v.peer_id, c->bound_id);
        m2mtls_verdict_clear(&v);
        v.reason = m2_buf_take(&b);
        v.code = M2MTLS_REJECT_NAME;
        err = X509_V_ERR_APPLICATION_VERIFICATION;
        m2_proof_clear(&c->label);
    } else if (v.accepted && later && c->bound_id == NULL) {
        m2mtls_verdict_clear(&v);
        v.reason = m2_strdup("a second certificate on a connection whose first identity was not established");
        v.code = M2MTLS_REJECT_NAME;
        err = X509_V_ERR_APPLICATION_VERIFICATION;
    }
    if (!v.accepted) {
        m2_conn_set_reason(c, v.reason != NULL ? v.code : M2MTLS_REJECT_INTERNAL,
                           v.reason != NULL ? v.reason : "out of memory");
        m2mtls_verdict_clear(&v);
        X509_STORE_CTX_set_current_cert(xs, leaf);
        X509_STORE_CTX_set_error(xs, err);
        return 0;
    }
    if (!later && (c->bound_id = m2_strdup(v.peer_id)) == NULL) {
        m2mtls_verdict_clear(&v);
        m2_conn_set_reason(c, M2MTLS_REJECT_INTERNAL, "out of memory");
        X509_STORE_CTX_set_error(xs, X509_V_ERR_OUT_OF_MEM);
        return 0;
    }
    /* libssl keeps the verified chain (SSL_get0_verified_chain) from here. */
    X509_STORE_CTX_set0_verified_chain(xs, v.chain);
    v.chain = NULL;
    X509_STORE_CTX_set_error(xs, X509_V_OK);
    unsigned char sha[32];
    if (!proof_digest(p, &v, leaf, o.rpk, sha)) {
        m2mtls_verdict_clear(&v);
        m2_conn_set_reason(c, M2MTLS_REJECT_INTERNAL, "out of memory");
        X509_STORE_CTX_set_error(xs, X509_V_ERR_OUT_OF_MEM);
        return 0;
    }
    m2_conn_set_reason(c, M2MTLS_REJECT_NONE, NULL);
    /* Proven in this handshake; the label once the handshake completes. */
    m2_proof_take(&c->pending, M2_PROVEN_CHAIN, &v, sha, ssl);
    m2_session_store_label(SSL_get_session(ssl), &c->pending);
    return 1;
}

/* The session id context: the policy's digest and the server name the
 * client asked for. A changed policy cannot resume sessions made under
 * another, and a session made for one virtual host (SNI) is not resumed on
 * another, whose context may have another policy. */
static int set_session_context(SSL *ssl, const m2mtls_policy *p)
{
    const unsigned char *sni = NULL;
    size_t sni_len = 0;
    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &sni, &sni_len))
        sni_len = 0;
    unsigned char sid[32];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) && EVP_DigestUpdate(md, p->digest, sizeof p->digest)
             && (sni_len == 0 || EVP_DigestUpdate(md, sni, sni_len)) && EVP_DigestFinal_ex(md, sid, NULL);
    EVP_MD_CTX_free(md);
    return ok && SSL_set_session_id_context(ssl, sid, sizeof sid);
}

/* Server: runs at every ClientHello, before session resumption is decided. */
static int hello_hook(SSL *ssl, int *alert, void *arg)
{
    m2_ctx_state *st = arg;
    SSL_client_hello_cb_fn app_hello;
    void *app_hello_arg;
    m2_ctx_state_app_hello(st, &app_hello, &app_hello_arg);
    if (app_hello != NULL) {
        int r = app_hello(ssl, alert, app_hello_arg);
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
    m2_conn_start(ssl, c, st, 1);
    if (!set_session_context(ssl, c->policy)) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    require_client_cert(ssl);
    if (!m2_certificate_suites_only(ssl, c)) {
        *alert = SSL_AD_HANDSHAKE_FAILURE;
        return SSL_CLIENT_HELLO_ERROR;
    }
    /* Before the ClientHello's extensions are read: RFC 7250 for key identities. */
    m2_rpk_server_start(ssl, c->policy);
    /* An external PSK would authenticate the client without a certificate;
     * 0-RTT data would reach the application before anything is proven. */
    SSL_set_psk_server_callback(ssl, NULL);
    SSL_set_psk_find_session_callback(ssl, NULL);
    SSL_set_max_early_data(ssl, 0);
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* Server, full handshakes: libssl calls this after the SNI and certificate
 * callbacks (which may change the verify mode or the context) and before it
 * decides whether to ask for the client's certificate. */
static int fresh_session_hook(SSL *ssl, int is_forward_secure)
{
    m2_ctx_state *st = m2_ctx_state_get(SSL_get_SSL_CTX(ssl));
    m2_conn *c = m2_conn_get(ssl, 0);
    if (st == NULL && c != NULL) {
        /* The SNI callback moved the connection to a context without m2mtls. */
        m2_refuse_unpoliced(ssl, c);
        return 1;
    }
    if (st != NULL && c != NULL && c->st != st)
        m2_conn_use_policy(c, st);
    require_client_cert(ssl);
    return 0; /* resumable as the application decides otherwise */
}

int m2mtls_ctx_install(SSL_CTX *ctx, m2mtls_policy *p)
{
    if (ctx == NULL || p == NULL) {
        m2_set_error("m2mtls_ctx_install: %s is NULL", ctx == NULL ? "the SSL_CTX" : "the policy");
        return 0;
    }
    if (m2_ctx_state_get(ctx) != NULL)
        return m2mtls_ctx_set_policy(ctx, p);
    if (m2_conn_index() < 0) {
        m2_set_error("m2mtls_ctx_install: cannot allocate OpenSSL ex_data indexes");
        return 0;
    }
    m2_ctx_state *st = m2_ctx_state_new(ctx, p);
    if (st == NULL)
        return 0;
    /* Keep the application's verify callback: it still runs, inside ours. */
    int mode = (SSL_CTX_get_verify_mode(ctx) | SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT)
               & ~(SSL_VERIFY_POST_HANDSHAKE | SSL_VERIFY_CLIENT_ONCE);
    SSL_CTX_set_verify(ctx, mode, SSL_CTX_get_verify_callback(ctx));
    SSL_CTX_set_cert_verify_callback(ctx, verify_hook, st);
    SSL_CTX_set_client_hello_cb(ctx, hello_hook, st);
    SSL_CTX_set_not_resumable_session_callback(ctx, fresh_session_hook);
    /* A renegotiation could present another certificate after the label is
     * set; should an application allow it again, it is a full handshake. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION);
    if (!SSL_CTX_set_session_id_context(ctx, p->digest, sizeof p->digest) || !m2_install_ticket_cb(ctx, st)) {
        m2_set_error("m2mtls_ctx_install: cannot configure session resumption");
        return 0;
    }
    if (!m2_install_initiator_hook(ctx)) {
        m2_set_error("m2mtls_ctx_install: cannot register the ClientHello hook (extension type 0xff4d is taken)");
        return 0;
    }
    return 1;
}
