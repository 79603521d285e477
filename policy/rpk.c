/* SPDX-License-Identifier: Apache-2.0 */
/* RFC 7250 raw public keys for key identities (OpenSSL >= 3.2; OpenSSL 3.0
 * has no RFC 7250, and there a key identity's key comes in a certificate).
 *
 * Negotiated only where a key identity is involved, so that nothing changes
 * for certificate associations:
 * - a client whose association (m2mtls_ssl_set_peer) is a key identity
 *   offers to receive the server's key raw and to send its own raw; it
 *   still takes a certificate (a carrier) from a server without RFC 7250;
 * - a server whose policy has key identities accepts a client's raw key and
 *   sends its own raw when the client asks for it; a client that does not
 *   ask gets and sends certificates as before.
 * Either list keeps X.509: a peer without RFC 7250 meets on certificates.
 * The key a peer sends raw is judged as a carrier's would be (keypeer.c). */
#include "internal.h"

#if OPENSSL_VERSION_NUMBER >= 0x30200000L
/* Raw public key first: the side that chooses takes it whenever the other
 * offers it (servers choose their own type from the client's list; clients
 * choose theirs from the server's). */
static const unsigned char rpk_first[] = { TLSEXT_cert_type_rpk, TLSEXT_cert_type_x509 };

/* ON: both directions raw public key or X.509; off: X.509 only, the default. */
static void set_types(SSL *ssl, int on)
{
    const unsigned char *types = on ? rpk_first : NULL;
    size_t n = on ? sizeof rpk_first : 0;
    /* A failure (out of memory) leaves what was there: at worst raw keys
     * are not negotiated, and keys come in certificates. */
    if (!SSL_set1_client_cert_type(ssl, types, n))
        return;
    if (!SSL_set1_server_cert_type(ssl, types, n))
        return;
}

void m2_rpk_server_start(SSL *ssl, const m2mtls_policy *policy)
{
    set_types(ssl, policy != NULL && policy->n_key_peers > 0);
}

void m2_rpk_client_start(SSL *ssl, const m2mtls_policy *policy, const char *expected)
{
    uint32_t i = policy != NULL && expected != NULL ? m2_policy_find_peer(policy, expected) : M2_NONE;
    set_types(ssl, i != M2_NONE && policy->peers[i].name_type == M2_NAME_KEY);
}

EVP_PKEY *m2_rpk_of_store(X509_STORE_CTX *xs)
{
    return X509_STORE_CTX_get0_rpk(xs);
}

EVP_PKEY *m2_rpk_of_session(SSL_SESSION *sess)
{
    return sess != NULL ? SSL_SESSION_get0_peer_rpk(sess) : NULL;
}
#else
void m2_rpk_server_start(SSL *ssl, const m2mtls_policy *policy)
{
    (void)ssl;
    (void)policy;
}

void m2_rpk_client_start(SSL *ssl, const m2mtls_policy *policy, const char *expected)
{
    (void)ssl;
    (void)policy;
    (void)expected;
}

EVP_PKEY *m2_rpk_of_store(X509_STORE_CTX *xs)
{
    (void)xs;
    return NULL;
}

EVP_PKEY *m2_rpk_of_session(SSL_SESSION *sess)
{
    (void)sess;
    return NULL;
}
#endif
