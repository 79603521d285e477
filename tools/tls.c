/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>
#include <openssl/err.h>
#include <m2mtls/policy.h>
#include "tool.h"

const char *tool_ssl_error(char *buf, size_t len)
{
    unsigned long e = ERR_peek_error();
    buf[0] = '\0';
    if (e != 0) {
        const char *reason = ERR_reason_error_string(e);
        if (reason != NULL)
            snprintf(buf, len, "%s", reason);
        else
            ERR_error_string_n(e, buf, len);
    }
    ERR_clear_error();
    return buf;
}

SSL_CTX *tool_ssl_ctx(const char *policy, int server, int dtls, int version, m2mtls_policy **out)
{
    m2mtls_policy *p = m2mtls_policy_load(policy);
    if (p == NULL) {
        fprintf(stderr, "%s\n", m2mtls_last_error());
        return NULL;
    }
    const SSL_METHOD *m = dtls ? (server ? DTLS_server_method() : DTLS_client_method())
                               : (server ? TLS_server_method() : TLS_client_method());
    SSL_CTX *ctx = SSL_CTX_new(m);
    int ok = ctx != NULL && m2mtls_ctx_apply_ts0003_profile(ctx) && m2mtls_ctx_use_credential(ctx, p)
             && m2mtls_ctx_install(ctx, p);
    if (ok && !dtls && version != 0) {
        int v = version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION;
        ok = SSL_CTX_set_min_proto_version(ctx, v) && SSL_CTX_set_max_proto_version(ctx, v);
    }
    if (!ok) {
        char buf[256];
        fprintf(stderr, "m2mtls: %s\n", ctx == NULL ? tool_ssl_error(buf, sizeof buf) : m2mtls_last_error());
        SSL_CTX_free(ctx);
        m2mtls_policy_free(p);
        return NULL;
    }
    if (out != NULL)
        *out = p;
    else
        m2mtls_policy_free(p);
    return ctx;
}

/* What the peer presented its key in: an RFC 7250 raw public key (OpenSSL
 * >= 3.2, negotiated for key identities) or a certificate. */
static const char *presented(SSL *ssl, int json)
{
#if OPENSSL_VERSION_NUMBER >= 0x30200000L
    if (SSL_get0_peer_certificate(ssl) == NULL && SSL_get0_peer_rpk(ssl) != NULL)
        return json ? "raw-public-key" : "raw public key (RFC 7250)";
#endif
    return "certificate";
}

void tool_print_association(FILE *f, SSL *ssl, int json)
{
    const char *peer = m2mtls_ssl_peer_id(ssl);
    int resumed = SSL_session_reused(ssl);
    if (json) {
        fprintf(f, "\"protocol\": \"%s\", \"cipher\": \"%s\", \"peer_id\": ", SSL_get_version(ssl),
                SSL_get_cipher_name(ssl));
        tool_json_str(f, peer);
        fprintf(f, ", \"local_id\": ");
        tool_json_str(f, m2mtls_ssl_local_id(ssl));
        fprintf(f, ", \"cert_name\": ");
        tool_json_str(f, m2mtls_ssl_peer_cert_name(ssl));
        fprintf(f, ", \"anchor\": ");
        tool_json_str(f, m2mtls_ssl_anchor(ssl));
        fprintf(f, ", \"presented\": \"%s\", \"resumed\": %s", presented(ssl, 1), resumed ? "true" : "false");
        return;
    }
    fprintf(f, "  protocol:  %s, %s\n", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
    fprintf(f, "  peer id:   %s\n", peer ? peer : "(none)");
    fprintf(f, "  local id:  %s\n", m2mtls_ssl_local_id(ssl) ? m2mtls_ssl_local_id(ssl) : "(none configured)");
    fprintf(f, "  name:      %s\n", m2mtls_ssl_peer_cert_name(ssl) ? m2mtls_ssl_peer_cert_name(ssl) : "-");
    fprintf(f, "  anchor:    %s\n", m2mtls_ssl_anchor(ssl) ? m2mtls_ssl_anchor(ssl) : "-");
    fprintf(f, "  presented: %s\n", presented(ssl, 0));
    fprintf(f, "  resumed:   %s\n", resumed ? "yes" : "no");
}
