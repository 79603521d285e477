/* SPDX-License-Identifier: Apache-2.0 */
/* Key identities: `peer ID key:<ALG>;<BASE64URL>` (TS-0003: a raw public
 * key named by its RFC 6920 key id). The key is the identity: no anchor, no
 * certificate name.
 *
 * The peer presents its key as an RFC 7250 raw public key (OpenSSL >= 3.2,
 * when both sides negotiated it: rpk.c) or in a certificate, the carrier
 * (every OpenSSL; devices usually send a self-signed one). What a carrier
 * is checked for (README "Raw public keys"): its public key, of at least the
 * strength floor (security level 2); its extensions decode and a keyUsage,
 * when present, allows digitalSignature (as every peer certificate:
 * verifier.c). Its issuer, signature, names, validity and any chain sent
 * with it are not looked at: they are not what authenticates it, the key is,
 * and the handshake's CertificateVerify proves the peer holds it. So a
 * device's self-signed certificate and a server's CA-issued one carry a key
 * alike, and the same association works over RFC 7250 and over a carrier.
 *
 * A certificate whose key is configured for a key peer is that peer's
 * carrier: when its names select another identity too, it selects two and
 * is refused (verifier.c). */
#include <stdlib.h>
#include <string.h>
#include <openssl/x509v3.h>
#include "internal.h"

/* OpenSSL's security levels 1..5: bits of security of keys. */
static const int level_bits[] = { 80, 112, 128, 192, 256 };

static int reject(m2mtls_verdict *out, m2_buf *why, m2mtls_reject_code code, int *x509_err, int err)
{
    out->accepted = 0;
    out->reason = m2_buf_take(why);
    out->code = out->reason != NULL ? code : M2MTLS_REJECT_INTERNAL;
    if (x509_err != NULL)
        *x509_err = err;
    return out->reason != NULL;
}

/* "key:<ALG>;<BASE64URL>" of SHA in the truncation ALG, into BUF. */
static const char *key_text(const unsigned char sha[32], const char *alg, char *buf, size_t len)
{
    char id[M2_KEYID_TEXT];
    snprintf(buf, len, "key:%s", m2_keyid_format(sha, alg, id, sizeof id));
    return buf;
}

/* The hash name of a key peer's id ("sha-256", ...), from its text. */
static const char *peer_alg(const m2_peer *peer, char *buf, size_t len)
{
    size_t n = strcspn(peer->name + 4, ";");
    snprintf(buf, len, "%.*s", (int)n, peer->name + 4);
    return buf;
}

/* Keys below the strength floor (security level 2 at least: 112 bits). */
static int strong_enough(EVP_PKEY *key, const m2_eval_opts *o, m2_buf *why)
{
    int level = m2_effective_security_level(o);
    int need = level_bits[level < 1 ? 0 : level > 5 ? 4 : level - 1];
    int bits = EVP_PKEY_get_security_bits(key);
    if (bits >= need)
        return 1;
    m2_buf_addf(why, "the peer's key is too weak: %s of %d bits gives %d bits of security [security level %d: keys "
                     "of at least %d bits]", EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "key",
                EVP_PKEY_get_bits(key), bits, level, need);
    return 0;
}

/* A store context for the application's callback: the carrier, or (OpenSSL
 * >= 3.2) the raw public key. */
static int init_for_app(X509_STORE_CTX *xs, X509_STORE *store, X509 *leaf, STACK_OF(X509) *untrusted,
                        EVP_PKEY *rpk)
{
    if (leaf != NULL)
        return X509_STORE_CTX_init(xs, store, leaf, untrusted);
#if OPENSSL_VERSION_NUMBER >= 0x30200000L
    return rpk != NULL && X509_STORE_CTX_init_rpk(xs, store, rpk);
#else
    (void)rpk;
    return 0;
#endif
}

/* The application's verify callback may refuse a key identity too, as it may
 * refuse any chain (README "What the policy owns"): it sees the carrier at
 * depth 0 (or, for a raw public key, no certificate) with no error. Errors
 * it queues are its own: they stay below the caller's mark. */
static int app_accepts(X509 *leaf, STACK_OF(X509) *untrusted, const m2_eval_opts *o)
{
    SSL_verify_cb app = o->ssl != NULL ? SSL_get_verify_callback(o->ssl) : NULL;
    if (app == NULL)
        return 1;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *xs = X509_STORE_CTX_new();
    int r = 0;
    if (store != NULL && xs != NULL && init_for_app(xs, store, leaf, untrusted, o->rpk)
        && X509_STORE_CTX_set_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx(), o->ssl)) {
        X509_STORE_CTX_set_current_cert(xs, leaf);
        X509_STORE_CTX_set_error_depth(xs, 0);
        X509_STORE_CTX_set_error(xs, X509_V_OK);
        ERR_pop_to_mark();
        r = app(1, xs);
        ERR_set_mark();
    }
    X509_STORE_CTX_free(xs);
    X509_STORE_free(store);
    return r;
}

static int fill(const m2mtls_policy *p, uint32_t i, X509 *leaf, m2mtls_verdict *out)
{
    const m2_peer *peer = &p->peers[i];
    const char *local = peer->as != NULL ? peer->as : p->local_id;
    out->peer_id = m2_strdup(peer->id);
    out->local_id = m2_strdup(local);
    out->cert_name = m2_strdup(peer->name);
    if (leaf != NULL && (out->chain = sk_X509_new_null()) != NULL) {
        if (X509_up_ref(leaf) && !sk_X509_push(out->chain, leaf))
            X509_free(leaf);
    }
    out->accepted = out->peer_id != NULL && (local == NULL || out->local_id != NULL) && out->cert_name != NULL
                    && (leaf == NULL || sk_X509_num(out->chain) == 1);
    return out->accepted;
}

/* The key peer KEY identifies for this evaluation, M2_NONE with WHY when it
 * is refused, or M2_NONE with *SKIP when certificate names decide instead. */
static uint32_t select_peer(const m2mtls_policy *p, const unsigned char sha[32], int rpk, const m2_eval_opts *o,
                            m2_buf *why, int *skip)
{
    char have[M2_KEYID_TEXT + 8], alg[32];
    *skip = 0;
    if (o->expected == NULL) {
        uint32_t i = m2_policy_find_key(p, sha);
        if (i == M2_NONE && rpk)
            m2_buf_addf(why, "no association matches the peer's raw public key %s",
                        key_text(sha, "sha-256", have, sizeof have));
        *skip = i == M2_NONE && !rpk;
        return i;
    }
    uint32_t i = m2_policy_find_peer(p, o->expected);
    if (i == M2_NONE || p->peers[i].name_type != M2_NAME_KEY) {
        /* The association asked for is a certificate's: its name decides. */
        if (rpk)
            m2_buf_addf(why, "the peer presented a raw public key (%s), but peer '%s' is identified by its "
                             "certificate", key_text(sha, "sha-256", have, sizeof have), o->expected);
        *skip = !rpk;
        return M2_NONE;
    }
    size_t n;
    const unsigned char *id = m2_peer_key_id(&p->peers[i], &n);
    if (memcmp(id, sha, n) == 0)
        return i;
    m2_buf_addf(why, "the peer's key is %s, not %s, the key configured for peer '%s'",
                key_text(sha, peer_alg(&p->peers[i], alg, sizeof alg), have, sizeof have), p->peers[i].name,
                o->expected);
    return M2_NONE;
}

/* Whether a certificate LEAF is decided by its names without its key being
 * looked up: the policy has no key identity, or the association asked for is
 * a certificate's (select_peer would skip; the key's digest is not needed). */
static int names_decide(const m2mtls_policy *p, X509 *leaf, const m2_eval_opts *o)
{
    if (leaf == NULL)
        return 0;
    if (p->n_key_peers == 0)
        return 1;
    if (o->expected == NULL)
        return 0;
    uint32_t i = m2_policy_find_peer(p, o->expected);
    return i == M2_NONE || p->peers[i].name_type != M2_NAME_KEY;
}

int m2_key_evaluate(const m2mtls_policy *p, X509 *leaf, STACK_OF(X509) *untrusted, const m2_eval_opts *o,
                    m2mtls_verdict *out, int *x509_err, int *decided)
{
    EVP_PKEY *key = leaf != NULL ? X509_get0_pubkey(leaf) : o->rpk;
    unsigned char sha[32];
    m2_buf why = { 0 };
    *decided = 0;
    if (key == NULL && leaf != NULL)
        return 1; /* an undecodable key names nothing: the certificate's names decide */
    if (names_decide(p, leaf, o))
        return 1;
    *decided = 1;
    if (key == NULL || !m2_peer_key_sha256(leaf, o->rpk, sha)) {
        m2_buf_addf(&why, "the peer's public key cannot be encoded");
        return reject(out, &why, M2MTLS_REJECT_PROFILE, x509_err, X509_V_ERR_APPLICATION_VERIFICATION);
    }
    int skip;
    uint32_t i = select_peer(p, sha, leaf == NULL, o, &why, &skip);
    if (skip) {
        *decided = 0;
        free(why.s);
        return 1;
    }
    if (i == M2_NONE)
        return reject(out, &why, M2MTLS_REJECT_NAME, x509_err, X509_V_ERR_HOSTNAME_MISMATCH);
    if (!strong_enough(key, o, &why))
        return reject(out, &why, M2MTLS_REJECT_PROFILE, x509_err, X509_V_ERR_EE_KEY_TOO_SMALL);
    m2_buf names = { 0 };
    if (leaf != NULL && !m2_app_name_checks(leaf, o, &names)) {
        m2_buf_addf(&why, "key of peer '%s': %s", p->peers[i].id, names.s ? names.s : "out of memory");
        free(names.s);
        return reject(out, &why, M2MTLS_REJECT_APPLICATION, x509_err, X509_V_ERR_HOSTNAME_MISMATCH);
    }
    free(names.s);
    if (!app_accepts(leaf, untrusted, o)) {
        m2_buf_addf(&why, "key of peer '%s': refused by the application's verify callback", p->peers[i].id);
        return reject(out, &why, M2MTLS_REJECT_APPLICATION, x509_err, X509_V_ERR_APPLICATION_VERIFICATION);
    }
    if (!fill(p, i, leaf, out)) {
        m2mtls_verdict_clear(out);
        m2_buf_addf(&why, "out of memory");
        return reject(out, &why, M2MTLS_REJECT_INTERNAL, x509_err, X509_V_ERR_OUT_OF_MEM);
    }
    if (x509_err != NULL)
        *x509_err = X509_V_OK;
    return 1;
}

void m2_key_note_unknown(const m2mtls_policy *p, X509 *leaf, m2mtls_verdict *out)
{
    unsigned char sha[32];
    char text[M2_KEYID_TEXT + 8];
    if (p->n_key_peers == 0 || out->accepted || out->code != M2MTLS_REJECT_NAME || out->reason == NULL
        || !m2_peer_key_sha256(leaf, NULL, sha))
        return;
    m2_buf b = { 0 };
    m2_buf_addf(&b, "%s; nor is its key %s configured for a key association", out->reason,
                key_text(sha, "sha-256", text, sizeof text));
    char *s = m2_buf_take(&b);
    if (s != NULL) {
        free(out->reason);
        out->reason = s;
    }
}
