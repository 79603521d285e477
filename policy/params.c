/* SPDX-License-Identifier: Apache-2.0 */
/* The verification parameters of an anchor check belong to the policy.
 *
 * Purpose, time, depth, flags and revocation come from the policy and from
 * libm2mtls, never from the application's X509_VERIFY_PARAM: copying it let
 * `openssl s_server -no_check_time` accept an expired certificate, `-purpose
 * any` a server certificate as a client, and a CRL flag without CRLs
 * (libcoap >= 4.3.4) refuse every peer. From the application only what makes
 * verification stricter is taken: a smaller depth, a higher security level,
 * X509_V_FLAG_X509_STRICT, X509_V_FLAG_CHECK_SS_SIGNATURE, the Suite B
 * flags, and host / IP address / e-mail checks (SSL_set1_host, ...).
 *
 * Strength: every chain is held to at least security level 2 (keys of 112
 * bits of security or more, no SHA-1 or MD5 signature except the anchor's
 * self-signature; OpenSSL's level rules), whatever the context's own level:
 * on OpenSSL >= 3.2 a program may run a DTLS context at level 0 to offer
 * TS-0003's CCM8 suite, and the chain must not get weaker for it. */
#include <pthread.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include "internal.h"

#define TIGHTENING_FLAGS                                                                       \
    (X509_V_FLAG_X509_STRICT | X509_V_FLAG_CHECK_SS_SIGNATURE | X509_V_FLAG_SUITEB_128_LOS_ONLY \
     | X509_V_FLAG_SUITEB_192_LOS | X509_V_FLAG_SUITEB_128_LOS)

static int default_level = M2_MIN_SECURITY_LEVEL;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void find_default_level(void)
{
    ERR_set_mark(); /* a failure here is ours: keep the floor, leave no trace */
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    if (ctx != NULL)
        default_level = SSL_CTX_get_security_level(ctx);
    SSL_CTX_free(ctx);
    ERR_pop_to_mark();
}

int m2_default_security_level(void)
{
    pthread_once(&default_once, find_default_level);
    return default_level;
}

static int max_int(int a, int b)
{
    return a > b ? a : b;
}

int m2_effective_security_level(const m2_eval_opts *o)
{
    int level = o->ssl != NULL ? SSL_get_security_level(o->ssl) : o->security_level;
    if (o->param != NULL)
        level = max_int(level, X509_VERIFY_PARAM_get_auth_level(o->param));
    return max_int(level, M2_MIN_SECURITY_LEVEL);
}

void m2_set_verify_params(X509_STORE_CTX *xs, const m2mtls_policy *p, const m2_eval_opts *o)
{
    X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(xs);
    /* The purpose and trust of the peer's role: a responder verifies a TLS
     * client certificate, an initiator a TLS server certificate. */
    X509_STORE_CTX_set_default(xs, o->role == M2MTLS_RESPONDER ? "ssl_client" : "ssl_server");
    /* An anchor need not be self-signed: a pinned end-entity or intermediate
     * certificate is a Root of Trust too (TS-0003 8.2.2.2). */
    unsigned long flags = X509_V_FLAG_PARTIAL_CHAIN;
    if (sk_X509_CRL_num(p->crls) > 0)
        flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
    int depth = M2_VERIFY_DEPTH;
    if (o->param != NULL) {
        flags |= X509_VERIFY_PARAM_get_flags(o->param) & TIGHTENING_FLAGS;
        int app_depth = X509_VERIFY_PARAM_get_depth(o->param);
        if (app_depth >= 0 && app_depth < depth)
            depth = app_depth;
    }
    X509_VERIFY_PARAM_set_flags(vp, flags); /* added to OpenSSL's defaults, not the application's */
    X509_VERIFY_PARAM_set_depth(vp, depth);
    X509_VERIFY_PARAM_set_auth_level(vp, m2_effective_security_level(o));
    if (o->at != 0)
        X509_VERIFY_PARAM_set_time(vp, o->at);
}

/* Host checks of the application: the certificate must pass them too. */
static int hosts_ok(X509 *leaf, X509_VERIFY_PARAM *vp, unsigned int flags, m2_buf *why)
{
    const char *first = X509_VERIFY_PARAM_get0_host(vp, 0);
    if (first == NULL)
        return 1;
    for (int i = 0; X509_VERIFY_PARAM_get0_host(vp, i) != NULL; i++)
        if (X509_check_host(leaf, X509_VERIFY_PARAM_get0_host(vp, i), 0, flags, NULL) == 1)
            return 1;
    m2_buf_addf(why, "certificate does not match the host name the application checks ('");
    m2_buf_add_escaped(why, (const unsigned char *)first, strlen(first), 200);
    m2_buf_addf(why, "')");
    return 0;
}

int m2_app_name_checks(X509 *leaf, const m2_eval_opts *o, m2_buf *why)
{
    if (o->param == NULL)
        return 1;
    X509_VERIFY_PARAM *vp = o->param;
    unsigned int flags = X509_VERIFY_PARAM_get_hostflags(vp);
    if (!hosts_ok(leaf, vp, flags, why))
        return 0;
    const char *email = X509_VERIFY_PARAM_get0_email(vp);
    if (email != NULL && X509_check_email(leaf, email, 0, 0) != 1) {
        m2_buf_addf(why, "certificate does not match the e-mail address the application checks");
        return 0;
    }
    ERR_set_mark();
    char *ip = X509_VERIFY_PARAM_get1_ip_asc(vp);
    ERR_pop_to_mark();
    int ip_ok = ip == NULL || X509_check_ip_asc(leaf, ip, 0) == 1;
    if (!ip_ok)
        m2_buf_addf(why, "certificate does not match the IP address the application checks (%s)", ip);
    OPENSSL_free(ip);
    return ip_ok;
}
