/* SPDX-License-Identifier: Apache-2.0 */
/* The verdict: which candidate associations survive RFC 5280 path validation
 * against their own anchor, and whether exactly one identity results. Uses
 * the matcher, key identities (keypeer.c), the parameters and the verdict
 * record (verdict.c), all below it. */
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include "internal.h"

/* Runs for every event of an anchor check. Two things happen here:
 * - OpenSSL's refusal of a scheme-less URI under URI name constraints (an
 *   Absolute AE-ID) is evaluated again by the AE-ID's host (ncons.c): the
 *   only error ever reinterpreted;
 * - the application's own verify callback runs inside our validation: it may
 *   refuse more than the policy does, never accept what the policy refused.
 *   Errors it queues are its own: they are kept below our mark (see
 *   m2_evaluate), so that dropping ours never drops them. */
static int verify_cb(int ok, X509_STORE_CTX *xs)
{
    if (!ok && X509_STORE_CTX_get_error(xs) == X509_V_ERR_UNSUPPORTED_NAME_SYNTAX) {
        int err = m2_ae_name_constraints(xs);
        if (err == X509_V_OK) {
            X509_STORE_CTX_set_error(xs, X509_V_OK);
            return 1; /* the name is inside the constraints: no event left to report */
        }
        X509_STORE_CTX_set_error(xs, err);
    }
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    SSL_verify_cb app = ssl != NULL ? SSL_get_verify_callback(ssl) : NULL;
    if (app == NULL)
        return ok;
    ERR_pop_to_mark();
    int r = app(ok, xs);
    /* Say who refused: OpenSSL would record "unspecified" (and the reason
     * and its class would blame the chain). */
    if (ok && !r && X509_STORE_CTX_get_error(xs) == X509_V_OK)
        X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
    ERR_set_mark();
    return ok ? r : 0;
}

typedef struct anchor_result {
    uint32_t anchor;
    int      ok;
    STACK_OF(X509) *chain;
    int      err;
} anchor_result;

static int name_constraint_error(int err)
{
    return err == X509_V_ERR_PERMITTED_VIOLATION || err == X509_V_ERR_EXCLUDED_VIOLATION
           || err == X509_V_ERR_UNSUPPORTED_NAME_SYNTAX || err == X509_V_ERR_UNSUPPORTED_CONSTRAINT_TYPE
           || err == X509_V_ERR_UNSUPPORTED_CONSTRAINT_SYNTAX || err == X509_V_ERR_SUBTREE_MINMAX;
}

/* OpenSSL's security levels 1..5: bits of security of keys and signatures. */
static const int level_bits[] = { 80, 112, 128, 192, 256 };

static int strength_error(int err)
{
    return err == X509_V_ERR_EE_KEY_TOO_SMALL || err == X509_V_ERR_CA_KEY_TOO_SMALL
           || err == X509_V_ERR_CA_MD_TOO_WEAK;
}

/* OpenSSL skips an issuer whose extensions are invalid and then reports no
 * issuer at all: name the one that was sent, and why it could not serve. */
static void describe_invalid_issuer(m2_buf *why, X509 *at, STACK_OF(X509) *untrusted)
{
    for (int i = 0; at != NULL && i < sk_X509_num(untrusted); i++) {
        X509 *c = sk_X509_value(untrusted, i);
        if (X509_NAME_cmp(X509_get_subject_name(c), X509_get_issuer_name(at)) != 0)
            continue;
        m2_buf mine = { 0 };
        if (m2_cert_extensions_invalid(c, &mine)) {
            char subject[256];
            X509_NAME_oneline(X509_get_subject_name(c), subject, sizeof subject);
            m2_buf_addf(why, "; the chain's %s cannot be its issuer: %s", subject, mine.s ? mine.s : "");
        }
        free(mine.s);
    }
}

static void describe_failure(m2_buf *why, const m2mtls_policy *p, uint32_t anchor, X509_STORE_CTX *xs, int err,
                             int level)
{
    int depth = X509_STORE_CTX_get_error_depth(xs);
    X509 *at = X509_STORE_CTX_get_current_cert(xs);
    m2_buf_addf(why, "anchor '%s': %s%s", p->anchors[anchor].name,
                name_constraint_error(err) ? "name constraint violation: " : "",
                err == X509_V_OK || err == X509_V_ERR_APPLICATION_VERIFICATION
                    ? "refused by the application's verify callback"
                    : X509_verify_cert_error_string(err));
    if (at != NULL) {
        char subject[256];
        X509_NAME_oneline(X509_get_subject_name(at), subject, sizeof subject);
        m2_buf_addf(why, " (depth %d, %s)", depth, subject);
    }
    if (name_constraint_error(err))
        m2_describe_name_constraints(X509_STORE_CTX_get0_chain(xs), depth, why);
    else if (strength_error(err))
        m2_buf_addf(why, " [security level %d: keys and signatures of at least %d bits]", level,
                    level_bits[level < 1 ? 0 : level > 5 ? 4 : level - 1]);
    else if (err == X509_V_ERR_INVALID_EXTENSION && at != NULL) {
        m2_buf_addf(why, ": ");
        if (!m2_cert_extensions_invalid(at, why))
            m2_buf_addf(why, "inconsistent extensions");
    } else if (err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT || err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY) {
        describe_invalid_issuer(why, at, X509_STORE_CTX_get0_untrusted(xs));
    }
}

static int verify_chain(const m2mtls_policy *p, X509 *leaf, STACK_OF(X509) *untrusted,
                        const m2_eval_opts *o, anchor_result *r, m2_buf *why)
{
    X509_STORE_CTX *xs = X509_STORE_CTX_new();
    if (xs == NULL || !X509_STORE_CTX_init(xs, p->anchors[r->anchor].store, leaf, untrusted)) {
        X509_STORE_CTX_free(xs);
        r->err = X509_V_ERR_OUT_OF_MEM;
        m2_buf_addf(why, "anchor '%s': out of memory", p->anchors[r->anchor].name);
        return 0;
    }
    m2_set_verify_params(xs, p, o);
    if (o->ssl != NULL)
        X509_STORE_CTX_set_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx(), o->ssl);
    X509_STORE_CTX_set_verify_cb(xs, verify_cb);
    int ok = X509_verify_cert(xs) == 1;
    m2_buf names = { 0 };
    if (ok && !m2_app_name_checks(leaf, o, &names)) {
        m2_buf_addf(why, "anchor '%s': %s", p->anchors[r->anchor].name, names.s ? names.s : "out of memory");
        r->err = X509_V_ERR_HOSTNAME_MISMATCH;
    } else if (ok) {
        r->chain = X509_STORE_CTX_get1_chain(xs);
        r->ok = r->chain != NULL;
    } else {
        r->err = X509_STORE_CTX_get_error(xs);
        describe_failure(why, p, r->anchor, xs, r->err, m2_effective_security_level(o));
        if (r->err == X509_V_OK)
            r->err = X509_V_ERR_APPLICATION_VERIFICATION;
    }
    free(names.s);
    X509_STORE_CTX_free(xs);
    return r->ok;
}

static const char *candidate_id(const m2mtls_policy *p, const m2_match *m, const m2_candidate *c)
{
    return c->peer != M2_NONE ? p->peers[c->peer].id : m->pfc_id;
}

static int fill_verdict(const m2mtls_policy *p, const m2_match *m, const m2_candidate *c,
                        anchor_result *r, m2mtls_verdict *out)
{
    const m2_peer *peer = c->peer != M2_NONE ? &p->peers[c->peer] : NULL;
    const char *local = peer != NULL && peer->as != NULL ? peer->as : p->local_id;
    out->peer_id = m2_strdup(candidate_id(p, m, c));
    out->local_id = m2_strdup(local);
    out->anchor = m2_strdup(p->anchors[c->anchor].name);
    if (peer != NULL) {
        out->cert_name = m2_strdup(peer->name);
    } else if ((out->cert_name = malloc(strlen(m->pfc_id) + 5)) != NULL) {
        memcpy(out->cert_name, "uri:", 4);
        strcpy(out->cert_name + 4, m->pfc_id);
    }
    out->chain = r->chain;
    r->chain = NULL;
    out->accepted = out->peer_id != NULL && (local == NULL || out->local_id != NULL)
                    && out->anchor != NULL && out->cert_name != NULL;
    return out->accepted;
}

/* The class of a failed path validation. X509_V_ERR_APPLICATION_VERIFICATION
 * is what verify_chain records when the application's callback refused. */
static m2mtls_reject_code chain_failure_code(int err)
{
    switch (err) {
    case X509_V_ERR_APPLICATION_VERIFICATION:
    case X509_V_ERR_HOSTNAME_MISMATCH:     /* the application's own host, e-mail */
    case X509_V_ERR_EMAIL_MISMATCH:        /* and IP address checks (params.c)  */
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return M2MTLS_REJECT_APPLICATION;
    case X509_V_ERR_EE_KEY_TOO_SMALL:      /* the strength floor (params.c) */
    case X509_V_ERR_CA_KEY_TOO_SMALL:
    case X509_V_ERR_CA_MD_TOO_WEAK:
    case X509_V_ERR_INVALID_EXTENSION:
        return M2MTLS_REJECT_PROFILE;
    case X509_V_ERR_OUT_OF_MEM:
        return M2MTLS_REJECT_INTERNAL;
    case X509_V_ERR_CERT_REVOKED:
    case X509_V_ERR_UNABLE_TO_GET_CRL:
    case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
    case X509_V_ERR_CRL_NOT_YET_VALID:
    case X509_V_ERR_CRL_HAS_EXPIRED:
    case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
    case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
    case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
    case X509_V_ERR_DIFFERENT_CRL_SCOPE:
    case X509_V_ERR_CRL_PATH_VALIDATION_ERROR:
        return M2MTLS_REJECT_REVOCATION;
    default:
        return M2MTLS_REJECT_ROOT_OF_TRUST;
    }
}

static int reject(m2mtls_verdict *out, m2_buf *why, int *x509_err, int err, m2mtls_reject_code code)
{
    out->accepted = 0;
    out->reason = m2_buf_take(why);
    out->code = code;
    if (out->reason == NULL) {
        out->reason = m2_strdup("out of memory");
        out->code = M2MTLS_REJECT_INTERNAL;
    }
    if (x509_err != NULL)
        *x509_err = err;
    return out->reason != NULL;
}

/* Checks every distinct anchor of the candidates once; collects the
 * identities whose anchor validated the chain. */
static int check_anchors(const m2mtls_policy *p, X509 *leaf, STACK_OF(X509) *untrusted, const m2_eval_opts *o,
                         const m2_match *m, anchor_result *res, size_t *n_res, m2_buf *why)
{
    *n_res = 0;
    for (size_t i = 0; i < m->n; i++) {
        size_t j = 0;
        while (j < *n_res && res[j].anchor != m->cand[i].anchor)
            j++;
        if (j < *n_res)
            continue;
        anchor_result *r = &res[(*n_res)++];
        memset(r, 0, sizeof *r);
        r->anchor = m->cand[i].anchor;
        if (*n_res > 1 && why->len > 0)
            m2_buf_addf(why, "; ");
        if (o->resumed_anchor_sha256 != NULL) {
            r->ok = memcmp(p->anchors[r->anchor].sha256, o->resumed_anchor_sha256, 32) == 0;
            if (!r->ok)
                m2_buf_addf(why, "anchor '%s' is not the anchor that verified the resumed session",
                            p->anchors[r->anchor].name);
        } else {
            verify_chain(p, leaf, untrusted, o, r, why);
        }
    }
    return 1;
}

/* The certificate's names select the associations; each is verified to its
 * own anchor; exactly one identity must result. */
static int evaluate_names(const m2mtls_policy *p, X509 *leaf, STACK_OF(X509) *untrusted,
                          const m2_eval_opts *o, m2mtls_verdict *out, int *x509_err)
{
    memset(out, 0, sizeof *out);
    m2_buf why = { 0 };
    m2_match m;
    char *reason;
    if (!m2_match_names(p, leaf, o->expected, &m, &reason)) {
        out->reason = reason != NULL ? reason : m2_strdup("out of memory");
        out->code = reason != NULL ? M2MTLS_REJECT_NAME : M2MTLS_REJECT_INTERNAL;
        /* The Certificate Name check failed: libssl answers with a bad_certificate alert. */
        if (x509_err != NULL)
            *x509_err = X509_V_ERR_HOSTNAME_MISMATCH;
        return out->reason != NULL;
    }
    /* Distinct anchors are few (bounded by the anchor lines); candidates may be many. */
    size_t cap = m.n < p->n_anchors ? m.n : p->n_anchors;
    anchor_result *res = calloc(cap ? cap : 1, sizeof *res);
    size_t n_res = 0;
    if (res == NULL) {
        m2_match_free(&m);
        m2_buf_addf(&why, "out of memory");
        return reject(out, &why, x509_err, X509_V_ERR_OUT_OF_MEM, M2MTLS_REJECT_INTERNAL);
    }
    check_anchors(p, leaf, untrusted, o, &m, res, &n_res, &why);

    const m2_candidate *found = NULL;
    anchor_result *found_r = NULL;
    int ambiguous = 0, first_err = X509_V_ERR_APPLICATION_VERIFICATION;
    for (size_t i = 0; i < m.n; i++) {
        anchor_result *r = res;
        while (r->anchor != m.cand[i].anchor)
            r++;
        if (!r->ok) {
            if (first_err == X509_V_ERR_APPLICATION_VERIFICATION && r->err != 0)
                first_err = r->err;
            continue;
        }
        if (found == NULL) {
            found = &m.cand[i];
            found_r = r;
        } else if (strcmp(candidate_id(p, &m, found), candidate_id(p, &m, &m.cand[i])) != 0) {
            if (!ambiguous) {
                why.len = 0;
                m2_buf_addf(&why, "certificate matches more than one identity: '%s'", candidate_id(p, &m, found));
            }
            m2_buf_addf(&why, ", '%s'", candidate_id(p, &m, &m.cand[i]));
            ambiguous = 1;
        }
    }
    int ran;
    if (found == NULL) {
        /* Name the associations that were tried in front of the anchor failures. */
        m2_buf head = { 0 };
        m2_buf_addf(&head, "certificate [%s] matches peer '%s'%s but fails its Root of Trust: %s",
                    m.names ? m.names : "", candidate_id(p, &m, &m.cand[0]),
                    m.n > 1 ? " (and others)" : "", why.s ? why.s : "");
        free(why.s);
        /* On resumption no chain is verified: the anchor itself changed. */
        m2mtls_reject_code code = o->resumed_anchor_sha256 != NULL ? M2MTLS_REJECT_ROOT_OF_TRUST
                                                                   : chain_failure_code(first_err);
        ran = reject(out, &head, x509_err, first_err, code);
    } else if (ambiguous) {
        ran = reject(out, &why, x509_err, X509_V_ERR_APPLICATION_VERIFICATION, M2MTLS_REJECT_AMBIGUOUS);
    } else {
        free(why.s);
        if (!fill_verdict(p, &m, found, found_r, out)) {
            m2mtls_verdict_clear(out);
            m2_buf oom = { 0 };
            m2_buf_addf(&oom, "out of memory");
            ran = reject(out, &oom, x509_err, X509_V_ERR_OUT_OF_MEM, M2MTLS_REJECT_INTERNAL);
        } else {
            ran = 1;
            if (x509_err != NULL)
                *x509_err = X509_V_OK;
        }
    }
    for (size_t i = 0; i < n_res; i++)
        sk_X509_pop_free(res[i].chain, X509_free);
    free(res);
    m2_match_free(&m);
    return ran;
}

/* A responder's key identity (keypeer.c): the carrier's names must not
 * select another identity as well. */
static int key_not_ambiguous(const m2mtls_policy *p, X509 *leaf, STACK_OF(X509) *untrusted,
                             const m2_eval_opts *o, m2mtls_verdict *out, int *x509_err)
{
    m2mtls_verdict by_name;
    if (!evaluate_names(p, leaf, untrusted, o, &by_name, NULL)) {
        m2mtls_verdict_clear(out);
        return 0;
    }
    int two = by_name.accepted && strcmp(by_name.peer_id, out->peer_id) != 0;
    m2_buf why = { 0 };
    if (two)
        m2_buf_addf(&why, "certificate matches more than one identity: '%s' (its key, %s), '%s' (its name %s, "
                          "anchor '%s')", out->peer_id, out->cert_name, by_name.peer_id, by_name.cert_name,
                    by_name.anchor);
    m2mtls_verdict_clear(&by_name);
    if (!two)
        return 1;
    m2mtls_verdict_clear(out);
    return reject(out, &why, x509_err, X509_V_ERR_APPLICATION_VERIFICATION, M2MTLS_REJECT_AMBIGUOUS);
}

static int evaluate(const m2mtls_policy *p, X509 *leaf, STACK_OF(X509) *untrusted,
                    const m2_eval_opts *o, m2mtls_verdict *out, int *x509_err)
{
    memset(out, 0, sizeof *out);
    m2_buf why = { 0 };
    if (leaf == NULL && o->rpk == NULL) {
        m2_buf_addf(&why, "peer sent no certificate");
        return reject(out, &why, x509_err, X509_V_ERR_APPLICATION_VERIFICATION, M2MTLS_REJECT_NO_CERTIFICATE);
    }
    /* Before anything that reads the extensions: OpenSSL answers for an
     * invalid certificate as if it had none (keyUsage 0, no names). A
     * session's certificate passed both when its label was made, and they
     * read only the certificate: not again (they cost OpenSSL's extension
     * cache of the certificate decoded from the ticket, the largest part of
     * a resumption's re-check). */
    if (leaf != NULL && !o->resumed && m2_cert_extensions_invalid(leaf, &why))
        return reject(out, &why, x509_err, X509_V_ERR_INVALID_EXTENSION, M2MTLS_REJECT_PROFILE);
    if (leaf != NULL && !o->resumed && (X509_get_extension_flags(leaf) & EXFLAG_KUSAGE)
        && !(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE)) {
        m2_buf_addf(&why, "certificate keyUsage lacks digitalSignature");
        return reject(out, &why, x509_err, X509_V_ERR_KEYUSAGE_NO_DIGITAL_SIGNATURE, M2MTLS_REJECT_PROFILE);
    }
    int by_key;
    if (!m2_key_evaluate(p, leaf, untrusted, o, out, x509_err, &by_key))
        return 0;
    if (!by_key) {
        int ran = evaluate_names(p, leaf, untrusted, o, out, x509_err);
        if (ran && o->expected == NULL) /* an initiator asked for one certificate association */
            m2_key_note_unknown(p, leaf, out);
        return ran;
    }
    if (!out->accepted || o->expected != NULL || leaf == NULL)
        return 1;
    return key_not_ambiguous(p, leaf, untrusted, o, out, x509_err);
}

/* OpenSSL pushes errors while it decodes and verifies; they are ours to
 * drop, and the application's (queued before, or by its verify callback in
 * between) stay: everything runs above a mark. */
int m2_evaluate(const m2mtls_policy *p, X509 *leaf, STACK_OF(X509) *untrusted,
                const m2_eval_opts *o, m2mtls_verdict *out, int *x509_err)
{
    ERR_set_mark();
    int ran = evaluate(p, leaf, untrusted, o, out, x509_err);
    ERR_pop_to_mark();
    return ran;
}

/* Evaluates CERT, or KEY as a raw public key when CERT is NULL (WHAT names
 * the one expected, for messages). */
static int check(const char *fn, const char *what, const m2mtls_policy *p, X509 *cert, EVP_PKEY *key,
                 STACK_OF(X509) *chain, const char *peer_id, m2mtls_role role, time_t at, int security_level,
                 m2mtls_verdict *out)
{
    if (out == NULL) {
        m2_set_error("%s: no verdict to fill", fn);
        return 0;
    }
    memset(out, 0, sizeof *out);
    if (p == NULL || (cert == NULL && key == NULL)) {
        m2_set_error("%s: %s is NULL", fn, p == NULL ? "the policy" : what);
        return 0;
    }
    if (role != M2MTLS_RESPONDER && role != M2MTLS_INITIATOR) {
        m2_set_error("%s: role must be M2MTLS_RESPONDER or M2MTLS_INITIATOR", fn);
        return 0;
    }
    if (security_level > 5) {
        m2_set_error("%s: security level %d: OpenSSL's levels are 0 to 5", fn, security_level);
        return 0;
    }
    /* The level a handshake on a default context of this OpenSSL applies. */
    m2_eval_opts o = { .role = role, .expected = peer_id, .at = at, .rpk = cert == NULL ? key : NULL,
                       .security_level = security_level >= 0 ? security_level : m2_default_security_level() };
    if (!m2_evaluate(p, cert, chain, &o, out, NULL)) {
        m2_set_error("%s: out of memory", fn);
        return 0;
    }
    return 1;
}

int m2mtls_policy_check_cert_ex(const m2mtls_policy *p, X509 *cert, STACK_OF(X509) *chain,
                                const char *peer_id, m2mtls_role role, time_t at, int security_level,
                                m2mtls_verdict *out)
{
    return check("m2mtls_policy_check_cert", "the certificate", p, cert, NULL, chain, peer_id, role, at,
                 security_level, out);
}

int m2_policy_check_key(const m2mtls_policy *p, EVP_PKEY *key, const char *peer_id, m2mtls_role role,
                        int security_level, m2mtls_verdict *out)
{
    return check("m2mtls inspect", "the key", p, NULL, key, NULL, peer_id, role, 0, security_level, out);
}

int m2mtls_policy_check_cert(const m2mtls_policy *p, X509 *cert, STACK_OF(X509) *chain,
                             const char *peer_id, m2mtls_role role, time_t at, m2mtls_verdict *out)
{
    return m2mtls_policy_check_cert_ex(p, cert, chain, peer_id, role, at, -1, out);
}
