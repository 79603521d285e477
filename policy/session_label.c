/* SPDX-License-Identifier: Apache-2.0 */
/* The label record a session carries, and its re-check on resumption (the
 * labels of connections: connection.c; the server's ticket callbacks that
 * put the record into tickets: tickets.c).
 *
 * OpenSSL runs no verification on a resumed handshake, so the label travels
 * in the session itself (ticket app data, which is also kept in the session
 * cache and in serialized client sessions) and is re-checked against the
 * current policy whenever a session is resumed: the stored peer certificate
 * must still select exactly that identity, through an anchor with the same
 * certificate as the one that verified the chain. What the full handshake
 * proved of the certificate alone (its chain, its encoding, its keyUsage) is
 * not proven again: the session holds the same bytes. A connection keeps its
 * last re-check that passed (m2_label_memo), so the checks of one handshake
 * (a client's at its start, at its ClientHello and at its end; a server's at
 * its ticket and at its end) evaluate once.
 *
 * What a full handshake proved is the record below: the peer id and the
 * SHA-256 of the anchor certificate that verified the chain. An
 * application's own ticket data (m2mtls_ctx_set_session_ticket_cb, or the
 * preload chaining a program's callbacks) follows the record; the
 * application's callbacks see only their own part.
 *
 * A leaf of the context and connection files: it knows sessions, proofs and
 * the verifier, nothing of connections or contexts. */
#include <stdlib.h>
#include <string.h>
#include "internal.h"

/* The record's version. A resumption re-checks the label against the
 * current policy, but not what the full handshake proved of the certificate
 * alone (its chain, encoding and keyUsage): a release that tightens those
 * rules changes the version, so that sessions made under the old rules stop
 * resuming instead of keeping them until they expire. */
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
    X509_free(memo->peer);
    EVP_PKEY_free(memo->rpk);
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
    return memo != NULL && memo->sess == sess && memo->peer == SSL_SESSION_get0_peer(sess)
           && memo->rpk == m2_rpk_of_session(sess) && memo->policy == p && memo->role == role
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
    X509 *peer = SSL_SESSION_get0_peer(sess);
    EVP_PKEY *rpk = m2_rpk_of_session(sess);
    memo->peer = peer != NULL && X509_up_ref(peer) ? peer : NULL;
    memo->rpk = rpk != NULL && EVP_PKEY_up_ref(rpk) ? rpk : NULL;
    if (memo->peer != peer || memo->rpk != rpk || !SSL_SESSION_up_ref(sess)) {
        m2_label_memo_clear(memo);
        return;
    }
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

/* ---- for the ticket callbacks (tickets.c) ------------------------------------------ */

unsigned char *m2_session_app_part(SSL_SESSION *sess, size_t *len)
{
    return app_part(sess, len);
}

int m2_session_set_appdata(SSL_SESSION *sess, const m2_proof *proof, const void *app, size_t app_len)
{
    return write_appdata(sess, proof, app, app_len);
}

int m2_session_read_label(SSL_SESSION *sess, m2_proof *out)
{
    label_rec rec;
    memset(out, 0, sizeof *out);
    if (!read_label(sess, &rec))
        return 0;
    out->how = M2_PROVEN_RESUMED;
    out->key = rec.key;
    out->peer_id = m2_strdup(rec.peer_id);
    memcpy(out->anchor_sha256, rec.sha, 32);
    return 1;
}
