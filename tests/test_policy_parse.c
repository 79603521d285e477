/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The policy file format (DESIGN.md "Policy file"): every directive, every
 * error reported as "FILE:LINE: what is wrong", a policy with any error is
 * refused whole, and a large generated policy.
 */
#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "hs.h"
#include "pki.h"

#include <m2mtls/policy.h>

static char *dir;  /* the temporary directory with the PKI files */
static int   seq;  /* policy file names */

static int setup(void **state)
{
    pki_cert root, root2, leaf;
    *state = dir = pki_tmpdir(); /* for hs_test_dir_teardown */
    if (dir == NULL || !pki_root("Parse Root", &root) || !pki_root("Parse Root 2", &root2))
        return -1;
    pki_san s[] = { { PKI_SAN_DNS, "me.example.com", 0 }, { 0, 0, 0 } };
    if (!pki_leaf(&root, "me", s, &leaf))
        return -1;
    X509_CRL *crl = pki_crl(&root, NULL, 0, 86400);
    int ok = crl != NULL
        && pki_write_cert(dir, "root.pem", root.cert)
        && pki_write_cert(dir, "root2.pem", root2.cert)
        && pki_write_certs(dir, "two.pem", root.cert, root2.cert, (X509 *)NULL)
        && pki_write_bytes(dir, "empty.pem", "", 0)
        && pki_write_key(dir, "keyonly.pem", root.key)
        && pki_write_certs(dir, "leaf.pem", leaf.cert, root.cert, (X509 *)NULL)
        && pki_write_key(dir, "leaf.key", leaf.key)
        && pki_write_crl(dir, "crl.pem", crl);
    char *sub = pki_path(dir, "sub");
    ok = ok && sub != NULL && mkdir(sub, 0700) == 0
        && pki_write_cert(dir, "sub/only-here.pem", root2.cert);
    free(sub);
    X509_CRL_free(crl);
    pki_cert_free(&root);
    pki_cert_free(&root2);
    pki_cert_free(&leaf);
    return ok ? 0 : -1;
}

/* Writes LEN bytes of TEXT as a new policy file; returns its (malloc'd) path. */
static char *write_policy_bytes(const char *text, size_t len)
{
    char name[64];
    snprintf(name, sizeof name, "p%03d.policy", ++seq);
    assert_true(pki_write_bytes(dir, name, text, len));
    return pki_path(dir, name);
}

static char *write_policy(const char *text)
{
    return write_policy_bytes(text, strlen(text));
}

/* The line of ERR that starts with "PATH:LINE:", or NULL. Copied into BUF. */
static const char *error_line(const char *err, const char *path, int line, char *buf, size_t n)
{
    char key[PATH_MAX + 32];
    snprintf(key, sizeof key, "%s:%d:", path, line);
    for (const char *p = err; p != NULL && *p;) {
        const char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) : strlen(p);
        const char *hit = strstr(p, key);
        if (hit != NULL && hit < p + l) {
            snprintf(buf, n, "%.*s", (int)l, p);
            return buf;
        }
        p = nl ? nl + 1 : NULL;
    }
    return NULL;
}

static int contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++)
        if (strncasecmp(p, needle, n) == 0)
            return 1;
    return 0;
}

/* Loads LEN bytes of TEXT; the load must fail and report "PATH:LINE:" with one of WORDS. */
static void expect_error_bytes(const char *text, size_t len, int line, const char *const *words)
{
    char *path = write_policy_bytes(text, len);
    m2mtls_policy *p = m2mtls_policy_load(path);
    const char *err = m2mtls_last_error();
    char buf[2048];
    if (p != NULL) {
        m2mtls_policy_free(p);
        fail_msg("%s loaded although line %d is wrong:\n%s", path, line, text);
    }
    assert_non_null(err);
    const char *l = error_line(err, path, line, buf, sizeof buf);
    if (l == NULL)
        fail_msg("no \"%s:%d:\" in the error:\n%s\npolicy:\n%s", path, line, err, text);
    int found = 0;
    for (const char *const *w = words; *w && !found; w++)
        found = contains_ci(l, *w);
    if (getenv("M2MTLS_TEST_VERBOSE"))
        print_message("%s\n", l);
    if (!found)
        fail_msg("error line \"%s\" names none of the expected words (first: \"%s\")", l, words[0]);
    free(path);
}

#define EXPECT_ERROR(text, line, ...) do {                                        \
        const char *const w_[] = { __VA_ARGS__, NULL };                           \
        expect_error_bytes((text), strlen(text), (line), w_);                     \
    } while (0)

/* ---- accepted policies ------------------------------------------------- */

static void test_every_directive(void **state)
{
    (void)state;
    char *path = write_policy(
        "# m2mtls policy: every directive\n"
        "\n"
        "   # an indented comment\n"
        "local-id\t/CSE-IN\n"
        "cert   leaf.pem\n"
        "key\t\tleaf.key   # trailing comment\n"
        "crl crl.pem\n"
        "\t\n"
        "peer /CSE-1 dns:cse1.example.com LATER as=/CSE-IN-1 at=tls://cse1.example.com:443\n"
        "peer\t/CSE-2\tdns:cse2.example.com\tALPHA\tat=dtls://[::1]:5684\n"
        "peer /CSE-3 uri://sp.example.com/CSE-3 ALPHA at=tls://127.0.0.1:8443 as=/X\n"
        "peer /CSE-4 dns:CSE4.Example.com ALPHA at=dtls://cse4.example.com:5684\n"
        "peer //sp.example.com/CSE-1/Csensor7 uri://sp.example.com/CSE-1/Csensor7 ALPHA\n"
        "anchor ALPHA root.pem\n"
        "anchor LATER root2.pem   # defined after its first use\n"
        "peers-from-cert ALPHA uri-prefix://sp.example.com/AE/\n");
    m2mtls_policy *p = m2mtls_policy_load(path);
    if (p == NULL)
        fail_msg("load failed: %s", m2mtls_last_error());
    assert_int_equal(m2mtls_policy_peer_count(p), 5);
    assert_str_eq(m2mtls_policy_local_id(p), "/CSE-IN");
    /* reference counting */
    assert_int_equal(m2mtls_policy_up_ref(p), 1);
    m2mtls_policy_free(p);
    assert_int_equal(m2mtls_policy_peer_count(p), 5);
    m2mtls_policy_free(p);
    m2mtls_policy_free(NULL);
    free(path);
}

static void test_minimal_policies(void **state)
{
    (void)state;
    /* a responder that only takes identities from certificates: no peer line, no local-id */
    char *path = write_policy("anchor A root.pem\npeers-from-cert A uri-prefix://sp.example.com/\n");
    m2mtls_policy *p = m2mtls_policy_load(path);
    if (p == NULL)
        fail_msg("load failed: %s", m2mtls_last_error());
    assert_int_equal(m2mtls_policy_peer_count(p), 0);
    assert_null(m2mtls_policy_local_id(p));
    m2mtls_policy_free(p);
    free(path);
}

/* Relative file names resolve against the policy file's directory, not the
 * working directory; a relative policy path is reported as given. */
static void test_relative_paths(void **state)
{
    (void)state;
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    char *good = pki_path(dir, "sub/good.policy");
    assert_true(pki_writef(dir, "sub/good.policy",
                           "anchor A ../root.pem\nanchor B only-here.pem\n"
                           "peer /CSE-1 dns:a.example.com A\n"));
    /* from "/", neither file exists relative to the working directory */
    assert_int_equal(chdir("/"), 0);
    m2mtls_policy *p = m2mtls_policy_load(good);
    if (p == NULL) {
        assert_int_equal(chdir(cwd), 0);
        fail_msg("load from / failed: %s", m2mtls_last_error());
    }
    m2mtls_policy_free(p);

    /* a relative path to the policy: errors name it exactly as given */
    assert_true(pki_writef(dir, "sub/bad.policy",
                           "anchor A ../root.pem\n# comment\nbogus-directive x\n"));
    assert_int_equal(chdir(dir), 0);
    p = m2mtls_policy_load("sub/bad.policy");
    const char *err = m2mtls_last_error();
    assert_int_equal(chdir(cwd), 0);
    assert_null(p);
    assert_int_equal(strncmp(err, "sub/bad.policy:3:", strlen("sub/bad.policy:3:")), 0);

    /* and a relative policy path still resolves its files against its own directory */
    assert_int_equal(chdir(dir), 0);
    p = m2mtls_policy_load("sub/good.policy");
    err = m2mtls_last_error();
    assert_int_equal(chdir(cwd), 0);
    if (p == NULL)
        fail_msg("relative load failed: %s", err);
    m2mtls_policy_free(p);
    free(good);
}

static void test_large_policy(void **state)
{
    (void)state;
    const int n = 100000;
    size_t cap = (size_t)n * 64 + 256, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    len += (size_t)snprintf(text + len, cap - len, "local-id /CSE-IN\nanchor A root.pem\n");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, cap - len,
                                "peer /CSE-%d dns:cse%d.example.com A\n", i, i);
    char *path = write_policy_bytes(text, len);
    free(text);
    m2mtls_policy *p = m2mtls_policy_load(path);
    if (p == NULL)
        fail_msg("load failed: %.500s", m2mtls_last_error());
    assert_int_equal(m2mtls_policy_peer_count(p), (size_t)n);
    m2mtls_policy_free(p);
    free(path);
}

/* ---- errors ---------------------------------------------------------------- */

static void test_unknown_directive(void **state)
{
    (void)state;
    EXPECT_ERROR("anchor A root.pem\nfrobnicate x\n", 2, "unknown", "frobnicate");
    EXPECT_ERROR("anchor A root.pem\n\n# c\npeer-x /CSE-1 dns:a.example.com A\n", 4, "unknown");
}

static void test_missing_field(void **state)
{
    (void)state;
    EXPECT_ERROR("anchor A root.pem\npeer /CSE-1 dns:a.example.com\n", 2, "missing");
    EXPECT_ERROR("anchor A root.pem\npeer /CSE-1\n", 2, "missing");
    EXPECT_ERROR("anchor A\n", 1, "missing");
    EXPECT_ERROR("anchor A root.pem\nlocal-id\n", 2, "missing");
    EXPECT_ERROR("anchor A root.pem\ncert\n", 2, "missing");
    EXPECT_ERROR("anchor A root.pem\nkey\n", 2, "missing");
    EXPECT_ERROR("anchor A root.pem\ncrl\n", 2, "missing");
    EXPECT_ERROR("anchor A root.pem\npeers-from-cert A\n", 2, "missing");
}

static void test_extra_field(void **state)
{
    (void)state;
    EXPECT_ERROR("anchor A root.pem\nanchor B root2.pem extra\n", 2,
                 "too many", "extra", "unexpected");
    EXPECT_ERROR("anchor A root.pem\nlocal-id /CSE-1 /CSE-2\n", 2, "too many", "extra", "unexpected");
    EXPECT_ERROR("anchor A root.pem\npeers-from-cert A uri-prefix://sp/ more\n", 2,
                 "too many", "extra", "unexpected");
    EXPECT_ERROR("anchor A root.pem\ncrl crl.pem crl.pem\n", 2, "too many", "extra", "unexpected");
    /* an option that is neither as= nor at= */
    EXPECT_ERROR("anchor A root.pem\npeer /CSE-1 dns:a.example.com A bogus\n", 2,
                 "unknown", "too many", "extra", "unexpected", "option");
}

static void test_duplicate_peer(void **state)
{
    (void)state;
    EXPECT_ERROR("anchor A root.pem\n"
                 "peer /CSE-1 dns:a.example.com A\n"
                 "peer /CSE-1 dns:b.example.com A\n", 3, "duplicate");
}

static void test_unknown_anchor(void **state)
{
    (void)state;
    EXPECT_ERROR("anchor A root.pem\npeer /CSE-1 dns:a.example.com NOPE\n", 2,
                 "unknown anchor", "NOPE");
    EXPECT_ERROR("anchor A root.pem\npeers-from-cert NOPE uri-prefix://sp/\n", 2,
                 "unknown anchor", "NOPE");
}

static void test_unreadable_files(void **state)
{
    (void)state;
    EXPECT_ERROR("anchor A root.pem\nanchor B no-such-file.pem\n", 2, "no-such-file.pem");
    EXPECT_ERROR("anchor A root.pem\ncrl no-such-crl.pem\n", 2, "no-such-crl.pem");
    EXPECT_ERROR("anchor A root.pem\ncert no-such-cert.pem\nkey leaf.key\n", 2, "no-such-cert.pem");
    EXPECT_ERROR("anchor A root.pem\ncert leaf.pem\nkey no-such-key.pem\n", 3, "no-such-key.pem");
    /* a directory is not a readable certificate file */
    EXPECT_ERROR("anchor A root.pem\nanchor B .\n", 2, "cannot", "read", "certificate", "directory");
    /* the policy file itself */
    char *missing = pki_path(dir, "no-such.policy");
    assert_null(m2mtls_policy_load(missing));
    assert_contains(m2mtls_last_error(), missing);
    free(missing);
}

static void test_anchor_certificate_count(void **state)
{
    (void)state;
    EXPECT_ERROR("anchor A root.pem\nanchor Z empty.pem\n", 2, "certificate");
    EXPECT_ERROR("anchor A root.pem\nanchor Z keyonly.pem\n", 2, "certificate");
    EXPECT_ERROR("anchor A root.pem\nanchor Z two.pem\n", 2,
                 "exactly one", "holds 2", "2 certificates", "more than one");
}

static void test_bad_names(void **state)
{
    (void)state;
    EXPECT_ERROR("anchor A root.pem\npeer /CSE-1 dns:*.example.com A\n", 2, "*", "wildcard");
    EXPECT_ERROR("anchor A root.pem\npeer /CSE-1 dns:cse*.example.com A\n", 2, "*", "wildcard");
    EXPECT_ERROR("anchor A root.pem\npeer /AE uri://sp.example.com/*/C1 A\n", 2, "*", "wildcard");
    EXPECT_ERROR("anchor A root.pem\npeer /CSE-1 dns:a\001b.example.com A\n", 2, "control");
    EXPECT_ERROR("anchor A root.pem\npeer /CSE-1 uri://sp/\033[31mC1 A\n", 2, "control");
    EXPECT_ERROR("anchor A root.pem\npeer /CSE-1 dns:a.example.com\177 A\n", 2, "control",
                 "valid");
    static const char nul[] = "anchor A root.pem\npeer /CSE-1 dns:a.example.com\0.evil.com A\n";
    const char *const w[] = { "NUL", "control", NULL };
    expect_error_bytes(nul, sizeof nul - 1, 2, w);
    EXPECT_ERROR("anchor A root.pem\npeer /CSE-1 a.example.com A\n", 2, "type", "dns:");
    EXPECT_ERROR("anchor A root.pem\npeer /CSE-1 email:a@example.com A\n", 2, "type", "dns:");
    EXPECT_ERROR("anchor A root.pem\npeer /CSE-1 cn:a.example.com A\n", 2, "type", "dns:");
}

static void test_bad_at(void **state)
{
    (void)state;
    EXPECT_ERROR("anchor A root.pem\npeer /CSE-1 dns:a.example.com A at=http://a.example.com:80\n",
                 2, "at=", "scheme");
    EXPECT_ERROR("anchor A root.pem\npeer /CSE-1 dns:a.example.com A at=a.example.com:443\n",
                 2, "at=", "scheme");
    EXPECT_ERROR("anchor A root.pem\npeer /CSE-1 dns:a.example.com A at=tls://a.example.com:0\n",
                 2, "port");
    EXPECT_ERROR("anchor A root.pem\npeer /CSE-1 dns:a.example.com A at=tls://a.example.com:70000\n",
                 2, "port");
    EXPECT_ERROR("anchor A root.pem\npeer /CSE-1 dns:a.example.com A at=dtls://a.example.com\n",
                 2, "port");
    EXPECT_ERROR("anchor A root.pem\npeer /CSE-1 dns:a.example.com A at=tls://a.example.com:\n",
                 2, "port");
    EXPECT_ERROR("anchor A root.pem\npeer /CSE-1 dns:a.example.com A at=tls://a.example.com:44x\n",
                 2, "port");
    EXPECT_ERROR("anchor A root.pem\npeer /CSE-1 dns:a.example.com A at=dtls://[::1]\n", 2, "port");
}

static void test_duplicate_singletons(void **state)
{
    (void)state;
    EXPECT_ERROR("anchor A root.pem\nlocal-id /CSE-1\nlocal-id /CSE-1\n", 3, "duplicate");
    EXPECT_ERROR("anchor A root.pem\ncert leaf.pem\nkey leaf.key\ncert leaf.pem\n", 4, "duplicate");
    EXPECT_ERROR("anchor A root.pem\ncert leaf.pem\nkey leaf.key\nkey leaf.key\n", 4, "duplicate");
    EXPECT_ERROR("anchor A root.pem\nanchor A root2.pem\n", 2, "duplicate");
    EXPECT_ERROR("anchor A root.pem\nanchor B root.pem\nanchor B root2.pem\n", 3, "duplicate");
}

static void test_bad_peers_from_cert(void **state)
{
    (void)state;
    EXPECT_ERROR("anchor A root.pem\npeers-from-cert A //sp.example.com/\n", 2, "uri-prefix");
    EXPECT_ERROR("anchor A root.pem\npeers-from-cert A dns-prefix:sp.example.com\n", 2, "uri-prefix");
    EXPECT_ERROR("anchor A root.pem\npeers-from-cert A uri-prefix://sp.example.com/*\n", 2,
                 "*", "wildcard");
}

/* The prefix is //SP-ID/ or //SP-ID/CSE-ID/: "any AE of this SP (or CSE)". */
static void test_peers_from_cert_prefix(void **state)
{
    (void)state;
    static const struct { const char *prefix, *word; } bad[] = {
        { "sp.example.com/CSE-A/", "//SP-ID/" },          /* no // */
        { "m2m://sp.example.com/CSE-A/", "//SP-ID/" },    /* a scheme */
        { "//sp.example.com/CSE-A", "end with '/'" },     /* the stem would glue to the CSE-ID */
        { "//sp.example.com", "end with '/'" },
        { "//sp..example.com/", "not a domain name" },
        { "///CSE-A/", "not a domain name" },
        { "//sp.example.com:80/CSE-A/", "not a domain name" },
        { "//sp.example.com/CSE-A/Cx/", "one path segment" },
        { "//sp.example.com//", "CSE-ID" },
        { "//sp.example.com/CSE?A/", "CSE-ID" },
        { "//sp.example.com/CSE%41/", "CSE-ID" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "anchor A root.pem\npeers-from-cert A uri-prefix:%s\n", bad[i].prefix);
        EXPECT_ERROR(text, 2, bad[i].word);
    }
    static const char *const good[] = { "//sp.example.com/", "//sp.example.com/CSE-A/", "//sp/in-cse/",
                                        "//SP.Example.com/CSE_1.x~y/" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "anchor A root.pem\npeers-from-cert A uri-prefix:%s\n", good[i]);
        char *path = write_policy(text);
        m2mtls_policy *p = m2mtls_policy_load(path);
        if (p == NULL)
            fail_msg("uri-prefix:%s refused: %s", good[i], m2mtls_last_error());
        m2mtls_policy_free(p);
        free(path);
    }
}

/* Several mistakes: each one is reported with its line, and nothing loads. */
static void test_every_error_reported(void **state)
{
    (void)state;
    const char *text =
        "anchor A root.pem\n"                       /* 1 */
        "frobnicate\n"                              /* 2 unknown directive */
        "peer /CSE-1 dns:a.example.com A\n"         /* 3 */
        "peer /CSE-1 dns:b.example.com A\n"         /* 4 duplicate */
        "# comment\n"                               /* 5 */
        "peer /CSE-2 dns:*.example.com A\n"         /* 6 wildcard */
        "peer /CSE-3 dns:c.example.com NOPE\n"      /* 7 unknown anchor */
        "anchor Z two.pem\n"                        /* 8 two certificates */
        "peer /CSE-4 dns:d.example.com A at=tls://d:0\n"; /* 9 port */
    char *path = write_policy(text);
    assert_null(m2mtls_policy_load(path));
    const char *err = m2mtls_last_error();
    char buf[1024];
    static const int lines[] = { 2, 4, 6, 7, 8, 9 };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        if (error_line(err, path, lines[i], buf, sizeof buf) == NULL)
            fail_msg("line %d not reported in:\n%s", lines[i], err);
    static const int fine[] = { 1, 3, 5 };
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++)
        if (error_line(err, path, fine[i], buf, sizeof buf) != NULL)
            fail_msg("line %d wrongly reported in:\n%s", fine[i], err);
    free(path);
}

/* m2mtls_last_error() is per thread. */
static void *other_thread(void *arg)
{
    const char *e = m2mtls_last_error();
    int *clean = arg;
    *clean = e != NULL && strstr(e, "frobnicate-thread") == NULL;
    return NULL;
}

static void test_last_error_per_thread(void **state)
{
    (void)state;
    char *path = write_policy("anchor A root.pem\nfrobnicate-thread x\n");
    assert_null(m2mtls_policy_load(path));
    assert_contains(m2mtls_last_error(), ":2:");
    int clean = 0;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, other_thread, &clean), 0);
    pthread_join(t, NULL);
    assert_true(clean);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_directive),
        cmocka_unit_test(test_minimal_policies),
        cmocka_unit_test(test_relative_paths),
        cmocka_unit_test(test_large_policy),
        cmocka_unit_test(test_unknown_directive),
        cmocka_unit_test(test_missing_field),
        cmocka_unit_test(test_extra_field),
        cmocka_unit_test(test_duplicate_peer),
        cmocka_unit_test(test_unknown_anchor),
        cmocka_unit_test(test_unreadable_files),
        cmocka_unit_test(test_anchor_certificate_count),
        cmocka_unit_test(test_bad_names),
        cmocka_unit_test(test_bad_at),
        cmocka_unit_test(test_duplicate_singletons),
        cmocka_unit_test(test_bad_peers_from_cert),
        cmocka_unit_test(test_peers_from_cert_prefix),
        cmocka_unit_test(test_every_error_reported),
        cmocka_unit_test(test_last_error_per_thread),
    };
    return cmocka_run_group_tests(tests, setup, hs_test_dir_teardown);
}
