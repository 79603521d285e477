/* SPDX-License-Identifier: Apache-2.0 */
/* The policy file format (README "Policy file"): one directive a line, `#`
 * starts a comment, tokens split on blanks. Every mistake is collected as
 * "FILE:LINE: what is wrong"; any mistake refuses the whole policy.
 * m2mtls_policy_load: a policy (policy.c) filled from its file. Uses
 * policy.c's look-ups and index keys; policy.c knows nothing of it. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/stat.h>
#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include "internal.h"

#define MAX_TOKENS 8
#define MAX_NAME   1024    /* longer configured names are a mistake, not a name */
#define MAX_LINE   65536   /* a line holds a few names: longer is no policy (and is not kept) */

typedef struct pending_anchor {  /* a reference to an anchor defined further down */
    uint32_t    index;           /* peer or pfc */
    int         is_pfc;
    const char *anchor;          /* arena */
    unsigned    line;
} pending_anchor;

typedef struct parse {
    m2mtls_policy *p;
    m2_errors     *errs;
    const char    *file;         /* as given, for messages */
    char          *dir;          /* for relative paths; NULL = cwd */
    unsigned       line;
    unsigned       local_id_line, cert_line, key_line, sp_id_line;
    EVP_MD_CTX    *digest;
    pending_anchor *pending; size_t n_pending, cap_pending;
    int            oom;
} parse;

#define ERR(ps, ...) m2_errors_add((ps)->errs, (ps)->file, (ps)->line, __VA_ARGS__)

/* ---- helpers ------------------------------------------------------------ */

static char *resolve_path(const parse *ps, const char *name)
{
    if (name[0] == '/' || ps->dir == NULL)
        return m2_strdup(name);
    size_t n = strlen(ps->dir) + 1 + strlen(name) + 1;
    char *path = malloc(n);
    if (path != NULL)
        snprintf(path, n, "%s/%s", ps->dir, name);
    return path;
}

static int has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

static const char *file_kind(mode_t m)
{
    return S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO" : S_ISCHR(m) ? "a character device"
         : S_ISBLK(m) ? "a block device" : S_ISSOCK(m) ? "a socket" : "not a regular file";
}

/* Policy, certificate and CRL files are regular files: opening a FIFO waits
 * for a writer (a reload would hold the handshake that runs it), a device
 * such as /dev/zero never ends, a directory is a mistake. Opened without
 * waiting; NULL with WHY otherwise. */
static FILE *open_regular(const char *path, char *why, size_t why_len)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(why, why_len, "%s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, why_len, "it is %s, not a regular file", file_kind(st.st_mode));
        close(fd);
        return NULL;
    }
    int flags = fcntl(fd, F_GETFL);
    FILE *f = flags >= 0 && fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == 0 ? fdopen(fd, "r") : NULL;
    if (f == NULL) {
        snprintf(why, why_len, "%s", strerror(errno));
        close(fd);
    }
    return f;
}

/* A BIO on the regular file PATH; NULL with a FILE:LINE error naming WHAT. */
static BIO *open_pem(parse *ps, const char *what, const char *path)
{
    char why[128];
    FILE *f = open_regular(path, why, sizeof why);
    BIO *bio = f != NULL ? BIO_new_fp(f, BIO_CLOSE) : NULL;
    if (f != NULL && bio == NULL) {
        fclose(f);
        snprintf(why, sizeof why, "out of memory");
    }
    if (bio == NULL) {
        ERR(ps, "%s: cannot read %s: %s", what, path, why);
        m2_err_discard_own();
    }
    return bio;
}

/* Reads every PEM certificate of PATH into a new stack. */
static STACK_OF(X509) *read_certs(parse *ps, const char *what, const char *path)
{
    BIO *bio = open_pem(ps, what, path);
    if (bio == NULL)
        return NULL;
    STACK_OF(X509) *certs = sk_X509_new_null();
    X509 *x;
    while (certs != NULL && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(certs, x)) {
            X509_free(x);
            ps->oom = 1;
            break;
        }
    }
    /* The policy's certificates are shared by every handshake: fill OpenSSL's
     * lazily computed extension cache now, while one thread owns them (else
     * the first concurrent verifications race on it). */
    for (int i = 0; certs != NULL && i < sk_X509_num(certs); i++)
        (void)X509_check_purpose(sk_X509_value(certs, i), -1, 0);
    unsigned long e = ERR_peek_last_error();
    int clean_end = e == 0 || (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE);
    if (!clean_end) {
        char reason[256];
        m2_openssl_reason(reason, sizeof reason);
        ERR(ps, "%s: %s: bad PEM certificate: %s", what, path, reason);
        sk_X509_pop_free(certs, X509_free);
        certs = NULL;
    }
    m2_err_discard_own();
    BIO_free(bio);
    return certs;
}

static void digest_cert(parse *ps, X509 *x)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    if (n > 0)
        EVP_DigestUpdate(ps->digest, der, (size_t)n);
    OPENSSL_free(der);
}

/* ---- names ---------------------------------------------------------------- */

static int valid_dns_name(const char *s)
{
    return m2_valid_dns_name(s, strlen(s));
}

/* Checks "dns:..." / "uri:..." and stores its index key (DNS lower-cased). */
static const char *parse_cert_name(parse *ps, const char *tok)
{
    if (strchr(tok, '*') != NULL) {
        ERR(ps, "certificate name '%s' contains '*': wildcards are never allowed", tok);
        return NULL;
    }
    if (has_control(tok)) {
        ERR(ps, "certificate name contains a control character");
        return NULL;
    }
    size_t n = strlen(tok);
    if (n > MAX_NAME) {
        ERR(ps, "certificate name is longer than %d bytes", MAX_NAME);
        return NULL;
    }
    if (strncmp(tok, "dns:", 4) == 0) {
        if (!valid_dns_name(tok + 4)) {
            ERR(ps, "certificate name '%s' is not a valid DNS name", tok);
            return NULL;
        }
        char low[MAX_NAME + 1];
        for (size_t i = 0; i <= n; i++)
            low[i] = (char)tolower((unsigned char)tok[i]);
        return m2_arena_strndup(&ps->p->arena, low, n);
    }
    if (strncmp(tok, "uri:", 4) == 0) {
        if (tok[4] == '\0') {
            ERR(ps, "certificate name 'uri:' has no value");
            return NULL;
        }
        for (const char *c = tok + 4; *c; c++)
            if ((unsigned char)*c >= 0x80) {
                ERR(ps, "certificate name '%s' is not ASCII (a URI subjectAltName is an IA5String)", tok);
                return NULL;
            }
        return m2_arena_strndup(&ps->p->arena, tok, n);
    }
    ERR(ps, "certificate name '%s' has no type: write dns:<fqdn> or uri:<value> (or key:<ALG>;<BASE64URL>, "
            "without an anchor, for a raw public key)", tok);
    return NULL;
}

static int parse_at(parse *ps, const char *v, m2_peer *peer)
{
    const char *rest;
    if (strncmp(v, "tls://", 6) == 0) {
        peer->at_transport = M2_AT_TLS;
        rest = v + 6;
    } else if (strncmp(v, "dtls://", 7) == 0) {
        peer->at_transport = M2_AT_DTLS;
        rest = v + 7;
    } else {
        ERR(ps, "at=%s: the address must be tls://HOST:PORT or dtls://HOST:PORT", v);
        return 0;
    }
    const char *host = rest, *colon;
    size_t host_len;
    if (*rest == '[') {
        const char *close = strchr(rest, ']');
        if (close == NULL || close[1] != ':' || close == rest + 1) {
            ERR(ps, "at=%s: an IPv6 address is written [ADDRESS]:PORT", v);
            return 0;
        }
        host = rest + 1;
        host_len = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(rest, ':');
        if (colon == NULL || colon == rest) {
            ERR(ps, "at=%s: missing host or port (HOST:PORT)", v);
            return 0;
        }
        host_len = (size_t)(colon - rest);
        if (memchr(rest, ':', host_len) != NULL) {
            ERR(ps, "at=%s: write an IPv6 address in brackets, [ADDRESS]:PORT", v);
            return 0;
        }
    }
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || port < 1 || port > 65535) {
        ERR(ps, "at=%s: port must be a number from 1 to 65535", v);
        return 0;
    }
    peer->at_port = (uint16_t)port;
    peer->at_host = m2_arena_strndup(&ps->p->arena, host, host_len);
    if (peer->at_host == NULL)
        ps->oom = 1;
    return peer->at_host != NULL;
}

static void add_pending(parse *ps, uint32_t index, int is_pfc, const char *anchor)
{
    if (ps->n_pending == ps->cap_pending) {
        size_t cap = ps->cap_pending ? ps->cap_pending * 2 : 16;
        pending_anchor *n = realloc(ps->pending, cap * sizeof *n);
        if (n == NULL) {
            ps->oom = 1;
            return;
        }
        ps->pending = n;
        ps->cap_pending = cap;
    }
    const char *a = m2_arena_strndup(&ps->p->arena, anchor, strlen(anchor));
    if (a == NULL) {
        ps->oom = 1;
        return;
    }
    ps->pending[ps->n_pending++] = (pending_anchor){ index, is_pfc, a, ps->line };
}

/* ---- directives ------------------------------------------------------------ */

static int want_args(parse *ps, const char *directive, int ntok, int min, int max, const char *usage)
{
    if (ntok - 1 < min) {
        ERR(ps, "%s: missing field: expected '%s'", directive, usage);
        return 0;
    }
    if (max >= 0 && ntok - 1 > max) {
        ERR(ps, "%s: too many fields: expected '%s'", directive, usage);
        return 0;
    }
    return 1;
}

static int once(parse *ps, const char *directive, unsigned *seen_line)
{
    if (*seen_line != 0) {
        ERR(ps, "duplicate %s (first at line %u)", directive, *seen_line);
        return 0;
    }
    *seen_line = ps->line;
    return 1;
}

static void do_local_id(parse *ps, char **tok, int ntok)
{
    if (!want_args(ps, "local-id", ntok, 1, 1, "local-id <ID>") || !once(ps, "local-id", &ps->local_id_line))
        return;
    if (has_control(tok[1])) {
        ERR(ps, "local-id contains a control character");
        return;
    }
    ps->p->local_id = m2_strdup(tok[1]);
    if (ps->p->local_id == NULL)
        ps->oom = 1;
}

/* `sp-id //SP-ID`: the own Service Provider, for a local-id that is
 * SP-relative (TS-0003 7.2.1 needs it to complete a relative From). */
static void do_sp_id(parse *ps, char **tok, int ntok)
{
    if (!want_args(ps, "sp-id", ntok, 1, 1, "sp-id //<SP-ID>") || !once(ps, "sp-id", &ps->sp_id_line))
        return;
    if (has_control(tok[1])) {
        ERR(ps, "sp-id contains a control character");
        return;
    }
    if (strncmp(tok[1], "//", 2) != 0 || !valid_dns_name(tok[1] + 2)) {
        ERR(ps, "sp-id '%s' is not of the form //SP-ID with the SP-ID a domain name (e.g. //sp.example.com)", tok[1]);
        return;
    }
    ps->p->sp_id = m2_strdup(tok[1] + 2);
    if (ps->p->sp_id == NULL)
        ps->oom = 1;
}

/* An absolute local-id names its SP: an sp-id line must name the same one. */
static void check_sp_id(parse *ps)
{
    const char *local = ps->p->local_id, *sp = ps->p->sp_id;
    if (sp == NULL || local == NULL || strncmp(local, "//", 2) != 0)
        return;
    size_t n = strcspn(local + 2, "/");
    if (n != strlen(sp) || strncasecmp(local + 2, sp, n) != 0) {
        ps->line = ps->sp_id_line;
        ERR(ps, "sp-id //%s does not match the SP-ID of local-id %s (line %u)", sp, local, ps->local_id_line);
    }
}

static void do_cert(parse *ps, char **tok, int ntok)
{
    if (!want_args(ps, "cert", ntok, 1, 1, "cert <PEM-FILE>") || !once(ps, "cert", &ps->cert_line))
        return;
    char *path = resolve_path(ps, tok[1]);
    if (path == NULL) {
        ps->oom = 1;
        return;
    }
    STACK_OF(X509) *certs = read_certs(ps, "cert", path);
    if (certs != NULL && sk_X509_num(certs) == 0)
        ERR(ps, "cert: %s holds no PEM certificate", path);
    else if (certs != NULL) {
        ps->p->cert = sk_X509_shift(certs);
        X509 *x;
        while ((x = sk_X509_shift(certs)) != NULL)
            if (!sk_X509_push(ps->p->chain, x)) {
                X509_free(x);
                ps->oom = 1;
            }
    }
    sk_X509_pop_free(certs, X509_free);
    free(path);
}

static void do_key(parse *ps, char **tok, int ntok)
{
    if (!want_args(ps, "key", ntok, 1, 1, "key <PEM-FILE | pkcs11:URI>") || !once(ps, "key", &ps->key_line))
        return;
    if (strncmp(tok[1], "pkcs11:", 7) == 0) {
        ps->p->key_ref = m2_strdup(tok[1]);
    } else {
        ps->p->key_ref = resolve_path(ps, tok[1]);
        if (ps->p->key_ref != NULL && access(ps->p->key_ref, R_OK) != 0)
            ERR(ps, "key: cannot read %s: %s", ps->p->key_ref, strerror(errno));
    }
    if (ps->p->key_ref == NULL)
        ps->oom = 1;
}

static void do_anchor(parse *ps, char **tok, int ntok)
{
    if (!want_args(ps, "anchor", ntok, 2, 2, "anchor <NAME> <PEM-FILE>"))
        return;
    m2mtls_policy *p = ps->p;
    uint32_t dup = m2_policy_find_anchor(p, tok[1]);
    if (dup != M2_NONE) {
        ERR(ps, "duplicate anchor '%s' (first at line %u)", tok[1], p->anchors[dup].line);
        return;
    }
    char *path = resolve_path(ps, tok[2]);
    if (path == NULL) {
        ps->oom = 1;
        return;
    }
    STACK_OF(X509) *certs = read_certs(ps, "anchor", path);
    if (certs != NULL && sk_X509_num(certs) != 1) {
        ERR(ps, "anchor '%s': %s must hold exactly one certificate, it holds %d", tok[1], path,
            sk_X509_num(certs));
    } else if (certs != NULL) {
        m2_anchor *a = realloc(p->anchors, (p->n_anchors + 1) * sizeof *a);
        if (a == NULL) {
            ps->oom = 1;
        } else {
            p->anchors = a;
            a = &p->anchors[p->n_anchors++];
            memset(a, 0, sizeof *a);
            a->name = m2_arena_strndup(&p->arena, tok[1], strlen(tok[1]));
            a->cert = sk_X509_shift(certs);
            a->line = ps->line;
            unsigned int len = 0;
            X509_digest(a->cert, EVP_sha256(), a->sha256, &len);
            digest_cert(ps, a->cert);
            if (a->name == NULL)
                ps->oom = 1;
        }
    }
    sk_X509_pop_free(certs, X509_free);
    free(path);
}

static void do_crl(parse *ps, char **tok, int ntok)
{
    if (!want_args(ps, "crl", ntok, 1, 1, "crl <PEM-FILE>"))
        return;
    char *path = resolve_path(ps, tok[1]);
    if (path == NULL) {
        ps->oom = 1;
        return;
    }
    BIO *bio = open_pem(ps, "crl", path);
    if (bio == NULL) {
        free(path);
        return;
    }
    int found = 0;
    X509_CRL *crl;
    while ((crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL) {
        unsigned char *der = NULL;
        int n = i2d_X509_CRL(crl, &der);
        if (n > 0)
            EVP_DigestUpdate(ps->digest, der, (size_t)n);
        OPENSSL_free(der);
        if (!sk_X509_CRL_push(ps->p->crls, crl)) {
            X509_CRL_free(crl);
            ps->oom = 1;
            break;
        }
        found++;
    }
    unsigned long e = ERR_peek_last_error();
    if (e != 0 && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
        char reason[256];
        m2_openssl_reason(reason, sizeof reason);
        ERR(ps, "crl: %s: bad PEM CRL: %s", path, reason);
    } else if (found == 0) {
        ERR(ps, "crl: %s holds no PEM CRL", path);
    }
    m2_err_discard_own();
    BIO_free(bio);
    free(path);
}

static uint32_t resolve_anchor_now(parse *ps, const char *name)
{
    return m2_policy_find_anchor(ps->p, name);
}

static int peer_option(parse *ps, const char *opt, m2_peer *peer)
{
    if (strncmp(opt, "as=", 3) == 0) {
        if (peer->as != NULL) {
            ERR(ps, "peer: duplicate as=");
            return 0;
        }
        if (opt[3] == '\0' || has_control(opt + 3)) {
            ERR(ps, "peer: as= needs an identity");
            return 0;
        }
        peer->as = m2_arena_strndup(&ps->p->arena, opt + 3, strlen(opt + 3));
        if (peer->as == NULL)
            ps->oom = 1;
        return peer->as != NULL;
    }
    if (strncmp(opt, "at=", 3) == 0) {
        if (peer->at_transport != M2_AT_NONE) {
            ERR(ps, "peer: duplicate at=");
            return 0;
        }
        return parse_at(ps, opt + 3, peer);
    }
    ERR(ps, "peer: unknown option '%s' (expected as=<LOCAL-ID> or at=tls://HOST:PORT | at=dtls://HOST:PORT)", opt);
    return 0;
}

static int grow_peers(m2mtls_policy *p)
{
    if (p->n_peers < p->cap_peers)
        return 1;
    if (p->n_peers >= M2_NONE - 1)
        return 0;
    uint32_t cap = p->cap_peers ? p->cap_peers * 2 : 64;
    m2_peer *n = realloc(p->peers, (size_t)cap * sizeof *n);
    if (n == NULL)
        return 0;
    p->peers = n;
    p->cap_peers = cap;
    return 1;
}

/* Stores PEER, named ID, at the next index and indexes it by its id; the
 * caller adds its name or key, then counts it. M2_NONE when the id is taken
 * (reported) or out of memory. */
static uint32_t store_peer(parse *ps, m2_peer *peer, const char *id)
{
    m2mtls_policy *p = ps->p;
    if (!grow_peers(p) || (peer->id = m2_arena_strndup(&p->arena, id, strlen(id))) == NULL) {
        ps->oom = 1;
        return M2_NONE;
    }
    uint32_t idx = p->n_peers;
    p->peers[idx] = *peer;
    int oom = 0;
    uint32_t dup = m2_index_put(&p->by_id, p, m2_peer_id_key, idx, &oom);
    if (oom) {
        ps->oom = 1;
        return M2_NONE;
    }
    if (dup != M2_NONE) {
        ERR(ps, "duplicate peer id '%s' (first at line %u)", id, p->peers[dup].line);
        return M2_NONE;
    }
    return idx;
}

/* "key:<ALG>;<BASE64URL>" -> its canonical text in the arena, followed by
 * its NUL, the id's length and its bytes (m2_peer_key_id reads them). */
static const char *parse_key_name(parse *ps, const char *id, const char *tok, unsigned char raw[32], size_t *len)
{
    char why[256], text[M2_KEYID_TEXT + 4];
    const char *alg;
    if (has_control(tok)) {
        ERR(ps, "peer '%s': the key id contains a control character", id);
        return NULL;
    }
    if (!m2_keyid_parse(tok + 4, raw, len, &alg, why, sizeof why)) {
        ERR(ps, "peer '%s': %.*s: %s", id, 100, tok, why);
        return NULL;
    }
    memcpy(text, "key:", 4);
    m2_keyid_format(raw, alg, text + 4, sizeof text - 4);
    size_t n = strlen(text);
    unsigned char buf[sizeof text + 1 + 32];
    memcpy(buf, text, n + 1);
    buf[n + 1] = (unsigned char)*len;
    memcpy(buf + n + 2, raw, *len);
    const char *name = m2_arena_strndup(&ps->p->arena, (const char *)buf, n + 2 + *len);
    if (name == NULL)
        ps->oom = 1;
    return name;
}

/* `peer ID key:<ALG>;<BASE64URL> [as=...] [at=...]`: a raw-public-key
 * identity (TS-0003: an RFC 6920 key id). No anchor and no certificate name:
 * the key is the identity. */
static void do_key_peer(parse *ps, char **tok, int ntok)
{
    static const char usage[] = "peer <ID> key:<ALG>;<BASE64URL> [as=<LOCAL-ID>] [at=tls://HOST:PORT | at=dtls://HOST:PORT]";
    if (!want_args(ps, "peer", ntok, 2, 4, usage))
        return;
    m2mtls_policy *p = ps->p;
    if (has_control(tok[1])) {
        ERR(ps, "peer: the id contains a control character");
        return;
    }
    unsigned char raw[32];
    size_t len = 0;
    m2_peer peer = { .next_same_name = M2_NONE, .line = ps->line, .anchor = M2_NONE, .name_type = M2_NAME_KEY };
    peer.name = parse_key_name(ps, tok[1], tok[2], raw, &len);
    int ok = peer.name != NULL;
    for (int i = 3; i < ntok; i++) {
        if (strchr(tok[i], '=') == NULL) {
            ERR(ps, "peer '%s': a key identity has no anchor (the key is the identity): unexpected '%.*s'", tok[1],
                100, tok[i]);
            ok = 0;
        } else {
            ok &= peer_option(ps, tok[i], &peer);
        }
    }
    if (!ok)
        return;
    /* Two ids that agree on their first 120 bits name one key (a shorter id
     * is a prefix of a longer one of the same key): it would select both. */
    uint32_t dup = p->n_key_peers ? m2_index_get(&p->by_key, p, m2_peer_keyid_key, (const char *)raw, M2_KEYID_MIN)
                                  : M2_NONE;
    if (dup != M2_NONE) {
        ERR(ps, "peer '%s': duplicate key: %s names the key of peer '%s' (line %u)", tok[1], peer.name,
            p->peers[dup].id, p->peers[dup].line);
        return;
    }
    uint32_t idx = store_peer(ps, &peer, tok[1]);
    if (idx == M2_NONE)
        return;
    int oom = 0;
    (void)m2_index_put(&p->by_key, p, m2_peer_keyid_key, idx, &oom);
    if (oom) {
        ps->oom = 1;
        return;
    }
    p->n_peers++;
    p->n_key_peers++;
}

static void do_peer(parse *ps, char **tok, int ntok)
{
    static const char usage[] =
        "peer <ID> <CERT-NAME> <ANCHOR> [as=<LOCAL-ID>] [at=tls://HOST:PORT | at=dtls://HOST:PORT]";
    if (ntok >= 3 && strncmp(tok[2], "key:", 4) == 0) {
        do_key_peer(ps, tok, ntok);
        return;
    }
    if (!want_args(ps, "peer", ntok, 3, 5, usage))
        return;
    m2mtls_policy *p = ps->p;
    if (has_control(tok[1])) {
        ERR(ps, "peer: the id contains a control character");
        return;
    }
    m2_peer peer = { .next_same_name = M2_NONE, .line = ps->line };
    peer.name = parse_cert_name(ps, tok[2]);
    int ok = peer.name != NULL;
    for (int i = 4; i < ntok; i++)
        ok &= peer_option(ps, tok[i], &peer);
    if (!ok)
        return;
    uint32_t idx = store_peer(ps, &peer, tok[1]);
    if (idx == M2_NONE)
        return;
    int oom = 0;
    uint32_t first = m2_index_put(&p->by_name, p, m2_peer_name_key, idx, &oom);
    if (oom) {
        ps->oom = 1;
        return;
    }
    if (first != M2_NONE) { /* another association with this name: chain behind the first */
        p->peers[idx].next_same_name = p->peers[first].next_same_name;
        p->peers[first].next_same_name = idx;
    }
    p->peers[idx].anchor = resolve_anchor_now(ps, tok[3]);
    if (p->peers[idx].anchor == M2_NONE)
        add_pending(ps, idx, 0, tok[3]);
    p->n_peers++;
}

static void do_pfc(parse *ps, char **tok, int ntok)
{
    if (!want_args(ps, "peers-from-cert", ntok, 2, 2, "peers-from-cert <ANCHOR> uri-prefix:<PREFIX>"))
        return;
    const char *prefix = tok[2];
    if (strncmp(prefix, "uri-prefix:", 11) != 0 || prefix[11] == '\0') {
        ERR(ps, "peers-from-cert: expected uri-prefix:<PREFIX>, got '%s'", prefix);
        return;
    }
    prefix += 11;
    if (strchr(prefix, '*') != NULL || has_control(prefix)) {
        ERR(ps, "peers-from-cert: the prefix must not contain '*' or control characters");
        return;
    }
    /* "Any AE of this CSE (or SP)": the identity is the prefix and one AE-ID-Stem. */
    char why[MAX_NAME + 200];
    if (strlen(prefix) > MAX_NAME || !m2_pfc_prefix_check(prefix, why, sizeof why)) {
        ERR(ps, "peers-from-cert: uri-prefix:%.*s: %s", 200, prefix,
            strlen(prefix) > MAX_NAME ? "the prefix is too long" : why);
        return;
    }
    m2mtls_policy *p = ps->p;
    m2_pfc *n = realloc(p->pfcs, (p->n_pfcs + 1) * sizeof *n);
    if (n == NULL) {
        ps->oom = 1;
        return;
    }
    p->pfcs = n;
    m2_pfc *r = &p->pfcs[p->n_pfcs];
    r->prefix = m2_arena_strndup(&p->arena, prefix, strlen(prefix));
    r->prefix_len = strlen(prefix);
    r->line = ps->line;
    r->anchor = resolve_anchor_now(ps, tok[1]);
    if (r->prefix == NULL) {
        ps->oom = 1;
        return;
    }
    if (r->anchor == M2_NONE)
        add_pending(ps, p->n_pfcs, 1, tok[1]);
    p->n_pfcs++;
}

/* ---- lines ------------------------------------------------------------------ */

static int tokenize(char *line, char **tok)
{
    int n = 0;
    char *s = line;
    for (;;) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '\0' || *s == '#')
            return n;
        if (n == MAX_TOKENS)
            return n + 1; /* too many: the directive reports it */
        tok[n++] = s;
        while (*s != '\0' && *s != ' ' && *s != '\t')
            s++;
        if (*s != '\0')
            *s++ = '\0';
    }
}

static void parse_line(parse *ps, char *line, size_t len)
{
    if (memchr(line, '\0', len) != NULL) {
        ERR(ps, "the line contains a NUL byte");
        return;
    }
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    char *tok[MAX_TOKENS];
    int ntok = tokenize(line, tok);
    if (ntok == 0)
        return;
    if (ntok > MAX_TOKENS) {
        ERR(ps, "too many fields");
        return;
    }
    static const struct {
        const char *name;
        void (*fn)(parse *, char **, int);
    } directives[] = {
        { "peer", do_peer },     { "local-id", do_local_id }, { "cert", do_cert },
        { "key", do_key },       { "anchor", do_anchor },     { "crl", do_crl },
        { "peers-from-cert", do_pfc }, { "sp-id", do_sp_id },
    };
    for (size_t i = 0; i < sizeof directives / sizeof directives[0]; i++)
        if (strcmp(tok[0], directives[i].name) == 0) {
            directives[i].fn(ps, tok, ntok);
            return;
        }
    if (has_control(tok[0]))
        ERR(ps, "unknown directive (it contains control characters)");
    else
        ERR(ps, "unknown directive '%s'", tok[0]);
}

static void resolve_pending(parse *ps)
{
    m2mtls_policy *p = ps->p;
    for (size_t i = 0; i < ps->n_pending; i++) {
        const pending_anchor *pa = &ps->pending[i];
        uint32_t a = m2_policy_find_anchor(p, pa->anchor);
        ps->line = pa->line;
        if (a == M2_NONE)
            ERR(ps, "unknown anchor '%s'", pa->anchor);
        else if (pa->is_pfc)
            p->pfcs[pa->index].anchor = a;
        else
            p->peers[pa->index].anchor = a;
    }
}

/* One store per anchor: a chain is only ever verified against the anchor of
 * the association it claims (the look-alike root of another anchor cannot
 * help it), with the policy's CRLs. */
static void build_anchor_stores(parse *ps)
{
    m2mtls_policy *p = ps->p;
    for (uint32_t i = 0; i < p->n_anchors; i++) {
        X509_STORE *st = X509_STORE_new();
        if (st == NULL || !X509_STORE_add_cert(st, p->anchors[i].cert)) {
            X509_STORE_free(st);
            ps->oom = 1;
            return;
        }
        for (int c = 0; c < sk_X509_CRL_num(p->crls); c++)
            if (!X509_STORE_add_crl(st, sk_X509_CRL_value(p->crls, c)))
                ps->oom = 1;
        p->anchors[i].store = st;
    }
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return NULL;
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

static int parse_policy_file(m2mtls_policy *p, m2_errors *errs)
{
    char why[128];
    FILE *f = open_regular(p->path, why, sizeof why);
    if (f == NULL) {
        m2_errors_add(errs, p->path, 0, "cannot open policy file: %s", why);
        return 0;
    }
    int ok = m2_parse_policy_stream(p, f, errs);
    fclose(f);
    return ok;
}

/* The lines of a file, read in blocks and split with memchr (as fast as
 * getline), each kept up to MAX_LINE bytes: a file with one endless line
 * costs no more memory than a short one. */
#define READ_BLOCK 65536
typedef struct lines {
    FILE  *f;
    char  *block;
    size_t pos, len;
} lines;

/* The next line into OUT (MAX_LINE + 1 bytes), *LEN its length with its
 * newline; a longer line is read to its end, not kept (*TOO_LONG). 0 at the end. */
static int next_line(lines *r, char *out, size_t *len, int *too_long)
{
    size_t n = 0;
    int any = 0;
    *too_long = 0;
    for (;;) {
        if (r->pos == r->len) {
            r->pos = 0;
            r->len = fread(r->block, 1, READ_BLOCK, r->f);
            if (r->len == 0)
                break;
        }
        any = 1;
        const char *at = r->block + r->pos;
        const char *nl = memchr(at, '\n', r->len - r->pos);
        size_t take = nl != NULL ? (size_t)(nl - at) + 1 : r->len - r->pos;
        size_t keep = take < MAX_LINE - n ? take : MAX_LINE - n;
        memcpy(out + n, at, keep);
        n += keep;
        *too_long |= keep < take;
        r->pos += take;
        if (nl != NULL)
            break;
    }
    out[n] = '\0';
    *len = n;
    return any;
}

int m2_parse_policy_stream(m2mtls_policy *p, FILE *f, m2_errors *errs)
{
    m2_err_saved app_errors;
    m2_err_stash(&app_errors); /* the PEM readers' reasons are read from the queue */
    parse ps = { .p = p, .errs = errs, .file = p->path };
    ps.dir = dir_of(p->path);
    ps.digest = EVP_MD_CTX_new();
    if (ps.digest == NULL || !EVP_DigestInit_ex(ps.digest, EVP_sha256(), NULL))
        ps.oom = 1;
    char *line = malloc(MAX_LINE + 1);
    lines in = { .f = f, .block = malloc(READ_BLOCK) };
    size_t len;
    int too_long;
    if (line == NULL || in.block == NULL)
        ps.oom = 1;
    while (!ps.oom && next_line(&in, line, &len, &too_long)) {
        ps.line++;
        EVP_DigestUpdate(ps.digest, line, len);
        if (too_long)
            ERR(&ps, "the line is longer than %d bytes", MAX_LINE);
        else
            parse_line(&ps, line, len);
    }
    free(in.block);
    if (ferror(f))
        m2_errors_add(errs, p->path, ps.line, "read error: %s", strerror(errno));
    free(line);
    if (!ps.oom) {
        resolve_pending(&ps);
        check_sp_id(&ps);
    }
    if (!ps.oom && errs->count == 0)
        build_anchor_stores(&ps);
    if (!ps.oom && !EVP_DigestFinal_ex(ps.digest, p->digest, NULL))
        ps.oom = 1;
    if (ps.oom)
        m2_errors_add(errs, p->path, ps.line, "out of memory");
    if (errs->count == 0 && p->n_peers == 0 && p->n_pfcs == 0 && p->n_anchors == 0)
        m2_errors_add(errs, p->path, 0, "the policy configures no anchor and no peer");
    EVP_MD_CTX_free(ps.digest);
    free(ps.pending);
    free(ps.dir);
    m2_err_unstash(&app_errors);
    return errs->count == 0;
}

m2mtls_policy *m2mtls_policy_load(const char *path)
{
    if (path == NULL || *path == '\0') {
        m2_set_error("m2mtls_policy_load: no policy file given");
        return NULL;
    }
    m2mtls_policy *p = m2_policy_new(path);
    if (p == NULL) {
        m2_set_error("%s: out of memory", path);
        return NULL;
    }
    m2_errors errs = { 0 };
    if (!parse_policy_file(p, &errs)) {
        m2_errors_publish(&errs);
        m2mtls_policy_free(p);
        return NULL;
    }
    free(errs.text);
    return p;
}
