/* SPDX-License-Identifier: Apache-2.0 */
/* What a handshake is held to before any peer is verified: only (D)TLS 1.2
 * suites that authenticate a certificate, and, on a connection moved to a
 * context without m2mtls_ctx_install, a refusal of whatever the peer sends.
 *
 * Above connection.c (it records its refusals there); used by the server's
 * hooks (context.c) and the client's (initiator.c). */
#include <stdlib.h>
#include "internal.h"

/* Suites that authenticate no certificate: anonymous (aNULL), PSK and SRP.
 * With one of them a server asks the client for no certificate, and a
 * client gets none from the server: the handshake would complete with
 * nobody verified (an application that offers "ALL:@SECLEVEL=0", or SRP
 * logins, has them). TLS 1.3 suites authenticate by certificate or by a
 * resumed session, which the policy re-checks. */
static int certificate_suite(const SSL_CIPHER *c)
{
    int auth = SSL_CIPHER_get_auth_nid(c);
    return auth != NID_auth_null && auth != NID_auth_psk && auth != NID_auth_srp;
}

int m2_certificate_suites_only(SSL *ssl, m2_conn *c)
{
    STACK_OF(SSL_CIPHER) *all = SSL_get_ciphers(ssl);
    int n = sk_SSL_CIPHER_num(all), bad = 0;
    for (int i = 0; i < n; i++)
        bad += !certificate_suite(sk_SSL_CIPHER_value(all, i));
    if (bad == 0)
        return 1; /* the usual case: nothing to change, nothing spent */
    /* The application's list, in its order, without those (TLS 1.3 suites
     * have their own list, which SSL_set_cipher_list keeps). */
    m2_buf list = { 0 };
    for (int i = 0; i < n; i++) {
        const SSL_CIPHER *cipher = sk_SSL_CIPHER_value(all, i);
        if (certificate_suite(cipher) && SSL_CIPHER_get_auth_nid(cipher) != NID_auth_any)
            m2_buf_addf(&list, "%s%s", list.len > 0 ? ":" : "", SSL_CIPHER_get_name(cipher));
    }
    ERR_set_mark();
    int ok = list.s != NULL && !list.oom && SSL_set_cipher_list(ssl, list.s);
    ERR_pop_to_mark();
    free(list.s);
    if (!ok)
        m2_conn_set_reason(c, M2MTLS_REJECT_INTERNAL,
                           "the application's cipher list has no (D)TLS 1.2 suite that authenticates a "
                           "certificate (only anonymous, PSK or SRP suites)");
    return ok;
}

/* Installed by m2_refuse_unpoliced: refuses whatever certificate the peer sends. */
static int refuse_unpoliced(int ok, X509_STORE_CTX *xs)
{
    (void)ok;
    X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
}

void m2_refuse_unpoliced(SSL *ssl, m2_conn *c)
{
    m2_conn_set_reason(c, M2MTLS_REJECT_INTERNAL,
                       "the connection was moved (SSL_set_SSL_CTX) to a context without m2mtls_ctx_install: "
                       "no policy verifies its peer there");
    m2_proof_clear(&c->pending);
    if (!c->unpoliced)
        c->app_verify_cb = SSL_get_verify_callback(ssl);
    c->unpoliced = 1;
    /* The peer's certificate stays required, and OpenSSL's own verification
     * on that context ends with this callback's refusal. */
    SSL_set_verify(ssl, SSL_VERIFY_PEER | (SSL_is_server(ssl) ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                   refuse_unpoliced);
    if (!SSL_is_server(ssl))
        (void)m2_certificate_suites_only(ssl, c);
}
