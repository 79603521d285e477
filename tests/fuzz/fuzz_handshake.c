/* SPDX-License-Identifier: Apache-2.0 */
/* Whole handshakes against a server with the m2mtls verifier installed, the
 * client's messages coming from the fuzzer (memory BIOs, one thread).
 *
 * First byte even: the rest are a client's bytes (TLS records) given to the
 * server as they are, and the server answers what it can.
 * First byte odd: a real client handshakes with the server; the next byte
 * chooses it (bits 0-2: its certificate - authorized, unknown name,
 * look-alike root, an AE taken from its certificate, none; bit 3: TLS 1.2
 * or 1.3; bit 4: resume a session of the authorized client first; bit 5:
 * the server's application drops the verify mode in its SNI callback; bit 6:
 * a ticket refused by the application's own ticket callback), and the rest
 * are edits to the client's records on the way: (record, offset, xor) triples.
 *
 * After every handshake the invariant is checked on the server: a completed
 * handshake has the label of an identity the policy grants, and of that
 * client; a handshake that did not complete has no label. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <m2mtls/policy.h>
#include "hs.h"
#include "pki.h"
#include "fuzz.h"

enum who { AUTHORIZED, UNKNOWN, LOOKALIKE, AE, ANONYMOUS, N_WHO };
static const char *const names[N_WHO] = { "client", "other", "look", "ae", NULL };
static const char *const granted[N_WHO] = { "/CSE-CLI", NULL, NULL, "//sp.example.com/AE/Cae1", NULL };

static char *fixture_dir;
static SSL_CTX *server[2];        /* [1]: its application loosens the verify mode in SNI */
static SSL_CTX *client[N_WHO][2]; /* [v]: TLS 1.2 (0) or highest (1) */

static SSL_CTX *server_ctx(int loosen);

static int loosening_sni(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    (void)arg;
    SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
    return SSL_TLSEXT_ERR_OK;
}

static SSL_TICKET_RETURN app_dec(SSL *ssl, SSL_SESSION *sess, const unsigned char *keyname, size_t keyname_len,
                                 SSL_TICKET_STATUS status, void *arg)
{
    (void)ssl;
    (void)sess;
    (void)keyname;
    (void)keyname_len;
    (void)status;
    (void)arg;
    return SSL_TICKET_RETURN_IGNORE_RENEW;
}

static void remove_fixture(void)
{
    for (int i = 0; i < 2; i++) {
        SSL_CTX_free(server[i]);
        for (int w = 0; w < N_WHO; w++)
            SSL_CTX_free(client[w][i]);
    }
    pki_rmtree(fixture_dir);
    free(fixture_dir);
}

static SSL_CTX *client_ctx(int who, int tls13)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || !m2mtls_ctx_apply_ts0003_profile(ctx)
        || (!tls13 && !SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION)))
        return NULL;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (names[who] != NULL) {
        char cert[64], key[64];
        snprintf(cert, sizeof cert, "%s/%s.pem", fixture_dir, names[who]);
        snprintf(key, sizeof key, "%s/%s.key", fixture_dir, names[who]);
        if (SSL_CTX_use_certificate_file(ctx, cert, SSL_FILETYPE_PEM) != 1
            || SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
            return NULL;
    }
    return ctx;
}

static SSL_CTX *server_ctx(int loosen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    char path[512];
    snprintf(path, sizeof path, "%s/srv.policy", fixture_dir);
    m2mtls_policy *p = m2mtls_policy_load(path);
    int ok = ctx != NULL && p != NULL && m2mtls_ctx_apply_ts0003_profile(ctx) && m2mtls_ctx_install(ctx, p)
             && m2mtls_ctx_use_credential(ctx, p);
    m2mtls_policy_free(p);
    if (!ok) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF); /* tickets only: no growth */
    if (loosen) {
        SSL_CTX_set_tlsext_servername_callback(ctx, loosening_sni);
        m2mtls_ctx_set_session_ticket_cb(ctx, NULL, app_dec, NULL);
    }
    return ctx;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    pki_cert root, look, srv, cli, oth, lk, ae;
    pki_san s_srv[] = { { PKI_SAN_DNS, "server.example.com", 0 }, { 0, 0, 0 } };
    pki_san s_cli[] = { { PKI_SAN_DNS, "client.example.com", 0 }, { 0, 0, 0 } };
    pki_san s_oth[] = { { PKI_SAN_DNS, "other.example.com", 0 }, { 0, 0, 0 } };
    pki_san s_ae[] = { { PKI_SAN_URI, "//sp.example.com/AE/Cae1", 0 }, { 0, 0, 0 } };
    fixture_dir = pki_tmpdir();
    if (fixture_dir == NULL || !pki_root("hs root", &root) || !pki_root("hs root", &look)
        || !pki_leaf(&root, "server", s_srv, &srv) || !pki_leaf(&root, "client", s_cli, &cli)
        || !pki_leaf(&root, "other", s_oth, &oth) || !pki_leaf(&look, "client", s_cli, &lk)
        || !pki_leaf(&root, "ae", s_ae, &ae) || !pki_write_cert(fixture_dir, "root.pem", root.cert)
        || !pki_write_cert(fixture_dir, "server.pem", srv.cert) || !pki_write_key(fixture_dir, "server.key", srv.key)
        || !pki_write_cert(fixture_dir, "client.pem", cli.cert) || !pki_write_key(fixture_dir, "client.key", cli.key)
        || !pki_write_cert(fixture_dir, "other.pem", oth.cert) || !pki_write_key(fixture_dir, "other.key", oth.key)
        || !pki_write_cert(fixture_dir, "look.pem", lk.cert) || !pki_write_key(fixture_dir, "look.key", lk.key)
        || !pki_write_cert(fixture_dir, "ae.pem", ae.cert) || !pki_write_key(fixture_dir, "ae.key", ae.key)
        || !pki_writef(fixture_dir, "srv.policy",
                       "local-id /CSE-SRV\ncert server.pem\nkey server.key\nanchor R root.pem\n"
                       "peer /CSE-CLI dns:client.example.com R\n"
                       "peers-from-cert R uri-prefix://sp.example.com/AE/\n")) {
        fprintf(stderr, "fuzz_handshake: cannot make the fixture\n");
        exit(1);
    }
    pki_cert *all[] = { &root, &look, &srv, &cli, &oth, &lk, &ae };
    pki_certs_free(all, sizeof all / sizeof all[0]);
    atexit(remove_fixture);
    for (int i = 0; i < 2; i++) {
        server[i] = server_ctx(i);
        for (int w = 0; w < N_WHO; w++)
            client[w][i] = client_ctx(w, i);
        for (int w = 0; w < N_WHO; w++)
            if (server[i] == NULL || client[w][i] == NULL) {
                fprintf(stderr, "fuzz_handshake: contexts: %s\n", m2mtls_last_error());
                exit(1);
            }
    }
    return 0;
}

/* ---- one connection over memory BIOs (hs_mem_run) ------------------------------- */

typedef struct edits {
    const uint8_t *p;
    size_t n;          /* bytes of (record, offset hi, offset lo, xor) quadruples */
    unsigned record;   /* client records passed so far */
} edits;

/* Each client record on its way to the server: the input's edits for it. */
static void edit_record(unsigned char *rec, size_t len, int dtls, void *arg)
{
    (void)dtls;
    edits *e = arg;
    for (size_t i = 0; i + 4 <= e->n; i += 4) {
        size_t at = ((size_t)e->p[i + 1] << 8) | e->p[i + 2];
        if (e->p[i] == e->record && at < len)
            rec[at] ^= e->p[i + 3];
    }
    e->record++;
}

/* The invariant, on the server. A resumed session is the authorized
 * client's (whoever holds it holds its secrets). */
static void check(SSL *s, int who)
{
    const char *peer = m2mtls_ssl_peer_id(s);
    int done = SSL_is_init_finished(s);
    if (!done && peer != NULL)
        abort(); /* a label for a handshake that did not complete */
    if (!done)
        return;
    const char *want = granted[SSL_session_reused(s) ? AUTHORIZED : who];
    if (peer == NULL || want == NULL || strcmp(peer, want) != 0)
        abort(); /* a completed handshake without the label of the client it authenticated */
}

static SSL_SESSION *good_session(int tls13)
{
    SSL *c = hs_mem_ssl(client[AUTHORIZED][tls13], 0), *s = hs_mem_ssl(server[0], 1);
    SSL_SESSION *sess = NULL;
    edits none = { 0 };
    if (c != NULL && s != NULL) {
        SSL_set_tlsext_host_name(c, "server.example.com"); /* (part of the session id context) */
        hs_mem_run(c, s, edit_record, &none);
        sess = SSL_get1_session(c);
        (void)SSL_shutdown(c); /* else SSL_free marks the session not resumable */
    }
    SSL_free(c);
    SSL_free(s);
    return sess;
}

static void driven(const uint8_t *data, size_t size)
{
    if (size == 0)
        return;
    int who = (data[0] & 7) % N_WHO, tls13 = (data[0] >> 3) & 1, resume = (data[0] >> 4) & 1;
    int loosen = (data[0] >> 5) & 1;
    edits e = { data + 1, size - 1, 0 };
    SSL_SESSION *sess = resume ? good_session(tls13) : NULL;
    SSL *c = hs_mem_ssl(client[who][tls13], 0), *s = hs_mem_ssl(server[loosen], 1);
    if (c != NULL && s != NULL) {
        SSL_set_tlsext_host_name(c, "server.example.com");
        if (sess != NULL)
            SSL_set_session(c, sess);
        hs_mem_run(c, s, edit_record, &e);
        check(s, who);
    }
    SSL_free(c);
    SSL_free(s);
    SSL_SESSION_free(sess);
}

static void raw(const uint8_t *data, size_t size)
{
    SSL *s = hs_mem_ssl(server[0], 1);
    if (s == NULL)
        return;
    BIO_write(SSL_get_rbio(s), data, (int)size);
    BIO_set_mem_eof_return(SSL_get_rbio(s), 0);
    for (int i = 0; i < 4 && SSL_do_handshake(s) != 1; i++)
        (void)BIO_reset(SSL_get_wbio(s));
    check(s, ANONYMOUS);
    SSL_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1)
        driven(data + 1, size - 1);
    else
        raw(data + 1, size - 1);
    ERR_clear_error();
    return 0;
}
