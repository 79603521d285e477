/* SPDX-License-Identifier: Apache-2.0 */
/* A program outside the tree that uses the installed libm2mtls. */
#include <stdio.h>
#include <m2mtls/policy.h>

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    m2mtls_policy *p = m2mtls_policy_load(argv[1]);
    if (p == NULL) {
        fprintf(stderr, "%s\n", m2mtls_last_error());
        return 1;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    int ok = ctx != NULL && m2mtls_ctx_install(ctx, p);
    printf("%s: %zu peers, installed %d\n", M2MTLS_VERSION_STRING, m2mtls_policy_peer_count(p), ok);
    SSL_CTX_free(ctx);
    m2mtls_policy_free(p);
    return ok ? 0 : 1;
}
