/* SPDX-License-Identifier: Apache-2.0 */
/* m2mtls demo: the Certificate-Based Security Association Establishment
 * Framework (TS-0003 Figure 8.2.2.2-1) from end to end, with both entities'
 * private keys generated inside a throw-away SoftHSM token. Entity B (an
 * IN-CSE) and Entity A (an AE) run as real `m2mtls serve` / `m2mtls connect`
 * processes over TLS 1.2, TLS 1.3 and DTLS 1.2; then two refused attempts. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/conf.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include "internal.h"
#include "net.h"
#include "p11.h"
#include "pki.h"
#include "tool.h"

extern char **environ;

static const char usage[] =
    "usage: m2mtls demo [--keep DIR] [--module PATH] [--provider PATH]\n"
    "\n"
    "Runs TS-0003's Certificate-Based Security Association Establishment Framework\n"
    "end to end and narrates its phases: a throw-away SoftHSM token with both\n"
    "entities' keys generated inside it, a small PKI (a root of trust for CSEs and\n"
    "one for AEs), the policy files, an openssl.cnf loading the m2mtls provider;\n"
    "then Entity B (m2mtls serve) and Entity A (m2mtls connect) over TLS 1.2,\n"
    "TLS 1.3 and DTLS 1.2; Entity C, a device known by its key alone (an RFC 6920\n"
    "key id, RFC 7250 raw public keys on OpenSSL >= 3.2), its key in the token too;\n"
    "and two refused attempts: a certificate with the wrong name and one from a\n"
    "look-alike root. Exit 0 when every step went as expected.\n"
    "\n"
    "  --keep DIR       keep every generated file in DIR (templates to copy)\n"
    "  --module PATH    PKCS#11 module (default $M2MTLS_PKCS11_MODULE, else SoftHSM)\n"
    "  --provider PATH  the m2mtls provider module (default: $M2MTLS_PROVIDER_MODULE,\n"
    "                   else the one installed beside this command, else the build\n"
    "                   tree's)\n";

#define TOKEN    "m2mtls-demo"
#define USER_PIN "demo-user-pin"
#define SO_PIN   "demo-so-pin"
#define ID_B     "/in-cse"
#define FQDN_B   "in-cse.sp.example.com"
#define ID_A     "//sp.example.com/in-cse/Csensor7"
#define ID_C     "//sp.example.com/in-cse/Cmeter3"

typedef struct demo {
    char dir[4096];
    const char *provider, *module;
    char self[4096];
    int failures;
    /* RFC 6920 ids ("key:sha-256;..."): Entity C is known by its key, and
     * knows Entity B by B's. */
    char key_b[M2_KEYID_TEXT + 8], key_c[M2_KEYID_TEXT + 8];
} demo;

/* ---- narration ------------------------------------------------------------- */

static void phase(const char *title)
{
    int tty = isatty(1);
    printf("\n%s== %s%s\n", tty ? "\033[1m" : "", title, tty ? "\033[0m" : "");
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("   ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
}

static void expect(demo *d, int ok, const char *what)
{
    if (!ok) {
        d->failures++;
        printf("   !! unexpected: %s\n", what);
    }
}

/* ---- files ------------------------------------------------------------------ */

static char *path(const demo *d, const char *name)
{
    static char buf[4][sizeof d->dir + 512]; /* the directory and a file name */
    static int i;
    char *p = buf[i++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", d->dir, name);
    return p;
}

static int write_text(const demo *d, const char *name, const char *text, int mode)
{
    int fd = open(path(d, name), O_WRONLY | O_CREAT | O_TRUNC, mode);
    size_t n = strlen(text);
    int ok = fd >= 0 && write(fd, text, n) == (ssize_t)n;
    if (fd >= 0)
        close(fd);
    return ok;
}

static int write_pem(const demo *d, const char *name, X509 *x, EVP_PKEY *key)
{
    return tool_write_pem(path(d, name), x, key);
}

/* ---- a small PKI ------------------------------------------------------------- */

typedef struct ca { X509 *cert; EVP_PKEY *key; } ca;

static int make_root(const demo *d, const char *file, const char *cn, ca *out)
{
    out->key = EVP_EC_gen("P-256");
    out->cert = out->key ? tool_issue(cn, out->key, NULL, NULL, NULL) : NULL;
    return out->cert != NULL && write_pem(d, file, out->cert, NULL);
}

/* An entity certificate for a key in a file (the refused attempts). */
static int make_file_entity(const demo *d, const char *base, const char *cn, const ca *by, const char *san)
{
    char cert[256], key[256];
    snprintf(cert, sizeof cert, "%s.cert.pem", base);
    snprintf(key, sizeof key, "%s.key.pem", base);
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = k ? tool_issue(cn, k, by->cert, by->key, san) : NULL;
    int ok = x && write_pem(d, cert, x, NULL) && write_pem(d, key, NULL, k);
    X509_free(x);
    EVP_PKEY_free(k);
    return ok;
}

/* ---- processes ---------------------------------------------------------------- */

typedef struct child { pid_t pid; int out; } child;

static int spawn(const demo *d, char *const argv[], child *c)
{
    int p[2];
    if (pipe(p) != 0)
        return 0;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    posix_spawn_file_actions_addclose(&fa, p[1]);
    int rc = posix_spawn(&c->pid, d->self, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (rc != 0) {
        close(p[0]);
        return 0;
    }
    c->out = p[0];
    fcntl(c->out, F_SETFL, fcntl(c->out, F_GETFL) | O_NONBLOCK);
    return 1;
}

/* Reads what the child printed within WAIT_MS (or until it exits, or until
 * MAX_LINES lines when not 0), printed indented with PREFIX; the text is
 * also kept in BUF. */
static void drain_lines(child *c, int wait_ms, int max_lines, const char *prefix, char *buf, size_t len)
{
    int lines = 0;
    size_t used = buf ? strlen(buf) : 0;
    long long deadline = net_now_ms() + wait_ms;
    char chunk[4096], line[8192];
    size_t ll = 0;
    for (;;) {
        long long left = deadline - net_now_ms();
        struct pollfd p = { .fd = c->out, .events = POLLIN };
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        ssize_t n = read(c->out, chunk, sizeof chunk);
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            if (ll < sizeof line - 1)
                line[ll++] = chunk[i];
            if (chunk[i] == '\n') {
                line[ll] = '\0';
                printf("%s%s", prefix, line);
                if (buf && used + ll < len) {
                    memcpy(buf + used, line, ll + 1);
                    used += ll;
                }
                ll = 0;
                if (max_lines > 0 && ++lines >= max_lines) {
                    fflush(stdout);
                    return;
                }
            }
        }
    }
    fflush(stdout);
}

static void drain(child *c, int wait_ms, const char *prefix, char *buf, size_t len)
{
    drain_lines(c, wait_ms, 0, prefix, buf, len);
}

static int finish(child *c)
{
    int status = 0;
    drain(c, 15000, "     | ", NULL, 0);
    waitpid(c->pid, &status, 0);
    close(c->out);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void stop(child *c)
{
    if (c->pid <= 0)
        return;
    kill(c->pid, SIGTERM);
    drain(c, 300, "   B | ", NULL, 0);
    waitpid(c->pid, NULL, 0);
    close(c->out);
    c->pid = 0;
}

/* Starts Entity B; returns its port (from "listening on HOST:PORT"). */
static unsigned start_b(demo *d, const char *policy, int dtls, child *b)
{
    char pol[4200];
    snprintf(pol, sizeof pol, "%s", path(d, policy));
    char *argv[] = { "m2mtls", "serve", "--policy", pol, "--listen", "127.0.0.1:0", dtls ? "--dtls" : NULL, NULL };
    char first[512] = "";
    if (!spawn(d, argv, b))
        return 0;
    drain_lines(b, 5000, 1, "   B | ", first, sizeof first);
    const char *at = strstr(first, "127.0.0.1:");
    return at ? (unsigned)strtoul(at + 10, NULL, 10) : 0;
}

/* Runs an initiator (Entity A, or C) toward B once; returns its exit status,
 * output kept in OUT and shown after PREFIX. */
static int run_to_b(demo *d, const char *policy, const char *prefix, char *const extra[], char *out, size_t len)
{
    char pol[4200];
    snprintf(pol, sizeof pol, "%s", path(d, policy));
    char *argv[16] = { "m2mtls", "connect", "--policy", pol, "--peer", ID_B };
    int n = 6;
    for (int i = 0; extra[i] != NULL && n < 15; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    child a;
    out[0] = '\0';
    if (!spawn(d, argv, &a))
        return -1;
    drain(&a, 15000, prefix, out, len);
    int status = 0;
    waitpid(a.pid, &status, 0);
    close(a.out);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* ---- the phases ---------------------------------------------------------------- */

/* A key reference NAME.key.pem to the token key NAME (CKA_ID ID), written by
 * `m2mtls keyref --uri`. */
static int write_keyref(demo *d, const char *name, unsigned char id)
{
    char *uri = p11_key_uri(TOKEN, name, &id, 1, "private");
    char cmd[8192], file[256];
    snprintf(cmd, sizeof cmd, "%s", uri ? uri : "");
    snprintf(file, sizeof file, "%s.key.pem", name);
    free(uri);
    char *argv[] = { "m2mtls", "keyref", "--uri", cmd, "--out", path(d, file), NULL };
    child c;
    return spawn(d, argv, &c) && finish(&c) == 0;
}

/* "key:sha-256;..." of KEY into OUT. */
static int key_id_of(EVP_PKEY *key, char *out, size_t len)
{
    unsigned char sha[32];
    char id[M2_KEYID_TEXT];
    if (!m2_key_sha256(key, sha))
        return 0;
    snprintf(out, len, "key:%s", m2_keyid_format(sha, "sha-256", id, sizeof id));
    return 1;
}

/* Entity C, a metering device: its key in the token, a self-signed
 * certificate that only carries it, known to B by its RFC 6920 key id. */
static int device_c(demo *d, EVP_PKEY *kb)
{
    char why[256];
    EVP_PKEY *kc = m2_load_private_key(path(d, "entity-c.key.pem"), NULL, NULL, why, sizeof why);
    X509 *cc = kc != NULL ? tool_self_signed("Cmeter3", kc, "URI:" ID_C) : NULL;
    int ok = cc != NULL && write_pem(d, "entity-c.cert.pem", cc, NULL) && key_id_of(kc, d->key_c, sizeof d->key_c)
             && key_id_of(kb, d->key_b, sizeof d->key_b);
    if (!ok)
        fprintf(stderr, "m2mtls demo: Entity C: %s\n", kc != NULL ? tool_ssl_error(why, sizeof why) : why);
    else {
        say("Entity C (AE %s, a meter) is known by its key alone: its RFC 6920 id %s", ID_C, d->key_c);
        say("CertC: self-signed with PrivateKeyC (in the token); it only carries the key: no CA, no name checked");
    }
    X509_free(cc);
    EVP_PKEY_free(kc);
    return ok;
}

static int credential_configuration(demo *d)
{
    phase("Credential Configuration (TS-0003 8.1.5.1): keys inside a token, certificates, roots of trust");
    char conf[8192];
    snprintf(conf, sizeof conf,
             "# SoftHSM configuration: the token lives in this directory\n"
             "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n", d->dir);
    if (mkdir(path(d, "tokens"), 0700) != 0 || !write_text(d, "softhsm2.conf", conf, 0600)
        || !write_text(d, "pin", USER_PIN "\n", 0600))
        return 0;
    setenv("SOFTHSM2_CONF", path(d, "softhsm2.conf"), 1);
    p11 m;
    CK_SLOT_ID slot;
    if (!p11_open(&m, d->module) || !p11_init_token(&m, TOKEN, SO_PIN, USER_PIN, &slot)
        || !p11_generate_p256(&m, slot, USER_PIN, "entity-b", (const unsigned char *)"\x0b", 1)
        || !p11_generate_p256(&m, slot, USER_PIN, "entity-a", (const unsigned char *)"\x0a", 1)
        || !p11_generate_p256(&m, slot, USER_PIN, "entity-c", (const unsigned char *)"\x0c", 1)) {
        fprintf(stderr, "m2mtls demo: %s (module %s)\n", m.error, d->module);
        p11_close(&m);
        return 0;
    }
    p11_close(&m);
    say("token '%s' created (SoftHSM, %s/tokens)", TOKEN, d->dir);
    say("PrivateKeyB, PrivateKeyA and PrivateKeyC generated INSIDE the token (EC P-256, sensitive, never extractable)");

    snprintf(conf, sizeof conf,
             "# Loads the m2mtls provider: programs then use keys in the token by\n"
             "# key reference file or pkcs11: URI, unmodified.\n"
             "openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n"
             "[provider_sect]\ndefault = default_sect\nm2mtls = m2mtls_sect\n[default_sect]\nactivate = 1\n"
             "[m2mtls_sect]\nmodule = %s\npkcs11-module-path = %s\npkcs11-module-token-pin = file:%s/pin\nactivate = 1\n",
             d->provider, d->module, d->dir);
    if (!write_text(d, "openssl.cnf", conf, 0644))
        return 0;
    setenv("OPENSSL_CONF", path(d, "openssl.cnf"), 1);
    if (!OSSL_LIB_CTX_load_config(NULL, path(d, "openssl.cnf"))) {
        char why[256];
        fprintf(stderr, "m2mtls demo: cannot load the provider %s: %s\n", d->provider, tool_ssl_error(why, sizeof why));
        return 0;
    }
    say("openssl.cnf loads the m2mtls provider (%s)", d->provider);

    /* Key references: PEM files that name the keys in the token. */
    if (!write_keyref(d, "entity-b", 0x0b) || !write_keyref(d, "entity-a", 0x0a) || !write_keyref(d, "entity-c", 0x0c))
        return 0;

    ca cse_root = { 0 }, ae_root = { 0 }, lookalike = { 0 };
    char why[256];
    EVP_PKEY *kb = m2_load_private_key(path(d, "entity-b.key.pem"), NULL, NULL, why, sizeof why);
    EVP_PKEY *ka = m2_load_private_key(path(d, "entity-a.key.pem"), NULL, NULL, why, sizeof why);
    X509 *cb = NULL, *ca_ = NULL;
    int ok = kb && ka && make_root(d, "cse-root.pem", "oneM2M demo CSE Root", &cse_root)
             && make_root(d, "ae-root.pem", "oneM2M demo AE Root", &ae_root)
             && make_root(d, "lookalike-cse-root.pem", "oneM2M demo CSE Root", &lookalike)
             && (cb = tool_issue("in-cse", kb, cse_root.cert, cse_root.key, "DNS:" FQDN_B)) != NULL
             && (ca_ = tool_issue("Csensor7", ka, ae_root.cert, ae_root.key, "URI:" ID_A)) != NULL
             && write_pem(d, "entity-b.cert.pem", cb, NULL) && write_pem(d, "entity-a.cert.pem", ca_, NULL)
             && make_file_entity(d, "mallory", "Cmallory", &ae_root, "URI://sp.example.com/in-cse/Cmallory")
             && make_file_entity(d, "impostor", "in-cse", &lookalike, "DNS:" FQDN_B);
    if (!ok)
        fprintf(stderr, "m2mtls demo: cannot make the PKI: %s\n", kb && ka ? tool_ssl_error(why, sizeof why) : why);
    say("RootOfTrustB = cse-root.pem, RootOfTrustA = ae-root.pem (two separate roots)");
    say("CertB: subjectAltName dNSName %s (CertNameB), signed by cse-root, key in the token", FQDN_B);
    say("CertA: subjectAltName URI %s (CertNameA, the Absolute AE-ID), signed by ae-root, key in the token", ID_A);
    say("key references: entity-b.key.pem, entity-a.key.pem  (m2mtls keyref --show FILE)");
    ok = ok && device_c(d, kb);
    X509_free(cb);
    X509_free(ca_);
    EVP_PKEY_free(kb);
    EVP_PKEY_free(ka);
    ca *cas[] = { &cse_root, &ae_root, &lookalike };
    for (int i = 0; i < 3; i++) {
        X509_free(cas[i]->cert);
        EVP_PKEY_free(cas[i]->key);
    }
    return ok;
}

/* B's policy first (B starts on a free port), then A's, which routes to it. */
static int association_configuration(demo *d, unsigned tls_port)
{
    char b[2048], a[2048], m[2048], i[2048], c[2048];
    snprintf(b, sizeof b,
             "# Entity B: the IN-CSE (responder)\nlocal-id %s\ncert     entity-b.cert.pem\nkey      entity-b.key.pem\n"
             "anchor   ae-root ae-root.pem\n"
             "# IdA, CertNameA, RootOfTrustA\npeer     %s uri:%s ae-root\n"
             "# IdC by its key (RFC 6920 id): no certificate name, no root of trust\npeer     %s %s\n", ID_B, ID_A,
             ID_A, ID_C, d->key_c);
    snprintf(c, sizeof c,
             "# Entity C: a device AE (initiator), known by its key\nlocal-id %s\ncert     entity-c.cert.pem\n"
             "key      entity-c.key.pem\n# IdB by B's key; RFC 7250 raw public keys where OpenSSL has them\n"
             "peer     %s %s at=tls://127.0.0.1:%u\n", ID_C, ID_B, d->key_b, tls_port);
    snprintf(a, sizeof a,
             "# Entity A: the AE (initiator)\nlocal-id %s\ncert     entity-a.cert.pem\nkey      entity-a.key.pem\n"
             "anchor   cse-root cse-root.pem\n"
             "# IdB, CertNameB, RootOfTrustB; IdB routes the exchange (at=)\n"
             "peer     %s dns:%s cse-root at=tls://127.0.0.1:%u\n", ID_A, ID_B, FQDN_B, tls_port);
    snprintf(m, sizeof m, "# An AE the IN-CSE does not know\ncert mallory.cert.pem\nkey mallory.key.pem\n"
                          "anchor cse-root cse-root.pem\npeer %s dns:%s cse-root\n", ID_B, FQDN_B);
    snprintf(i, sizeof i, "# A server pretending to be the IN-CSE (look-alike root)\nlocal-id %s\n"
                          "cert impostor.cert.pem\nkey impostor.key.pem\nanchor ae-root ae-root.pem\n"
                          "peer %s uri:%s ae-root\n", ID_B, ID_A, ID_A);
    if (tls_port == 0)
        return write_text(d, "entity-b.policy", b, 0644) && write_text(d, "mallory.policy", m, 0644)
               && write_text(d, "impostor.policy", i, 0644);
    if (!write_text(d, "entity-a.policy", a, 0644) || !write_text(d, "entity-c.policy", c, 0644))
        return 0;
    phase("Association Configuration: each side is told who the other is");
    printf("   entity-b.policy:\n");
    for (char *l = strtok(b, "\n"); l; l = strtok(NULL, "\n"))
        printf("     %s\n", l);
    printf("   entity-a.policy:\n");
    for (char *l = strtok(a, "\n"); l; l = strtok(NULL, "\n"))
        printf("     %s\n", l);
    printf("   entity-c.policy:\n");
    for (char *l = strtok(c, "\n"); l; l = strtok(NULL, "\n"))
        printf("     %s\n", l);
    return 1;
}

static void handshake(demo *d, const char *title, char *const extra[], child *b)
{
    phase(title);
    char out[8192];
    int rc = run_to_b(d, "entity-a.policy", "   A | ", extra, out, sizeof out);
    drain(b, 300, "   B | ", NULL, 0);
    int ok = rc == 0 && strstr(out, "peer id:   " ID_B) != NULL;
    expect(d, ok, "the association was not established");
    if (!ok)
        return;
    say("A verified that CertB carries CertNameB (dns:%s) and chains to RootOfTrustB (cse-root)", FQDN_B);
    say("B verified that CertA carries CertNameA (uri:%s) and chains to RootOfTrustA (ae-root)", ID_A);
    say("each signed the handshake with its private key, inside the token");
    say("A associates this security context with IdB = %s; B associates it with IdA = %s", ID_B, ID_A);
}

/* Entity C and Entity B, each knowing the other by its key. */
static void handshake_by_key(demo *d, const char *title, char *const extra[], child *b)
{
    phase(title);
    char out[8192];
    int rc = run_to_b(d, "entity-c.policy", "   C | ", extra, out, sizeof out);
    drain(b, 300, "   B | ", NULL, 0);
    int ok = rc == 0 && strstr(out, "peer id:   " ID_B) != NULL && strstr(out, d->key_b) != NULL;
    expect(d, ok, "the key association was not established");
    if (!ok)
        return;
    int raw = strstr(out, "presented: raw public key") != NULL;
#if OPENSSL_VERSION_NUMBER >= 0x30200000L
    const char *carrier = "in a certificate (RFC 7250 was not negotiated): only the key is used";
#else
    const char *carrier = "in a certificate (OpenSSL 3.0 has no RFC 7250): only the key is used";
#endif
    say("each side presented its key %s", raw ? "raw (RFC 7250 raw public key): no certificate on the wire" : carrier);
    say("B found C's key id %s in its policy; C found B's (%s)", d->key_c, d->key_b);
    say("no certificate name, no root of trust: the key is the identity, and each proved it holds it");
    say("B associates this security context with IdC = %s", ID_C);
}

static int run(demo *d)
{
    if (!credential_configuration(d))
        return 0;
    child b = { 0 }, bd = { 0 }, bi = { 0 };
    if (!association_configuration(d, 0))
        return 0;
    unsigned port = start_b(d, "entity-b.policy", 0, &b);
    if (port == 0 || !association_configuration(d, port)) {
        stop(&b);
        return 0;
    }
    char portbuf[64];
    char *t12[] = { "--tls1.2", "--send", "hello from Csensor7", NULL };
    char *t13[] = { "--tls1.3", "--send", "hello from Csensor7", "--resume", "1", NULL };
    handshake(d, "Security Handshake over TLS 1.2 (TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256)", t12, &b);
    handshake(d, "Security Handshake over TLS 1.3 (then resumed: the identity comes back with the session)", t13, &b);
    unsigned dport = start_b(d, "entity-b.policy", 1, &bd);
    snprintf(portbuf, sizeof portbuf, "127.0.0.1:%u", dport);
    char *dt[] = { "--dtls", "--to", portbuf, "--send", "hello over DTLS", NULL };
    if (dport != 0)
        handshake(d, "Security Handshake over DTLS 1.2 (TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8)", dt, &bd);
    else
        expect(d, 0, "the DTLS responder did not start");
    char *kt[] = { "--tls1.3", "--send", "meter reading 42 kWh", NULL };
    handshake_by_key(d, "Entity C by its key (an RFC 6920 key id, RFC 7250 raw public keys) over TLS 1.3", kt, &b);
    char *kd[] = { "--dtls", "--to", portbuf, "--send", "meter reading 43 kWh", NULL };
    if (dport != 0)
        handshake_by_key(d, "Entity C by its key over DTLS 1.2", kd, &bd);
    stop(&bd);

    phase("Refused: an AE whose certificate carries another name (uri://sp.example.com/in-cse/Cmallory)");
    char out[8192], to[64];
    snprintf(to, sizeof to, "127.0.0.1:%u", port);
    char *plain[] = { "--to", to, NULL };
    int rc = run_to_b(d, "mallory.policy", "   A | ", plain, out, sizeof out);
    drain(&b, 300, "   B | ", NULL, 0);
    expect(d, rc == 1, "Mallory was not refused");
    say("B found no association for that name: the handshake was aborted, nothing is bound");
    stop(&b);

    phase("Refused: a server with the right name, from a look-alike root (same subject, another key)");
    unsigned iport = start_b(d, "impostor.policy", 0, &bi);
    snprintf(to, sizeof to, "127.0.0.1:%u", iport);
    rc = iport ? run_to_b(d, "entity-a.policy", "   A | ", plain, out, sizeof out) : -1;
    expect(d, rc == 1 && strstr(out, "cse-root") != NULL, "the impostor was not refused by A");
    say("A checked CertB against RootOfTrustB alone: the look-alike root does not satisfy it");
    stop(&bi);
    return 1;
}

static int remove_tree(const char *dir)
{
    char *argv[] = { "rm", "-rf", (char *)dir, NULL };
    pid_t pid;
    int status = 0;
    if (posix_spawnp(&pid, "rm", NULL, NULL, argv, environ) != 0)
        return 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int cmd_demo(int argc, char **argv)
{
    static const struct option opts[] = {
        { "keep", required_argument, NULL, 'k' },     { "module", required_argument, NULL, 'm' },
        { "provider", required_argument, NULL, 'p' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    demo d = { 0 };
    const char *keep = NULL, *provider = NULL, *module = NULL;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'k': keep = optarg; break;
        case 'm': module = optarg; break;
        case 'p': provider = optarg; break;
        case 'h': fputs(usage, stdout); return EXIT_ACCEPTED;
        default: fputs(usage, stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    d.module = p11_default_module(module);
    d.provider = tool_find_provider(provider);
    ssize_t n = readlink("/proc/self/exe", d.self, sizeof d.self - 1);
    if (n <= 0) {
        fprintf(stderr, "m2mtls demo: cannot find its own executable\n");
        return EXIT_USAGE;
    }
    d.self[n] = '\0';
    if (access(d.provider, R_OK) != 0 || access(d.module, R_OK) != 0) {
        fprintf(stderr, "m2mtls demo: %s: %s (%s)\n", access(d.provider, R_OK) ? d.provider : d.module, strerror(errno),
                access(d.provider, R_OK) ? "give --provider PATH to m2mtls.so" : "install softhsm2 or give --module");
        return EXIT_USAGE;
    }
    if (keep != NULL) {
        if (mkdir(keep, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "m2mtls demo: --keep %s: %s\n", keep, strerror(errno));
            return EXIT_USAGE;
        }
        if (realpath(keep, d.dir) == NULL)
            return EXIT_USAGE;
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(d.dir, sizeof d.dir, "%s/m2mtls-demo-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (mkdtemp(d.dir) == NULL) {
            fprintf(stderr, "m2mtls demo: cannot make a temporary directory: %s\n", strerror(errno));
            return EXIT_USAGE;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    printf("m2mtls demo: oneM2M TS-0003 Certificate-Based Security Association Establishment Framework\n");
    printf("Entity B = IN-CSE %s (%s); Entity A = AE %s. Files in %s\n", ID_B, FQDN_B, ID_A, d.dir);
    long long t0 = net_now_ms();
    int ok = run(&d) && d.failures == 0;
    phase(ok ? "Done: every association went as the policies say" : "Done, with unexpected results (above)");
    say("%.1f s", (double)(net_now_ms() - t0) / 1000.0);
    if (keep != NULL)
        say("kept in %s: softhsm2.conf tokens/ pin openssl.cnf *.policy *.pem — templates to copy", d.dir);
    else
        remove_tree(d.dir);
    return ok ? EXIT_ACCEPTED : EXIT_REJECTED;
}
