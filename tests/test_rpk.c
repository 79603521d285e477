/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key identities (TS-0003 raw public keys, RFC 6920 key ids):
 * `peer ID key:sha-256;<base64url>` and its truncations, no anchor, no
 * certificate name. The policy parser's refusals; the verdict on a carrier
 * certificate and on a bare key; real handshakes over loopback (TLS 1.2,
 * TLS 1.3, DTLS 1.2) with a self-signed carrier on every OpenSSL and RFC 7250
 * raw public keys on OpenSSL >= 3.2, a server with a key peer and a
 * certificate peer, resumption, a policy swap that removes the key, the
 * 7.2.1 From check, and the application's verify callback.
 */
#include <stdlib.h>

#include "testutil.h"
#include "pki.h"
#include "hs.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <m2mtls/policy.h>

static char *dir;
/* RFC 6920 ids (base64url, the text after "sha-256;" etc.) of the test keys,
 * computed here independently of libm2mtls. */
static char *id_dev, *id_dev128, *id_dev120, *id_intruder, *id_server, *id_look;

#define DEV    "//sp.example.com/CSE-SRV/Cdev"
#define DEV128 "//sp.example.com/CSE-SRV/Cdev128"
#define DEV120 "//sp.example.com/CSE-SRV/Cdev120"

/* A self-signed certificate for a new key of SPEC: a device's carrier. */
static int device(const char *cn, const char *spec, const pki_san *sans, int key_usage, long not_after,
                  pki_cert *out)
{
    EVP_PKEY *k = pki_key_gen(spec);
    pki_opts o = { .cn = cn, .ca = PKI_BC_LEAF, .sans = sans, .key = k, .key_usage = key_usage };
    if (not_after != 0) {
        o.not_before = -2 * 86400;
        o.not_after = not_after;
    }
    int ok = k != NULL && pki_issue(&o, out);
    EVP_PKEY_free(k);
    return ok;
}

static int setup(void **state)
{
    (void)state;
    pki_cert root, look, server, server_look, server_uri, client, dev, dev128, dev120, intruder, weak, kuenc, expired,
        other;
    dir = pki_tmpdir();
    pki_san s_srv[] = { { PKI_SAN_DNS, "server.example.com", 0 }, { 0, 0, 0 } };
    pki_san s_cli[] = { { PKI_SAN_DNS, "client.example.com", 0 }, { 0, 0, 0 } };
    pki_san s_dev[] = { { PKI_SAN_URI, DEV, 0 }, { 0, 0, 0 } };
    pki_san s_oth[] = { { PKI_SAN_DNS, "other.example.com", 0 }, { 0, 0, 0 } };
    pki_san s_suri[] = { { PKI_SAN_URI, "//sp.example.com/CSE-SRV", 0 }, { 0, 0, 0 } };
    if (dir == NULL || !pki_root("RPK Root", &root) || !pki_root("RPK Root", &look)
        || !pki_leaf(&root, "server", s_srv, &server) || !pki_leaf(&look, "server", s_srv, &server_look)
        || !pki_leaf(&root, "client", s_cli, &client) || !pki_leaf(&root, "server-uri", s_suri, &server_uri)
        || !device("Cdev", "EC:P-256", s_dev, PKI_KU_DEFAULT, 0, &dev)
        || !device("Cdev128", "EC:P-256", NULL, PKI_KU_DEFAULT, 0, &dev128)
        || !device("Cdev120", "EC:P-256", NULL, PKI_KU_NONE, 0, &dev120)
        || !device("Cdev", "EC:P-256", NULL, PKI_KU_DEFAULT, 0, &intruder)
        || !device("weak", "EC:P-192", NULL, PKI_KU_DEFAULT, 0, &weak)
        || !device("kuenc", "EC:P-256", NULL, KU_KEY_ENCIPHERMENT, 0, &kuenc)
        || !device("expired", "EC:P-256", NULL, PKI_KU_DEFAULT, -86400, &expired))
        return -1;
    /* The device's key in a CA-issued certificate: a carrier too. */
    pki_opts oo = { .cn = "other", .issuer = &root, .sans = s_oth, .key = dev.key };
    if (!pki_issue(&oo, &other))
        return -1;
    id_dev = pki_key_id(dev.key, 32);
    id_dev128 = pki_key_id(dev128.key, 16);
    id_dev120 = pki_key_id(dev120.key, 15);
    id_intruder = pki_key_id(intruder.key, 32);
    id_server = pki_key_id(server.key, 32);
    id_look = pki_key_id(server_look.key, 32);
    char *id_suri = pki_key_id(server_uri.key, 32);
    char keys[1024];
    snprintf(keys, sizeof keys,
             "peer " DEV " key:sha-256;%s\n"
             "peer " DEV128 " key:sha-256-128;%s as=/CSE-SRV-K\n"
             "peer " DEV120 " key:sha-256-120;%s\n", id_dev, id_dev128, id_dev120);
    int ok = pki_write_cert(dir, "root.pem", root.cert)
        && pki_write_certs(dir, "server.pem", server.cert, root.cert, (X509 *)NULL)
        && pki_write_key(dir, "server.key", server.key)
        && pki_write_certs(dir, "server-look.pem", server_look.cert, look.cert, (X509 *)NULL)
        && pki_write_key(dir, "server-look.key", server_look.key)
        && pki_write_entity(dir, "client", &client) && pki_write_entity(dir, "dev", &dev) && pki_write_entity(dir, "dev128", &dev128)
        && pki_write_entity(dir, "dev120", &dev120) && pki_write_entity(dir, "intruder", &intruder) && pki_write_entity(dir, "weak", &weak)
        && pki_write_entity(dir, "kuenc", &kuenc) && pki_write_entity(dir, "expired", &expired) && pki_write_entity(dir, "other", &other)
        && pki_writef(dir, "srv.policy", "local-id /CSE-SRV\nsp-id //sp.example.com\n"
                      "cert server.pem\nkey server.key\nanchor ALPHA root.pem\n"
                      "peer /CSE-CLI dns:client.example.com ALPHA\n%s", keys)
        && pki_writef(dir, "srv-removed.policy", "local-id /CSE-SRV\nsp-id //sp.example.com\n"
                      "cert server.pem\nkey server.key\nanchor ALPHA root.pem\n"
                      "peer /CSE-CLI dns:client.example.com ALPHA\n")
        && pki_writef(dir, "srv-look.policy", "local-id /CSE-SRV\ncert server-look.pem\nkey server-look.key\n%s",
                      keys)
        && pki_writef(dir, "srv-pin.policy", "local-id /CSE-SRV\ncert server.pem\nkey server.key\n"
                      "anchor DEVPIN dev.pem\npeer " DEV " uri:" DEV " DEVPIN\n")
        && pki_writef(dir, "srv-amb.policy", "local-id /CSE-SRV\nanchor DEVPIN dev.pem\n"
                      "peer //sp.example.com/CSE-SRV/Cpinned uri:" DEV " DEVPIN\n%s", keys)
        && pki_writef(dir, "cli.policy", "local-id /CSE-CLI\ncert client.pem\nkey client.key\n"
                      "anchor ALPHA root.pem\npeer /CSE-SRV dns:server.example.com ALPHA\n");
    static const struct { const char *policy, *entity; } devices[] = {
        { "dev", "dev" }, { "dev128", "dev128" }, { "dev120", "dev120" }, { "intruder", "intruder" },
    };
    for (size_t i = 0; ok && i < sizeof devices / sizeof devices[0]; i++) {
        /* NAME.policy knows the server by its certificate, NAMEk.policy by its key */
        char name[64];
        snprintf(name, sizeof name, "%s.policy", devices[i].policy);
        ok = pki_writef(dir, name, "local-id " DEV "\ncert %s.pem\nkey %s.key\nanchor ALPHA root.pem\n"
                        "peer /CSE-SRV dns:server.example.com ALPHA\n", devices[i].entity, devices[i].entity);
        snprintf(name, sizeof name, "%sk.policy", devices[i].policy);
        ok = ok && pki_writef(dir, name, "local-id " DEV "\ncert %s.pem\nkey %s.key\n"
                              "peer /CSE-SRV key:sha-256;%s\n", devices[i].entity, devices[i].entity, id_server);
    }
    ok = ok && pki_writef(dir, "devk-look.policy", "local-id " DEV "\ncert dev.pem\nkey dev.key\n"
                          "peer /CSE-SRV key:sha-256;%s\n", id_look);
    /* a server named by a URI (no SNI either way), and a device that knows it
     * by that name (devu) or by its key (devku) */
    ok = ok && id_suri != NULL && pki_write_entity(dir, "server-uri", &server_uri)
         && pki_writef(dir, "srv-uri.policy", "local-id /CSE-SRV\ncert server-uri.pem\nkey server-uri.key\n%s", keys)
         && pki_writef(dir, "devu.policy", "local-id " DEV "\ncert dev.pem\nkey dev.key\nanchor ALPHA root.pem\n"
                       "peer /CSE-SRV uri://sp.example.com/CSE-SRV ALPHA\n")
         && pki_writef(dir, "devku.policy", "local-id " DEV "\ncert dev.pem\nkey dev.key\n"
                       "peer /CSE-SRV key:sha-256;%s\n", id_suri);
    free(id_suri);
    pki_cert *all[] = { &root, &look, &server, &server_look, &server_uri, &client, &dev, &dev128, &dev120, &intruder,
                        &weak, &kuenc, &expired, &other };
    pki_certs_free(all, sizeof all / sizeof all[0]);
    return ok && id_dev && id_dev128 && id_dev120 && id_intruder && id_server && id_look ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    pki_dir_free(&dir);
    free(id_dev);
    free(id_dev128);
    free(id_dev120);
    free(id_intruder);
    free(id_server);
    free(id_look);
    return 0;
}

/* ---- the policy file ------------------------------------------------------- */

/* Loads TEXT as a policy; expects it refused with every one of the NULL
 * terminated messages: "LINE: text" (after the file's name), or a part. */
static void expect_refused(const char *text, ...)
{
    assert_true(pki_writef(dir, "bad.policy", "%s", text));
    char *path = pki_path(dir, "bad.policy");
    m2mtls_policy *p = m2mtls_policy_load(path);
    if (p != NULL)
        fail_msg("accepted: %s", text);
    va_list ap;
    va_start(ap, text);
    for (const char *want; (want = va_arg(ap, const char *)) != NULL;) {
        char full[512];
        snprintf(full, sizeof full, "%s:%s", path, want);
        size_t digits = strspn(want, "0123456789");
        assert_contains(m2mtls_last_error(), digits > 0 && want[digits] == ':' ? full : want);
    }
    va_end(ap);
    free(path);
}

static void test_parse_errors(void **state)
{
    (void)state;
    char text[4096];
    /* an algorithm RFC 6920 does not name for TS-0003 */
    snprintf(text, sizeof text, "peer A key:sha-1;%s\npeer B key:md5;%s\npeer C key:sha-256%s\n", id_dev, id_dev,
             id_dev);
    expect_refused(text, "1: peer 'A': key:sha-1;", "unknown hash algorithm 'sha-1'", "2: peer 'B': key:md5;",
                   "3: peer 'C': key:sha-256", "expected <ALG>;<BASE64URL>", (char *)NULL);
    /* bad base64url: a character outside its alphabet, '+' and '/' of plain base64, padding */
    char plus[64];
    snprintf(plus, sizeof plus, "%s", id_dev);
    plus[3] = '+';
    snprintf(text, sizeof text, "peer A key:sha-256;%s\npeer B key:sha-256;%.42s=\npeer C key:sha-256;%.42s!\n",
             plus, id_dev, id_dev);
    expect_refused(text, "1: peer 'A': key:sha-256;", "'+' (character 4) is not A-Z a-z 0-9 - _",
                   "2: peer 'B':", "no '=' padding", "3: peer 'C':", "'!' (character 43)", (char *)NULL);
    /* wrong lengths: a sha-256-128 id given as sha-256, a sha-256 id as sha-256-120, a truncated one */
    snprintf(text, sizeof text, "peer A key:sha-256;%s\npeer B key:sha-256-120;%s\npeer C key:sha-256;%.40s\n",
             id_dev128, id_dev, id_dev);
    expect_refused(text, "1: peer 'A':", "wrong length: 32 bytes are 43 base64url characters, not 22",
                   "2: peer 'B':", "15 bytes are 20 base64url characters, not 43", "3: peer 'C':", "not 40",
                   (char *)NULL);
    /* the same key twice: the same id, and a truncation of it */
    char id120[32];
    snprintf(id120, sizeof id120, "%.20s", id_dev); /* 120 bits: 20 characters, no spare bits */
    snprintf(text, sizeof text, "peer A key:sha-256;%s\npeer B key:sha-256;%s\npeer C key:sha-256-120;%s\n",
             id_dev, id_dev, id120);
    expect_refused(text, "2: peer 'B': duplicate key: key:sha-256;", "names the key of peer 'A' (line 1)",
                   "3: peer 'C': duplicate key: key:sha-256-120;", (char *)NULL);
    /* a key identity has no anchor; nor control characters; the usual duplicate id */
    snprintf(text, sizeof text, "anchor R root.pem\npeer A key:sha-256;%s R\npeer A key:sha-256;%s\n"
             "peer B key:sha-256;%s\x01\n", id_dev, id_dev128, id_dev);
    expect_refused(text, "2: peer 'A': a key identity has no anchor (the key is the identity): unexpected 'R'",
                   "4: peer 'B': the key id contains a control character", (char *)NULL);
    /* last character with bits beyond the id: one text per key id */
    char odd[64];
    snprintf(odd, sizeof odd, "%.21sB", id_dev128);
    snprintf(text, sizeof text, "peer A key:sha-256-128;%s\n", odd);
    if (strcmp(odd, id_dev128) != 0)
        expect_refused(text, "1: peer 'A':", "has bits set beyond the 16 bytes", (char *)NULL);
    /* accepted: every truncation, the algorithm in any case, with as= and at= */
    snprintf(text, sizeof text, "peer A key:SHA-256;%s as=/me at=dtls://[::1]:5684\npeer B key:sha-256-128;%s\n"
             "peer C key:Sha-256-120;%s\n", id_dev, id_dev128, id_dev120);
    assert_true(pki_writef(dir, "good.policy", "%s", text));
    m2mtls_policy *p = hs_policy_load(dir, "good.policy");
    assert_int_equal(m2mtls_policy_peer_count(p), 3);
    const char *host;
    unsigned port;
    int dtls;
    assert_true(m2mtls_policy_peer_address(p, "A", &host, &port, &dtls));
    assert_str_eq(host, "::1");
    m2mtls_policy_free(p);
}

/* ---- the verdict, outside a handshake ------------------------------------------ */

static X509 *read_cert(const char *name)
{
    char *path = pki_path(dir, name);
    FILE *f = fopen(path, "r");
    X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f != NULL)
        fclose(f);
    free(path);
    assert_non_null(x);
    return x;
}

static void verdict_of(const char *policy, const char *cert, const char *peer, m2mtls_role role,
                       m2mtls_verdict *v)
{
    m2mtls_policy *p = hs_policy_load(dir, policy);
    X509 *x = read_cert(cert);
    assert_int_equal(m2mtls_policy_check_cert(p, x, NULL, peer, role, 0, v), 1);
    X509_free(x);
    m2mtls_policy_free(p);
}

static void test_verdict_carrier(void **state)
{
    (void)state;
    m2mtls_verdict v;
    char want[128];
    /* the right key: accepted, named by its key, no anchor */
    verdict_of("srv.policy", "dev.pem", NULL, M2MTLS_RESPONDER, &v);
    assert_true(v.accepted);
    assert_str_eq(v.peer_id, DEV);
    assert_str_eq(v.local_id, "/CSE-SRV");
    snprintf(want, sizeof want, "key:sha-256;%s", id_dev);
    assert_str_eq(v.cert_name, want);
    assert_null(v.anchor);
    assert_int_equal(sk_X509_num(v.chain), 1);
    m2mtls_verdict_clear(&v);
    /* each truncation */
    verdict_of("srv.policy", "dev128.pem", NULL, M2MTLS_RESPONDER, &v);
    assert_str_eq(v.peer_id, DEV128);
    assert_str_eq(v.local_id, "/CSE-SRV-K");
    m2mtls_verdict_clear(&v);
    verdict_of("srv.policy", "dev120.pem", NULL, M2MTLS_RESPONDER, &v);
    assert_str_eq(v.peer_id, DEV120);
    m2mtls_verdict_clear(&v);
    /* another key: refused, with the key's id */
    verdict_of("srv.policy", "intruder.pem", NULL, M2MTLS_RESPONDER, &v);
    assert_false(v.accepted);
    assert_int_equal(v.code, M2MTLS_REJECT_NAME);
    snprintf(want, sizeof want, "nor is its key key:sha-256;%s configured", id_intruder);
    assert_contains(v.reason, want);
    m2mtls_verdict_clear(&v);
    /* an initiator expecting the key peer */
    verdict_of("srv.policy", "intruder.pem", DEV, M2MTLS_INITIATOR, &v);
    assert_false(v.accepted);
    assert_int_equal(v.code, M2MTLS_REJECT_NAME);
    snprintf(want, sizeof want, "the peer's key is key:sha-256;%s, not key:sha-256;%s, the key configured for peer '"
             DEV "'", id_intruder, id_dev);
    assert_contains(v.reason, want);
    m2mtls_verdict_clear(&v);
    verdict_of("srv.policy", "dev.pem", DEV, M2MTLS_INITIATOR, &v);
    assert_true(v.accepted);
    m2mtls_verdict_clear(&v);
    /* a carrier's validity and issuer are not what authenticates it: an expired
     * self-signed one, and a CA-issued one carrying the key, are carriers too */
    verdict_of("srv.policy", "other.pem", NULL, M2MTLS_RESPONDER, &v);
    assert_true(v.accepted);
    assert_str_eq(v.peer_id, DEV);
    m2mtls_verdict_clear(&v);
    X509 *exp = read_cert("expired.pem");
    char *id_exp = pki_key_id(X509_get0_pubkey(exp), 32);
    assert_true(pki_writef(dir, "exp.policy", "peer E key:sha-256;%s\n", id_exp));
    m2mtls_policy *p = hs_policy_load(dir, "exp.policy");
    assert_int_equal(m2mtls_policy_check_cert(p, exp, NULL, NULL, M2MTLS_RESPONDER, 0, &v), 1);
    assert_true(v.accepted);
    m2mtls_verdict_clear(&v);
    m2mtls_policy_free(p);
    X509_free(exp);
    free(id_exp);
}

/* The key a policy author has, and its id (i2d_PUBKEY: what `m2mtls inspect`
 * and `keyref` print), identify a carrier whatever its SubjectPublicKeyInfo
 * encoding: an RSA carrier whose algorithm parameters omit the NULL (292
 * bytes re-encoded from the certificate, 294 from the key) is the same key
 * as one with it; a compressed-point EC carrier is its key too. */
static X509 *spki_without_null(X509 *cert, EVP_PKEY *key)
{
    X509 *x = X509_dup(cert);
    assert_non_null(x);
    X509_PUBKEY *xpk = X509_get_X509_PUBKEY(x);
    const unsigned char *bits = NULL;
    int n = 0;
    assert_true(X509_PUBKEY_get0_param(NULL, &bits, &n, NULL, xpk));
    unsigned char *copy = OPENSSL_memdup(bits, (size_t)n);
    assert_non_null(copy);
    assert_true(X509_PUBKEY_set0_param(xpk, OBJ_nid2obj(NID_rsaEncryption), V_ASN1_UNDEF, NULL, copy, n));
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    /* as a peer sends it: decoded from its DER */
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    const unsigned char *p = der;
    X509 *back = len > 0 ? d2i_X509(NULL, &p, len) : NULL;
    OPENSSL_free(der);
    X509_free(x);
    assert_non_null(back);
    return back;
}

static void test_verdict_carrier_spki_encodings(void **state)
{
    (void)state;
    static const char *const specs[] = { "RSA:2048", "EC:P-256:compressed" };
    for (size_t i = 0; i < 2; i++) {
        EVP_PKEY *key = pki_key_gen(specs[i]);
        pki_cert c;
        assert_non_null(key);
        assert_true(pki_self_signed(NULL, key, "Cdev", &c));
        X509 *carriers[2] = { c.cert, i == 0 ? spki_without_null(c.cert, key) : NULL };
        if (i == 0) {
            unsigned char *a = NULL, *b = NULL;
            int la = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(carriers[1]), &a), lb = i2d_PUBKEY(key, &b);
            assert_int_equal(la + 2, lb); /* the encodings really differ */
            OPENSSL_free(a);
            OPENSSL_free(b);
        }
        char *id = pki_key_id(key, 32);
        assert_true(pki_writef(dir, "enc.policy", "local-id /CSE-SRV\npeer " DEV " key:sha-256;%s\n", id));
        m2mtls_policy *p = hs_policy_load(dir, "enc.policy");
        for (size_t k = 0; k < 2 && carriers[k] != NULL; k++) {
            m2mtls_verdict v;
            assert_int_equal(m2mtls_policy_check_cert(p, carriers[k], NULL, NULL, M2MTLS_RESPONDER, 0, &v), 1);
            if (!v.accepted)
                fail_msg("%s carrier %zu: %s", specs[i], k, v.reason ? v.reason : "(no reason)");
            assert_str_eq(v.peer_id, DEV);
            m2mtls_verdict_clear(&v);
            assert_int_equal(m2mtls_policy_check_cert(p, carriers[k], NULL, DEV, M2MTLS_INITIATOR, 0, &v), 1);
            assert_true(v.accepted);
            m2mtls_verdict_clear(&v);
        }
        m2mtls_policy_free(p);
        free(id);
        X509_free(carriers[1]);
        pki_cert_free(&c);
        EVP_PKEY_free(key);
    }
}

/* What a carrier is held to: the strength floor, a keyUsage that allows
 * signing, and one identity. */
static void test_verdict_carrier_refusals(void **state)
{
    (void)state;
    m2mtls_verdict v;
    static const char *const files[] = { "weak.pem", "kuenc.pem" };
    for (size_t i = 0; i < 2; i++) {
        X509 *x = read_cert(files[i]);
        char *id = pki_key_id(X509_get0_pubkey(x), 32);
        assert_true(pki_writef(dir, "one.policy", "peer K key:sha-256;%s\n", id));
        m2mtls_policy *p = hs_policy_load(dir, "one.policy");
        assert_int_equal(m2mtls_policy_check_cert(p, x, NULL, NULL, M2MTLS_RESPONDER, 0, &v), 1);
        assert_false(v.accepted);
        assert_int_equal(v.code, M2MTLS_REJECT_PROFILE);
        assert_contains(v.reason, i == 0 ? "the peer's key is too weak" : "keyUsage lacks digitalSignature");
        m2mtls_verdict_clear(&v);
        m2mtls_policy_free(p);
        free(id);
        X509_free(x);
    }
    /* the device's key is a key peer, and its pinned certificate (by its URI)
     * another association: two identities */
    verdict_of("srv-amb.policy", "dev.pem", NULL, M2MTLS_RESPONDER, &v);
    assert_false(v.accepted);
    assert_int_equal(v.code, M2MTLS_REJECT_AMBIGUOUS);
    assert_contains(v.reason, "more than one identity: '" DEV "' (its key");
    assert_contains(v.reason, "'//sp.example.com/CSE-SRV/Cpinned' (its name uri:" DEV);
    m2mtls_verdict_clear(&v);
    /* an initiator asks for one association: no ambiguity */
    verdict_of("srv-amb.policy", "dev.pem", DEV, M2MTLS_INITIATOR, &v);
    assert_true(v.accepted);
    m2mtls_verdict_clear(&v);
    verdict_of("srv-amb.policy", "dev.pem", "//sp.example.com/CSE-SRV/Cpinned", M2MTLS_INITIATOR, &v);
    assert_true(v.accepted);
    assert_str_eq(v.anchor, "DEVPIN");
    m2mtls_verdict_clear(&v);
}

/* ---- handshakes ------------------------------------------------------------------ */


static SSL_CTX *ctx_with(int server, const hs_mode *m, const char *policy)
{
    return hs_test_mode_ctx(server, m, dir, policy);
}

static void run(SSL_CTX *sctx, SSL_CTX *cctx, const hs_mode *m, SSL_SESSION *sess, int keep, hs_side *s, hs_side *c)
{
    hs_opts o = { .server_ctx = sctx, .client_ctx = cctx, .dtls = m->dtls, .peer = "/CSE-SRV", .session = sess,
                  .keep = keep };
    hs_test_run(&o, m->name, s, c);
    assert_true(c->set_peer_ok);
}

static void expect_ok(const hs_mode *m, const hs_side *s, const hs_side *c)
{
    hs_expect_ok(m->name, s, c);
}

/* The end of a run: both sides' results and both contexts. */
static void done(hs_side *s, hs_side *c, SSL_CTX *sctx, SSL_CTX *cctx)
{
    hs_side_pair_clear(s, c);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

/* Did the peer of SSL present a raw public key (RFC 7250) rather than a certificate? */
static int peer_sent_raw_key(SSL *ssl)
{
#if OPENSSL_VERSION_NUMBER >= 0x30200000L
    if (SSL_get0_peer_rpk(ssl) != NULL && SSL_get0_peer_certificate(ssl) == NULL)
        return 1;
#endif
    assert_non_null(SSL_get0_peer_certificate(ssl));
    return 0;
}

/* RFC 7250 is negotiated toward a key identity where OpenSSL has it. */
static const int HAVE_RPK = OPENSSL_VERSION_NUMBER >= 0x30200000L;

/* A device known to the server by its key: accepted with the key's label, in
 * every protocol; it knows the server by its certificate, so it sends its
 * self-signed certificate (a carrier) on every OpenSSL. */
static void test_key_peer_carrier(void **state)
{
    (void)state;
    char want[128];
    snprintf(want, sizeof want, "key:sha-256;%s", id_dev);
    for (size_t i = 0; i < HS_N_ALL; i++) {
        const hs_mode *m = HS_ALL[i];
        SSL_CTX *sctx = ctx_with(1, m, "srv.policy"), *cctx = ctx_with(0, m, "dev.policy");
        hs_side s, c;
        run(sctx, cctx, m, NULL, 1, &s, &c);
        expect_ok(m, &s, &c);
        assert_str_eq(s.peer_id, DEV);
        assert_str_eq(s.local_id, "/CSE-SRV");
        assert_str_eq(s.cert_name, want);
        assert_null(s.anchor);
        assert_int_equal(s.reject_code, M2MTLS_REJECT_NONE);
        assert_str_eq(c.peer_id, "/CSE-SRV");
        assert_str_eq(c.anchor, "ALPHA");
        assert_false(peer_sent_raw_key(s.ssl));
        assert_false(peer_sent_raw_key(c.ssl));
        done(&s, &c, sctx, cctx);
    }
}

/* Both sides know each other by key: RFC 7250 raw public keys both ways on
 * OpenSSL >= 3.2, certificates carrying the keys before. */
static void test_key_both_ways(void **state)
{
    (void)state;
    char want[128];
    snprintf(want, sizeof want, "key:sha-256;%s", id_server);
    for (size_t i = 0; i < HS_N_ALL; i++) {
        const hs_mode *m = HS_ALL[i];
        SSL_CTX *sctx = ctx_with(1, m, "srv.policy"), *cctx = ctx_with(0, m, "devk.policy");
        hs_side s, c;
        run(sctx, cctx, m, NULL, 1, &s, &c);
        expect_ok(m, &s, &c);
        assert_str_eq(s.peer_id, DEV);
        assert_str_eq(c.peer_id, "/CSE-SRV");
        assert_str_eq(c.cert_name, want);
        assert_null(c.anchor);
        assert_int_equal(peer_sent_raw_key(s.ssl), HAVE_RPK);
        assert_int_equal(peer_sent_raw_key(c.ssl), HAVE_RPK);
#if OPENSSL_VERSION_NUMBER >= 0x30200000L
        assert_int_equal(SSL_get_negotiated_client_cert_type(s.ssl), TLSEXT_cert_type_rpk);
        assert_int_equal(SSL_get_negotiated_server_cert_type(c.ssl), TLSEXT_cert_type_rpk);
#endif
        done(&s, &c, sctx, cctx);
    }
}

/* The truncated ids (sha-256-128, sha-256-120) identify their keys. */
static void test_truncations(void **state)
{
    (void)state;
    static const char *const policies[] = { "dev128.policy", "dev120.policy", "dev128k.policy", "dev120k.policy" };
    static const char *const ids[] = { DEV128, DEV120, DEV128, DEV120 };
    for (size_t i = 0; i < 4; i++) {
        SSL_CTX *sctx = ctx_with(1, &HS_TLS13, "srv.policy"), *cctx = ctx_with(0, &HS_TLS13, policies[i]);
        hs_side s, c;
        run(sctx, cctx, &HS_TLS13, NULL, 0, &s, &c);
        expect_ok(&HS_TLS13, &s, &c);
        assert_str_eq(s.peer_id, ids[i]);
        assert_contains(s.cert_name, i % 2 == 0 ? "key:sha-256-128;" : "key:sha-256-120;");
        done(&s, &c, sctx, cctx);
    }
}

/* Another key is refused by the server, as a carrier and as a raw key. */
static void test_other_key_refused(void **state)
{
    (void)state;
    char want[128];
    snprintf(want, sizeof want, "key:sha-256;%s", id_intruder);
    for (size_t i = 0; i < HS_N_ALL; i++) {
        const hs_mode *m = HS_ALL[i];
        for (int raw = 0; raw < 2; raw++) {
            SSL_CTX *sctx = ctx_with(1, m, "srv.policy");
            SSL_CTX *cctx = ctx_with(0, m, raw ? "intruderk.policy" : "intruder.policy");
            hs_side s, c;
            run(sctx, cctx, m, NULL, 0, &s, &c);
            if (s.ok || s.peer_id != NULL)
                fail_msg("%s: another key accepted as %s", m->name, s.peer_id ? s.peer_id : "-");
            assert_false(s.handshake_ok);
            assert_int_equal(s.reject_code, M2MTLS_REJECT_NAME);
            assert_contains(s.reason, want);
            if (raw && HAVE_RPK)
                assert_contains(s.reason, "no association matches the peer's raw public key");
            done(&s, &c, sctx, cctx);
        }
    }
}

/* An initiator that pins the server's key refuses a server with another key
 * (here one whose certificate a look-alike root issued). */
static void test_pinned_server_key(void **state)
{
    (void)state;
    for (size_t i = 0; i < HS_N_ALL; i++) {
        const hs_mode *m = HS_ALL[i];
        SSL_CTX *sctx = ctx_with(1, m, "srv-look.policy"), *cctx = ctx_with(0, m, "devk.policy");
        hs_side s, c;
        run(sctx, cctx, m, NULL, 0, &s, &c);
        assert_false(c.ok);
        assert_null(c.peer_id);
        assert_int_equal(c.reject_code, M2MTLS_REJECT_NAME);
        assert_contains(c.reason, "the key configured for peer '/CSE-SRV'");
        done(&s, &c, sctx, cctx);
        /* and the server with the pinned key passes */
        sctx = ctx_with(1, m, "srv-look.policy");
        cctx = ctx_with(0, m, "devk-look.policy");
        run(sctx, cctx, m, NULL, 0, &s, &c);
        expect_ok(m, &s, &c);
        assert_str_eq(c.peer_id, "/CSE-SRV");
        done(&s, &c, sctx, cctx);
    }
}

/* A client offering raw public keys meets a server without key identities
 * (RFC 7250 not enabled there): both send certificates, the key association
 * still holds through the server's (CA-issued) certificate as its carrier. */
static void test_no_rpk_server(void **state)
{
    (void)state;
    for (size_t i = 0; i < HS_N_ALL; i++) {
        const hs_mode *m = HS_ALL[i];
        SSL_CTX *sctx = ctx_with(1, m, "srv-pin.policy"), *cctx = ctx_with(0, m, "devk.policy");
        hs_side s, c;
        run(sctx, cctx, m, NULL, 1, &s, &c);
        expect_ok(m, &s, &c);
        assert_str_eq(s.peer_id, DEV);
        assert_str_eq(s.anchor, "DEVPIN");
        assert_str_eq(c.peer_id, "/CSE-SRV");
        assert_contains(c.cert_name, "key:sha-256;");
        assert_false(peer_sent_raw_key(s.ssl));
        assert_false(peer_sent_raw_key(c.ssl));
        done(&s, &c, sctx, cctx);
    }
}

/* One server context, one key peer and one certificate peer. */
static void test_mixed_server(void **state)
{
    (void)state;
    for (size_t i = 0; i < HS_N_ALL; i++) {
        const hs_mode *m = HS_ALL[i];
        SSL_CTX *sctx = ctx_with(1, m, "srv.policy");
        static const char *const clients[] = { "cli.policy", "dev.policy", "devk.policy", "cli.policy" };
        static const char *const ids[] = { "/CSE-CLI", DEV, DEV, "/CSE-CLI" };
        for (size_t k = 0; k < 4; k++) {
            SSL_CTX *cctx = ctx_with(0, m, clients[k]);
            hs_side s, c;
            run(sctx, cctx, m, NULL, 0, &s, &c);
            expect_ok(m, &s, &c);
            assert_str_eq(s.peer_id, ids[k]);
            if (k == 0 || k == 3)
                assert_str_eq(s.anchor, "ALPHA");
            else
                assert_null(s.anchor);
            hs_side_pair_clear(&s, &c);
            SSL_CTX_free(cctx);
        }
        SSL_CTX_free(sctx);
    }
}

/* A resumed session keeps its key label on both sides, carrier or raw key. */
static void test_resumption(void **state)
{
    (void)state;
    static const hs_mode *const modes[] = { &HS_TLS12, &HS_TLS12_SID, &HS_TLS13, &HS_DTLS12 };
    for (size_t i = 0; i < 4; i++) {
        const hs_mode *m = modes[i];
        for (int raw = 0; raw < 2; raw++) {
            SSL_CTX *sctx = ctx_with(1, m, "srv.policy"), *cctx = ctx_with(0, m, raw ? "devk.policy" : "dev.policy");
            hs_side s, c, s2, c2;
            run(sctx, cctx, m, NULL, 0, &s, &c);
            expect_ok(m, &s, &c);
            assert_non_null(c.session);
            run(sctx, cctx, m, c.session, 0, &s2, &c2);
            expect_ok(m, &s2, &c2);
            if (!s2.reused || !c2.reused)
                fail_msg("%s (%s): not resumed", m->name, raw ? "raw keys" : "carrier");
            assert_str_eq(s2.peer_id, DEV);
            assert_contains(s2.cert_name, "key:sha-256;");
            assert_str_eq(c2.peer_id, "/CSE-SRV");
            hs_side_pair_clear(&s2, &c2);
            done(&s, &c, sctx, cctx);
        }
    }
}

/* A policy swap that removes the key: the device's session is not resumed,
 * and its full handshake is refused. */
static void test_swap_removes_key(void **state)
{
    (void)state;
    static const hs_mode *const modes[] = { &HS_TLS12, &HS_TLS12_SID, &HS_TLS13, &HS_DTLS12 };
    for (size_t i = 0; i < 4; i++) {
        const hs_mode *m = modes[i];
        SSL_CTX *sctx = ctx_with(1, m, "srv.policy"), *cctx = ctx_with(0, m, "dev.policy");
        hs_side s, c, s2, c2;
        run(sctx, cctx, m, NULL, 0, &s, &c);
        expect_ok(m, &s, &c);
        m2mtls_policy *removed = hs_policy_load(dir, "srv-removed.policy");
        assert_int_equal(m2mtls_ctx_set_policy(sctx, removed), 1);
        m2mtls_policy_free(removed);
        run(sctx, cctx, m, c.session, 0, &s2, &c2);
        if (s2.ok || s2.reused || s2.peer_id != NULL)
            fail_msg("%s: the removed key still got in (resumed=%d, peer=%s)", m->name, s2.reused,
                     s2.peer_id ? s2.peer_id : "-");
        assert_int_equal(s2.reject_code, M2MTLS_REJECT_NAME);
        hs_side_pair_clear(&s2, &c2);
        done(&s, &c, sctx, cctx);
    }
}

/* The initiator's side: a session made with the pinned key is not offered
 * once the policy pins another key for that association. */
static void test_initiator_swap(void **state)
{
    (void)state;
    SSL_CTX *sctx = ctx_with(1, &HS_TLS13, "srv.policy"), *cctx = ctx_with(0, &HS_TLS13, "devk.policy");
    hs_side s, c, s2, c2;
    run(sctx, cctx, &HS_TLS13, NULL, 0, &s, &c);
    expect_ok(&HS_TLS13, &s, &c);
    m2mtls_policy *look = hs_policy_load(dir, "devk-look.policy");
    assert_int_equal(m2mtls_ctx_set_policy(cctx, look), 1);
    m2mtls_policy_free(look);
    run(sctx, cctx, &HS_TLS13, c.session, 0, &s2, &c2);
    assert_false(c2.reused);
    assert_false(c2.ok);
    assert_null(c2.peer_id);
    assert_contains(c2.reason, "the key configured for peer '/CSE-SRV'");
    hs_side_pair_clear(&s2, &c2);
    done(&s, &c, sctx, cctx);
}

/* A session resumes only as the kind of association that made it: after a
 * swap that turns the server's association from its certificate to its key
 * (and back), the session is not offered, and a full handshake binds the
 * association as the current policy says. (A server named by a URI: no SNI,
 * which would keep the session from resuming anyway.) */
static void test_initiator_kind_change(void **state)
{
    (void)state;
    SSL_CTX *sctx = ctx_with(1, &HS_TLS13, "srv-uri.policy"), *cctx = ctx_with(0, &HS_TLS13, "devu.policy");
    static const char *const next[] = { "devku.policy", "devu.policy" };
    hs_side s, c;
    run(sctx, cctx, &HS_TLS13, NULL, 0, &s, &c);
    expect_ok(&HS_TLS13, &s, &c);
    for (size_t i = 0; i < 2; i++) {
        m2mtls_policy *p = hs_policy_load(dir, next[i]);
        assert_int_equal(m2mtls_ctx_set_policy(cctx, p), 1);
        m2mtls_policy_free(p);
        hs_side s2, c2;
        run(sctx, cctx, &HS_TLS13, c.session, 0, &s2, &c2);
        expect_ok(&HS_TLS13, &s2, &c2);
        if (c2.reused)
            fail_msg("%s: a session of the other kind of association was resumed", next[i]);
        assert_contains(c2.cert_name, i == 0 ? "key:sha-256;" : "uri://sp.example.com/CSE-SRV");
        hs_side_pair_clear(&s, &c);
        s = s2;
        c = c2;
    }
    done(&s, &c, sctx, cctx);
}

/* TS-0003 7.2.1 on a key identity's connection. */
static void test_originator(void **state)
{
    (void)state;
    for (int raw = 0; raw < 2; raw++) {
        SSL_CTX *sctx = ctx_with(1, &HS_TLS13, "srv.policy"), *cctx = ctx_with(0, &HS_TLS13, raw ? "devk.policy" : "dev.policy");
        hs_side s, c;
        run(sctx, cctx, &HS_TLS13, NULL, 1, &s, &c);
        expect_ok(&HS_TLS13, &s, &c);
        assert_int_equal(m2mtls_ssl_check_originator(s.ssl, "Cdev"), 1);
        assert_int_equal(m2mtls_ssl_check_originator(s.ssl, "/CSE-SRV/Cdev"), 1);
        assert_int_equal(m2mtls_ssl_check_originator(s.ssl, DEV), 1);
        assert_int_equal(m2mtls_ssl_check_originator(s.ssl, "Cdev128"), 0);
        assert_int_equal(m2mtls_ssl_check_originator(s.ssl, "//sp.example.com/CSE-SRV/Cother"), 0);
        done(&s, &c, sctx, cctx);
    }
}

static int refuse_all(int ok, X509_STORE_CTX *xs)
{
    (void)ok;
    (void)xs;
    return 0;
}

/* The application's verify callback can refuse a key identity, as any peer. */
static void test_app_verify_callback(void **state)
{
    (void)state;
    for (int raw = 0; raw < 2; raw++) {
        SSL_CTX *sctx = ctx_with(1, &HS_TLS12, "srv.policy"), *cctx = ctx_with(0, &HS_TLS12, raw ? "devk.policy" : "dev.policy");
        SSL_CTX_set_verify(sctx, SSL_CTX_get_verify_mode(sctx), refuse_all);
        hs_side s, c;
        run(sctx, cctx, &HS_TLS12, NULL, 0, &s, &c);
        if (s.ok || s.peer_id != NULL)
            fail_msg("%s: accepted despite the application's callback: %s", raw ? "raw" : "carrier",
                     s.peer_id ? s.peer_id : "-");
        assert_int_equal(s.reject_code, M2MTLS_REJECT_APPLICATION);
        assert_contains(s.reason, "key of peer '" DEV "': refused by the application's verify callback");
        done(&s, &c, sctx, cctx);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_verdict_carrier),
        cmocka_unit_test(test_verdict_carrier_spki_encodings),
        cmocka_unit_test(test_verdict_carrier_refusals),
        cmocka_unit_test(test_key_peer_carrier),
        cmocka_unit_test(test_key_both_ways),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_other_key_refused),
        cmocka_unit_test(test_pinned_server_key),
        cmocka_unit_test(test_no_rpk_server),
        cmocka_unit_test(test_mixed_server),
        cmocka_unit_test(test_resumption),
        cmocka_unit_test(test_swap_removes_key),
        cmocka_unit_test(test_initiator_swap),
        cmocka_unit_test(test_initiator_kind_change),
        cmocka_unit_test(test_originator),
        cmocka_unit_test(test_app_verify_callback),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
