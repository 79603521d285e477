/* SPDX-License-Identifier: Apache-2.0 */
/* Per-connection identity labels, and how they survive resumption (the
 * labels themselves: connection.c).
 *
 * OpenSSL runs no verification on a resumed handshake, so the label travels
 * in the session itself (ticket app data, which is also kept in the session
 * cache and in serialized client sessions) and is re-checked against the
 * current policy whenever a session is resumed: the stored peer certificate
 * must still select exactly that identity, through an anchor with the same
 * certificate as the one that verified the chain.
 *
 * What a full handshake proved is the record below: the peer id and the
 * SHA-256 of the anchor certificate that verified the chain. An
 * application's own ticket data (m2mtls_ctx_set_session_ticket_cb, or the
 * preload chaining a program's callbacks) follows the record; the
 * application's callbacks see only their own part. */
#include <stdlib.h>
#include <string.h>
#include "internal.h"

#define LABEL_MAGIC "m2mtls-label-1"
#define LABEL_MAGIC_LEN (sizeof LABEL_MAGIC) /* with its NUL */
/* A key identity's record: the same layout, the digest is the key's. */
#define KEY_LABEL_MAGIC "m2mtls-label-k"

typedef struct label_rec {
    const unsigned char *start;   /* the record */
    int key;                      /* a key identity's record */
    const unsigned char *sha;     /* anchor certificate digest; a key identity: the key's SPKI digest */
    const char *peer_id;
    const unsigned char *app;     /* the application's ticket data after the record */
    size_t app_len;
    size_t len;                   /* of the record itself */
} label_rec;

/* Parses the app data of SESS; 0 when it does not start with a label record
 * (then REC->app is all of it). */
static int read_label(SSL_SESSION *sess, label_rec *rec)
{
    void *data = NULL;
    size_t n = 0;
    memset(rec, 0, sizeof *rec);
    if (sess == NULL || !SSL_SESSION_get0_ticket_appdata(sess, &data, &n) || data == NULL || n == 0)
        return 0;
    const unsigned char *d = data;
    rec->app = d;
    rec->app_len = n;
    if (n < LABEL_MAGIC_LEN + 32 + 2)
        return 0;
    rec->key = memcmp(d, KEY_LABEL_MAGIC, LABEL_MAGIC_LEN) == 0;
    if (!rec->key && memcmp(d, LABEL_MAGIC, LABEL_MAGIC_LEN) != 0)
        return 0;
    const unsigned char *id = d + LABEL_MAGIC_LEN + 32;
    const unsigned char *nul = memchr(id, '\0', n - LABEL_MAGIC_LEN - 32);
    if (nul == NULL || nul == id)
        return 0;
    rec->start = d;
    rec->sha = d + LABEL_MAGIC_LEN;
    rec->peer_id = (const char *)id;
    rec->len = (size_t)(nul - d) + 1;
    rec->app = d + rec->len;
    rec->app_len = n - rec->len;
    return 1;
}

/* Sets the app data of SESS to the record of PROOF (or none) followed by APP. */
static int write_appdata(SSL_SESSION *sess, const m2_proof *proof, const void *app, size_t app_len)
{
    size_t id_len = proof != NULL ? strlen(proof->peer_id) + 1 : 0;
    size_t head = proof != NULL ? LABEL_MAGIC_LEN + 32 + id_len : 0;
    if (head + app_len == 0)
        return SSL_SESSION_set1_ticket_appdata(sess, NULL, 0);
    unsigned char *rec = malloc(head + app_len);
    if (rec == NULL)
        return 0; /* the session then resumes without a label: fails closed */
    if (proof != NULL) {
        memcpy(rec, proof->key ? KEY_LABEL_MAGIC : LABEL_MAGIC, LABEL_MAGIC_LEN);
        memcpy(rec + LABEL_MAGIC_LEN, proof->anchor_sha256, 32);
        memcpy(rec + LABEL_MAGIC_LEN + 32, proof->peer_id, id_len);
    }
    if (app_len > 0)
        memcpy(rec + head, app, app_len);
    int ok = SSL_SESSION_set1_ticket_appdata(sess, rec, head + app_len);
    free(rec);
    return ok;
}

/* Copies the application's part of SESS's app data (NULL when none). */
static unsigned char *app_part(SSL_SESSION *sess, size_t *len)
{
    label_rec rec;
    read_label(sess, &rec);
    *len = rec.app_len;
    if (rec.app_len == 0)
        return NULL;
    unsigned char *copy = malloc(rec.app_len);
    if (copy != NULL)
        memcpy(copy, rec.app, rec.app_len);
    else
        *len = 0;
    return copy;
}

int m2_session_store_label(SSL_SESSION *sess, const m2_proof *proof)
{
    if (sess == NULL || proof == NULL || proof->how == M2_PROVEN_NONE)
        return 0;
    size_t n;
    unsigned char *app = app_part(sess, &n);
    int ok = write_appdata(sess, proof, app, n);
    free(app);
    return ok;
}

/* A key identity's session: the key it holds (the carrier certificate, or
 * the raw public key) is evaluated again as in a full handshake, without the
 * proof of possession the handshake that made the session gave; the verdict
 * must be a key identity's, for the same key. */
static int key_label_eval(const m2mtls_policy *p, SSL_SESSION *sess, const label_rec *rec, const char *expected,
                          int role, m2mtls_verdict *out)
{
    X509 *peer = SSL_SESSION_get0_peer(sess);
    m2_eval_opts o = { .role = role, .expected = expected, .resumed = 1,
                       .rpk = peer == NULL ? m2_rpk_of_session(sess) : NULL };
    if (!m2_evaluate(p, peer, NULL, &o, out, NULL))
        return 0;
    if (!out->accepted || !m2_verdict_by_key(out))
        return 1; /* the caller says why, or that the kind changed */
    unsigned char sha[32];
    if (m2_peer_key_sha256(peer, o.rpk, sha) && memcmp(sha, rec->sha, 32) == 0)
        return 1;
    m2mtls_verdict_clear(out);
    out->reason = m2_strdup("the session holds another key than the one its label records");
    out->code = M2MTLS_REJECT_RESUMPTION;
    return out->reason != NULL;
}

/* ---- the memo of a connection's last re-check ---------------------------------------- */

void m2_label_memo_clear(m2_label_memo *memo)
{
    SSL_SESSION_free(memo->sess);
    free(memo->expected);
    free(memo->rec);
    m2mtls_verdict_clear(&memo->v);
    memset(memo, 0, sizeof *memo);
}

static int same_text(const char *a, const char *b)
{
    return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

static int memo_holds(const m2_label_memo *memo, const m2mtls_policy *p, SSL_SESSION *sess, const label_rec *rec,
                      const char *expected, int role)
{
    return memo != NULL && memo->sess == sess && memo->policy == p && memo->role == role
           && same_text(memo->expected, expected) && memo->rec_len == rec->len
           && memcmp(memo->rec, rec->start, rec->len) == 0;
}

/* A copy of the accepted verdict FROM into TO; 0 when out of memory. */
static int verdict_copy(m2mtls_verdict *to, const m2mtls_verdict *from)
{
    memset(to, 0, sizeof *to);
    to->peer_id = m2_strdup(from->peer_id);
    to->local_id = from->local_id != NULL ? m2_strdup(from->local_id) : NULL;
    to->cert_name = m2_strdup(from->cert_name);
    to->anchor = from->anchor != NULL ? m2_strdup(from->anchor) : NULL;
    to->chain = from->chain != NULL ? X509_chain_up_ref(from->chain) : NULL;
    to->accepted = to->peer_id != NULL && to->cert_name != NULL && (from->local_id == NULL || to->local_id != NULL)
                   && (from->anchor == NULL || to->anchor != NULL) && (from->chain == NULL || to->chain != NULL);
    if (!to->accepted)
        m2mtls_verdict_clear(to);
    return to->accepted;
}

/* Keeps the accepted verdict V of this re-check in MEMO (nothing when out of memory). */
static void memo_keep(m2_label_memo *memo, const m2mtls_policy *p, SSL_SESSION *sess, const label_rec *rec,
                      const char *expected, int role, const m2mtls_verdict *v)
{
    m2_label_memo_clear(memo);
    if (!SSL_SESSION_up_ref(sess))
        return;
    memo->sess = sess;
    memo->policy = p;
    memo->role = role;
    memo->expected = expected != NULL ? m2_strdup(expected) : NULL;
    memo->rec = malloc(rec->len);
    if ((expected != NULL && memo->expected == NULL) || memo->rec == NULL || !verdict_copy(&memo->v, v)) {
        m2_label_memo_clear(memo);
        return;
    }
    memcpy(memo->rec, rec->start, rec->len);
    memo->rec_len = rec->len;
    memcpy(memo->sha, rec->sha, 32);
}

/* The re-check proper (no memo). */
static int label_valid(const m2mtls_policy *p, SSL_SESSION *sess, const label_rec *rec, const char *expected,
                       int role, m2mtls_verdict *out, unsigned char anchor_sha256[32])
{
    X509 *peer = SSL_SESSION_get0_peer(sess);
    int ran;
    if (rec->key) {
        ran = key_label_eval(p, sess, rec, expected, role, out);
    } else {
        m2_eval_opts o = { .role = role, .expected = expected, .resumed = 1, .resumed_anchor_sha256 = rec->sha };
        ran = m2_evaluate(p, peer, NULL, &o, out, NULL);
    }
    if (!ran)
        return 0;
    if (!out->accepted) {
        m2_buf b = { 0 };
        m2_buf_addf(&b, "resumed session of '%s' is not authorized by the current policy: %s", rec->peer_id,
                    out->reason ? out->reason : "");
        free(out->reason);
        out->reason = m2_buf_take(&b);
        out->code = M2MTLS_REJECT_RESUMPTION;
        return 0;
    }
    if (strcmp(out->peer_id, rec->peer_id) != 0) {
        m2_buf b = { 0 };
        m2_buf_addf(&b, "resumed session belongs to '%s', the current policy names '%s'", rec->peer_id, out->peer_id);
        m2mtls_verdict_clear(out);
        out->reason = m2_buf_take(&b);
        out->code = M2MTLS_REJECT_RESUMPTION;
        return 0;
    }
    if (m2_verdict_by_key(out) != rec->key) {
        /* A session made by a certificate association resumes only as one,
         * and one made by a key as a key identity: what the label records
         * (the anchor's digest, or the key's) means nothing to the other. */
        m2_buf b = { 0 };
        m2_buf_addf(&b, "resumed session of '%s' was made by its %s; the current policy identifies it by %s",
                    rec->peer_id, rec->key ? "key" : "certificate", out->cert_name);
        m2mtls_verdict_clear(out);
        out->reason = m2_buf_take(&b);
        out->code = M2MTLS_REJECT_RESUMPTION;
        return 0;
    }
    memcpy(anchor_sha256, rec->sha, 32);
    return 1;
}

int m2_session_label_valid(const m2mtls_policy *p, SSL_SESSION *sess, const char *expected, int role,
                           m2mtls_verdict *out, unsigned char anchor_sha256[32], m2_label_memo *memo)
{
    memset(out, 0, sizeof *out);
    label_rec rec;
    if (p == NULL || !read_label(sess, &rec)) {
        out->reason = m2_strdup("resumed session carries no m2mtls identity label");
        out->code = M2MTLS_REJECT_RESUMPTION;
        return 0;
    }
    if (memo_holds(memo, p, sess, &rec, expected, role) && verdict_copy(out, &memo->v)) {
        memcpy(anchor_sha256, memo->sha, 32);
        return 1;
    }
    if (!label_valid(p, sess, &rec, expected, role, out, anchor_sha256))
        return 0;
    if (memo != NULL)
        memo_keep(memo, p, sess, &rec, expected, role, out);
    return 1;
}

/* ---- tickets (servers) ------------------------------------------------------------ */

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
    unsigned char *app = app_part(sess, &n);
    int ok = 1;
    if (app_gen != NULL) {
        /* The application sees (and may replace) its own data only. */
        ok = write_appdata(sess, NULL, app, n) && app_gen(ssl, app_arg);
        free(app);
        app = app_part(sess, &n);
    }
    ok = ok && write_appdata(sess, proof, app, n);
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
    label_rec rec;
    m2_proof saved = { 0 };
    if (read_label(sess, &rec)) {
        saved.how = M2_PROVEN_RESUMED;
        saved.key = rec.key;
        saved.peer_id = m2_strdup(rec.peer_id);
        memcpy(saved.anchor_sha256, rec.sha, 32);
    }
    size_t n;
    unsigned char *app = app_part(sess, &n);
    SSL_TICKET_RETURN r = SSL_TICKET_RETURN_ABORT;
    if ((saved.how == M2_PROVEN_NONE || saved.peer_id != NULL) && write_appdata(sess, NULL, app, n)) {
        r = app_dec(ssl, sess, keyname, keyname_len, status, app_arg);
        free(app);
        app = app_part(sess, &n);
        if (!write_appdata(sess, saved.how != M2_PROVEN_NONE ? &saved : NULL, app, n))
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
