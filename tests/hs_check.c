/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CMocka side of the handshake driver (hs.h, "for CMocka tests"): the
 * steps every loopback test repeats, failing the running test with the
 * reason when one does not work. Apart from hs.c, which the fuzzers compile
 * in without CMocka.
 */
#include "hs.h"

#include <stdlib.h>

#include "testutil.h"
#include "pki.h"

const hs_mode HS_TLS12 = { "TLS 1.2", 0, TLS1_2_VERSION, 0 };
const hs_mode HS_TLS13 = { "TLS 1.3", 0, 0, 0 };
const hs_mode HS_DTLS12 = { "DTLS 1.2", 1, 0, 0 };
const hs_mode HS_TLS12_SID = { "TLS 1.2 session-ID cache", 0, TLS1_2_VERSION, SSL_OP_NO_TICKET };
const hs_mode *const HS_ALL[HS_N_ALL] = { &HS_TLS12, &HS_TLS13, &HS_DTLS12 };

m2mtls_policy *hs_policy_load(const char *dir, const char *name)
{
    char *path = pki_path(dir, name);
    m2mtls_policy *p = path != NULL ? m2mtls_policy_load(path) : NULL;
    free(path);
    if (p == NULL)
        fail_msg("loading %s: %s", name, m2mtls_last_error());
    return p;
}

/* The options go on before the policy is installed, as an application sets them. */
static SSL_CTX *test_ctx(int server, int dtls, int max_version, long options, const char *dir,
                         const char *policy)
{
    SSL_CTX *ctx = hs_ctx_new(server, dtls, max_version);
    if (ctx == NULL)
        fail_msg("a TS-0003 context: %s", m2mtls_last_error());
    if (options != 0)
        SSL_CTX_set_options(ctx, (uint64_t)options);
    if (policy != NULL && !hs_ctx_install(ctx, dir, policy))
        fail_msg("installing %s: %s", policy, m2mtls_last_error());
    return ctx;
}

SSL_CTX *hs_test_ctx(int server, int dtls, int max_version, const char *dir, const char *policy)
{
    return test_ctx(server, dtls, max_version, 0, dir, policy);
}

SSL_CTX *hs_test_mode_ctx(int server, const hs_mode *m, const char *dir, const char *policy)
{
    return test_ctx(server, m->dtls, m->max_version, m->options, dir, policy);
}

/* DIR/NAME.pem and DIR/NAME.key into CTX, or else SSL; the test fails when
 * they do not load. */
static void use_entity(SSL_CTX *ctx, SSL *ssl, const char *dir, const char *name)
{
    char cert[256], key[256];
    snprintf(cert, sizeof cert, "%s.pem", name);
    snprintf(key, sizeof key, "%s.key", name);
    char *c = pki_path(dir, cert), *k = pki_path(dir, key);
    int ok = c != NULL && k != NULL
             && (ctx != NULL ? SSL_CTX_use_certificate_file(ctx, c, SSL_FILETYPE_PEM)
                                   && SSL_CTX_use_PrivateKey_file(ctx, k, SSL_FILETYPE_PEM)
                             : SSL_use_certificate_file(ssl, c, SSL_FILETYPE_PEM)
                                   && SSL_use_PrivateKey_file(ssl, k, SSL_FILETYPE_PEM));
    free(c);
    free(k);
    if (!ok)
        fail_msg("%s: %s.pem / %s.key do not load", dir, name, name);
}

void hs_test_ctx_use(SSL_CTX *ctx, const char *dir, const char *name)
{
    use_entity(ctx, NULL, dir, name);
}

void hs_test_ssl_use(SSL *ssl, const char *dir, const char *name)
{
    use_entity(NULL, ssl, dir, name);
}

void hs_test_run(const hs_opts *o, const char *what, hs_side *s, hs_side *c)
{
    if (!hs_run(o, s, c))
        fail_msg("%s%sthe loopback run itself failed (client: %s)", what != NULL ? what : "", what != NULL ? ": " : "",
                 c->ssl_error);
}

int hs_test_dir_teardown(void **state)
{
    char *dir = *state;
    pki_dir_free(&dir);
    *state = NULL;
    return 0;
}

void hs_side_pair_clear(hs_side *s, hs_side *c)
{
    hs_side_clear(s);
    hs_side_clear(c);
}

void hs_expect_ok(const char *what, const hs_side *s, const hs_side *c)
{
    if (!s->ok || !c->ok)
        fail_msg("%s%shandshake failed: server ok=%d (%s; %s) client ok=%d (%s; %s)", what != NULL ? what : "",
                 what != NULL ? ": " : "", s->ok, s->reason ? s->reason : "-", s->ssl_error, c->ok,
                 c->reason ? c->reason : "-", c->ssl_error);
}
