/* SPDX-License-Identifier: Apache-2.0 */
/* The server's session ticket callbacks: the end-of-handshake check when a
 * ticket is made, the label record put into every ticket, and the re-check
 * of a resumed ticket's label against the current policy. The
 * application's own ticket callbacks (m2mtls_ctx_set_session_ticket_cb, or
 * the preload chaining a program's) run inside them and see only their own
 * part of the ticket's app data.
 *
 * Above connection.c (the proof of the handshake), session_label.c (the
 * record) and ctx_state.c (the application's callbacks); installed by
 * context.c. */
#include <stdlib.h>
#include "internal.h"

/* A ticket is made once the handshake has proven what it proves (TLS 1.3:
 * after the client's Finished; TLS 1.2: after the client's Finished, or for
 * a renewed ticket after SNI): the end-of-handshake check runs here, and a
 * handshake that proved no identity fails with an alert. */
static int ticket_gen(SSL *ssl, void *arg)
{
    m2_conn *c = m2_conn_get(ssl, 0);
    SSL_SESSION *sess = SSL_get_session(ssl);
    const m2_proof *proof = c != NULL && sess != NULL ? m2_conn_prove(ssl, c) : NULL;
    if (proof == NULL)
        return 0;
    SSL_CTX_generate_session_ticket_fn app_gen;
    SSL_CTX_decrypt_session_ticket_fn app_dec;
    void *app_arg;
    m2_ctx_state_app_tickets(arg, &app_gen, &app_dec, &app_arg);
    size_t n;
    unsigned char *app = m2_session_app_part(sess, &n);
    int ok = 1;
    if (app_gen != NULL) {
        /* The application sees (and may replace) its own data only. */
        ok = m2_session_set_appdata(sess, NULL, app, n) && app_gen(ssl, app_arg);
        free(app);
        app = m2_session_app_part(sess, &n);
    }
    ok = ok && m2_session_set_appdata(sess, proof, app, n);
    free(app);
    return ok;
}

/* The application's decrypt callback, with its own part of the app data:
 * the label record is put aside while it runs, and back after it. */
static SSL_TICKET_RETURN app_decrypt(SSL *ssl, SSL_SESSION *sess, const unsigned char *keyname, size_t keyname_len,
                                     SSL_TICKET_STATUS status, void *arg)
{
    SSL_CTX_generate_session_ticket_fn app_gen;
    SSL_CTX_decrypt_session_ticket_fn app_dec;
    void *app_arg;
    m2_ctx_state_app_tickets(arg, &app_gen, &app_dec, &app_arg);
    if (app_dec == NULL)
        return status == SSL_TICKET_SUCCESS_RENEW ? SSL_TICKET_RETURN_USE_RENEW : SSL_TICKET_RETURN_USE;
    if (sess == NULL)
        return app_dec(ssl, sess, keyname, keyname_len, status, app_arg);
    m2_proof saved; /* the label record, if any (its peer id NULL when out of memory) */
    (void)m2_session_read_label(sess, &saved);
    size_t n;
    unsigned char *app = m2_session_app_part(sess, &n);
    SSL_TICKET_RETURN r = SSL_TICKET_RETURN_ABORT;
    if ((saved.how == M2_PROVEN_NONE || saved.peer_id != NULL) && m2_session_set_appdata(sess, NULL, app, n)) {
        r = app_dec(ssl, sess, keyname, keyname_len, status, app_arg);
        free(app);
        app = m2_session_app_part(sess, &n);
        if (!m2_session_set_appdata(sess, saved.how != M2_PROVEN_NONE ? &saved : NULL, app, n))
            r = SSL_TICKET_RETURN_ABORT;
    }
    free(app);
    m2_proof_clear(&saved);
    return r;
}

/* A ticket whose identity the current policy no longer grants is not resumed:
 * the client gets a full handshake, and with it a full verification. Nothing
 * is bound here: OpenSSL may still decide not to resume (a TLS 1.3 ticket
 * whose hash is not the chosen suite's, a TLS 1.2 session of another context),
 * and a label is only ever made when the handshake completed. */
static SSL_TICKET_RETURN ticket_dec(SSL *ssl, SSL_SESSION *sess, const unsigned char *keyname, size_t keyname_len,
                                    SSL_TICKET_STATUS status, void *arg)
{
    SSL_TICKET_RETURN app = app_decrypt(ssl, sess, keyname, keyname_len, status, arg);
    if (status != SSL_TICKET_SUCCESS && status != SSL_TICKET_SUCCESS_RENEW)
        return app == SSL_TICKET_RETURN_ABORT ? app : SSL_TICKET_RETURN_IGNORE_RENEW;
    if (app != SSL_TICKET_RETURN_USE && app != SSL_TICKET_RETURN_USE_RENEW)
        return app;
    m2_conn *c = m2_conn_get(ssl, 1);
    if (c == NULL)
        return SSL_TICKET_RETURN_ABORT;
    if (c->policy == NULL)
        m2_conn_use_policy(c, arg);
    m2mtls_verdict v;
    unsigned char sha[32];
    int valid = m2_session_label_valid(c->policy, sess, NULL, M2MTLS_RESPONDER, &v, sha, &c->resumed);
    m2mtls_verdict_clear(&v);
    /* (Not renewed unless asked: an OpenSSL client that gets a new ticket
     * makes its old session object non-resumable.) */
    return valid ? app : SSL_TICKET_RETURN_IGNORE_RENEW;
}

int m2_install_ticket_cb(SSL_CTX *ctx, m2_ctx_state *st)
{
    return SSL_CTX_set_session_ticket_cb(ctx, ticket_gen, ticket_dec, st);
}
