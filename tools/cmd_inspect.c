/* SPDX-License-Identifier: Apache-2.0 */
/* m2mtls inspect: would the policy accept this certificate, and why (not)?
 * With --lint: does it follow the TS-0003 certificate profile (lint.c)? */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <m2mtls/policy.h>
#include "internal.h"
#include "lint.h"
#include "tool.h"

static const char usage[] =
    "usage: m2mtls inspect --policy FILE [--peer ID] [--chain FILE] [--at TIME] [--seclevel N] [--json] CERT|KEY\n"
    "       m2mtls inspect --lint [--chain FILE] [--at TIME] [--json] CERT\n"
    "       m2mtls inspect --key-id [--json] CERT|KEY\n"
    "\n"
    "Says whether the policy accepts CERT as a peer certificate, and why not,\n"
    "exactly as a handshake would. As a responder by default (any configured\n"
    "association); with --peer as an initiator that expects exactly that association.\n"
    "KEY, a PUBLIC KEY (PEM or DER), is judged as an RFC 7250 raw public key: only\n"
    "key identities (peer ID key:sha-256;...) can accept it. The RFC 6920 ids of\n"
    "the public key are printed too (key:sha-256;..., -128, -120: policy syntax).\n"
    "With --lint, checks CERT and its chain against the TS-0003 certificate profile\n"
    "instead (no policy): the check a PKI operator runs before issuing.\n"
    "\n"
    "  --policy FILE   the policy file (required without --lint or --key-id)\n"
    "  --peer ID       initiator: accept only the association with this peer id\n"
    "  --chain FILE    untrusted intermediate certificates (PEM); certificates that\n"
    "                  follow the first one in CERT are used as the chain too\n"
    "  --at TIME       verify at this RFC 3339 time (2026-01-31T12:00:00Z) instead of now\n"
    "  --seclevel N    the OpenSSL security level (0-5) of the context the handshake\n"
    "                  would run in (default: that of a default SSL_CTX of this\n"
    "                  OpenSSL); the policy never holds a chain to less than level 2\n"
    "  --lint          TS-0003 profile findings, one a line with its clause\n"
    "  --key-id        only the RFC 6920 key ids of the public key of CERT or KEY\n"
    "                  (no policy), one a line as a policy writes them\n"
    "  --json          print one JSON object: verdict, peer_id, local_id, cert_name,\n"
    "                  anchor, reason, reason_code, names, chain, key_ids (--lint:\n"
    "                  clean, certificates, findings; --key-id: key, key_ids)\n"
    "  -h, --help      this text\n"
    "\n"
    "Exit status: 0 accepted (prints 'accepted: PEER-ID'), 1 rejected (prints\n"
    "'rejected: REASON'), 2 usage, policy or file error. With --lint: 0 clean,\n"
    "1 findings, 2 usage or file error. With --key-id: 0, or 2 on an error.\n";

typedef struct inspect_args {
    const char *policy, *peer, *chain, *at, *cert;
    int json, lint, key_id, seclevel;
    time_t when;
} inspect_args;

static int parse_seclevel(const char *s, int *out)
{
    if (s[0] < '0' || s[0] > '5' || s[1] != '\0')
        return 0;
    *out = s[0] - '0';
    return 1;
}

static int usage_error(const char *why)
{
    fprintf(stderr, "m2mtls inspect: %s\n%s", why, usage);
    return 0;
}

static int parse_args(int argc, char **argv, inspect_args *a)
{
    static const struct option opts[] = {
        { "policy", required_argument, NULL, 'p' }, { "peer", required_argument, NULL, 'e' },
        { "chain", required_argument, NULL, 'c' },  { "at", required_argument, NULL, 't' },
        { "json", no_argument, NULL, 'j' },          { "help", no_argument, NULL, 'h' },
        { "lint", no_argument, NULL, 'l' },          { "seclevel", required_argument, NULL, 's' },
        { "key-id", no_argument, NULL, 'k' },        { NULL, 0, NULL, 0 },
    };
    int ch;
    const char *seclevel = NULL;
    a->seclevel = -1;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'p': a->policy = optarg; break;
        case 'e': a->peer = optarg; break;
        case 'c': a->chain = optarg; break;
        case 't': a->at = optarg; break;
        case 'j': a->json = 1; break;
        case 'l': a->lint = 1; break;
        case 'k': a->key_id = 1; break;
        case 's': seclevel = optarg; break;
        case 'h': fputs(usage, stdout); exit(EXIT_ACCEPTED);
        default: fputs(usage, stderr); return 0;
        }
    }
    if (optind != argc - 1)
        return usage_error("exactly one CERT file is required");
    if (a->lint && (a->policy != NULL || a->peer != NULL || seclevel != NULL))
        return usage_error("--lint checks the TS-0003 profile, not a policy: no --policy, --peer or --seclevel");
    if (a->key_id && (a->lint || a->policy != NULL || a->peer != NULL || seclevel != NULL || a->chain != NULL
                      || a->at != NULL))
        return usage_error("--key-id prints the key's ids: only --json goes with it");
    if (!a->lint && !a->key_id && a->policy == NULL)
        return usage_error("--policy FILE is required");
    a->cert = argv[optind];
    if (seclevel != NULL && !parse_seclevel(seclevel, &a->seclevel)) {
        fprintf(stderr, "m2mtls inspect: --seclevel %s: OpenSSL's security levels are 0 to 5\n", seclevel);
        return 0;
    }
    if (a->at != NULL && !tool_parse_rfc3339(a->at, &a->when)) {
        fprintf(stderr, "m2mtls inspect: --at %s: not an RFC 3339 time (like 2026-01-31T12:00:00Z)\n", a->at);
        return 0;
    }
    return 1;
}

/* ---- RFC 6920 key ids --------------------------------------------------------- */

static const char *const id_algs[] = { "sha-256", "sha-256-128", "sha-256-120" };

/* "EC prime256v1, 256 bits" */
static const char *describe_key(EVP_PKEY *key, char *buf, size_t len)
{
    char group[64] = "";
    EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, NULL);
    snprintf(buf, len, "%s%s%s, %d bits", EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "key",
             group[0] ? " " : "", group, EVP_PKEY_get_bits(key));
    return buf;
}

/* The key's ids as a policy writes them; TEXT: one a line after INDENT, JSON:
 * an object by hash name. 0 when the key cannot be encoded. */
static int print_key_ids(FILE *f, EVP_PKEY *key, int json, const char *first, const char *indent)
{
    unsigned char sha[32];
    if (key == NULL || !m2_key_sha256(key, sha)) {
        fputs(json ? "null" : "", f);
        return 0;
    }
    fputs(json ? "{" : "", f);
    for (size_t i = 0; i < sizeof id_algs / sizeof id_algs[0]; i++) {
        char id[M2_KEYID_TEXT], text[M2_KEYID_TEXT + 8];
        snprintf(text, sizeof text, "key:%s", m2_keyid_format(sha, id_algs[i], id, sizeof id));
        if (json)
            fprintf(f, "%s\"%s\": \"%s\"", i ? ", " : "", id_algs[i], text);
        else
            fprintf(f, "%s%s\n", i ? indent : first, text);
    }
    fputs(json ? "}" : "", f);
    return 1;
}

/* A PUBLIC KEY (PEM, or DER SubjectPublicKeyInfo) in FILE, or NULL (quietly). */
static EVP_PKEY *read_public_key(const char *file)
{
    BIO *bio = BIO_new_file(file, "rb");
    EVP_PKEY *key = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    if (key == NULL && bio != NULL && BIO_reset(bio) == 0)
        key = d2i_PUBKEY_bio(bio, NULL);
    BIO_free(bio);
    ERR_clear_error();
    return key;
}

/* Every subjectAltName, typed the way policy names are written. */
static void print_names(FILE *f, X509 *leaf, int json)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    int shown = 0;
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        const char *type;
        const ASN1_STRING *v = NULL;
        switch (g->type) {
        case GEN_DNS: type = "dns:"; v = g->d.dNSName; break;
        case GEN_URI: type = "uri:"; v = g->d.uniformResourceIdentifier; break;
        case GEN_EMAIL: type = "email:"; v = g->d.rfc822Name; break;
        case GEN_IPADD: type = "ip:"; break;
        case GEN_OTHERNAME: type = "othername:"; break;
        default: type = "other:"; break;
        }
        size_t tl = strlen(type), vl = v ? (size_t)ASN1_STRING_length(v) : 0;
        unsigned char *text = malloc(tl + vl + 1);
        if (text == NULL)
            continue;
        memcpy(text, type, tl);
        if (v != NULL)
            memcpy(text + tl, ASN1_STRING_get0_data(v), vl);
        if (json) {
            fputs(shown++ ? ", " : "", f);
            tool_json_bytes(f, text, tl + vl);
        } else {
            fputs(shown++ ? ", " : "", f);
            for (size_t k = 0; k < tl + vl; k++) /* never print a peer's raw control bytes */
                fputc(text[k] >= 0x20 && text[k] < 0x7f ? text[k] : '?', f);
        }
        free(text);
    }
    GENERAL_NAMES_free(gens);
}

static void print_chain_json(FILE *f, STACK_OF(X509) *chain)
{
    char buf[1024], t1[32], t2[32];
    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *x = sk_X509_value(chain, i);
        unsigned char md[32];
        unsigned int n = 0;
        char hex[65] = "";
        if (X509_digest(x, EVP_sha256(), md, &n))
            for (unsigned k = 0; k < n && k < 32; k++)
                snprintf(hex + 2 * k, 3, "%02x", md[k]);
        fprintf(f, "%s{\"subject\": ", i ? ", " : "");
        tool_json_str(f, tool_name(X509_get_subject_name(x), buf, sizeof buf));
        fprintf(f, ", \"issuer\": ");
        tool_json_str(f, tool_name(X509_get_issuer_name(x), buf, sizeof buf));
        fprintf(f, ", \"not_before\": \"%s\", \"not_after\": \"%s\", \"sha256\": \"%s\"}",
                tool_time(X509_get0_notBefore(x), t1, sizeof t1), tool_time(X509_get0_notAfter(x), t2, sizeof t2),
                hex);
    }
}

static void print_json(const inspect_args *a, const m2mtls_verdict *v, X509 *leaf, STACK_OF(X509) *seen)
{
    char buf[1024];
    printf("{\"verdict\": \"%s\", \"role\": \"%s\", \"peer_id\": ", v->accepted ? "accepted" : "rejected",
           a->peer ? "initiator" : "responder");
    tool_json_str(stdout, v->peer_id);
    printf(", \"local_id\": ");
    tool_json_str(stdout, v->local_id);
    printf(", \"cert_name\": ");
    tool_json_str(stdout, v->cert_name);
    printf(", \"anchor\": ");
    tool_json_str(stdout, v->anchor);
    printf(", \"reason\": ");
    tool_json_str(stdout, v->reason);
    printf(", \"reason_code\": ");
    tool_json_str(stdout, v->accepted ? NULL : m2mtls_reject_code_name(m2mtls_verdict_code(v)));
    printf(", \"subject\": ");
    tool_json_str(stdout, tool_name(X509_get_subject_name(leaf), buf, sizeof buf));
    printf(", \"names\": [");
    print_names(stdout, leaf, 1);
    int by_key = m2_verdict_by_key(v);
    printf("], \"chain\": [");
    print_chain_json(stdout, v->accepted ? v->chain : seen);
    /* A key identity's certificate only carries the key: nothing was verified to an anchor. */
    printf("], \"chain_verified\": %s, \"identified_by\": %s, \"key_ids\": ",
           v->accepted && !by_key ? "true" : "false",
           !v->accepted ? "null" : by_key ? "\"key\"" : "\"certificate\"");
    print_key_ids(stdout, X509_get0_pubkey(leaf), 1, "", "");
    printf("}\n");
}

static void print_text(const m2mtls_verdict *v, X509 *leaf)
{
    char buf[1024];
    if (v->accepted)
        printf("accepted: %s\n", v->peer_id);
    else
        printf("rejected: %s\n", v->reason);
    printf("  subject:  %s\n  names:    ", tool_name(X509_get_subject_name(leaf), buf, sizeof buf));
    print_names(stdout, leaf, 0);
    printf("\n");
    print_key_ids(stdout, X509_get0_pubkey(leaf), 0, "  key ids:  ", "            ");
    if (!v->accepted)
        return;
    if (m2_verdict_by_key(v)) {
        /* The certificate carries the key: its issuer, names and validity were not checked. */
        printf("  matched:  %s (the key is the identity; the certificate only carries it)\n  local id: %s\n",
               v->cert_name, v->local_id ? v->local_id : "(none configured)");
        return;
    }
    printf("  matched:  %s\n  anchor:   %s\n  local id: %s\n  chain:    ", v->cert_name, v->anchor,
           v->local_id ? v->local_id : "(none configured)");
    for (int i = 0; i < sk_X509_num(v->chain); i++)
        printf("%s%s", i ? "\n            <- " : "",
               tool_name(X509_get_subject_name(sk_X509_value(v->chain, i)), buf, sizeof buf));
    printf("\n");
}

/* --key-id: the ids of CERT's key, or of KEY. */
static int key_id_report(const inspect_args *a)
{
    EVP_PKEY *key = read_public_key(a->cert);
    STACK_OF(X509) *certs = key == NULL ? tool_read_certs(a->cert) : NULL;
    if (key == NULL && certs == NULL)
        return EXIT_USAGE;
    EVP_PKEY *k = key != NULL ? key : X509_get0_pubkey(sk_X509_value(certs, 0));
    char what[128] = "";
    int ok = k != NULL;
    if (ok && a->json) {
        printf("{\"file\": ");
        tool_json_str(stdout, a->cert);
        printf(", \"key\": ");
        tool_json_str(stdout, describe_key(k, what, sizeof what));
        printf(", \"key_ids\": ");
        ok = print_key_ids(stdout, k, 1, "", "");
        printf("}\n");
    } else if (ok) {
        ok = print_key_ids(stdout, k, 0, "", "");
    }
    if (!ok)
        fprintf(stderr, "m2mtls inspect: %s: the public key cannot be encoded\n", a->cert);
    EVP_PKEY_free(key);
    sk_X509_pop_free(certs, X509_free);
    return ok ? EXIT_ACCEPTED : EXIT_USAGE;
}

/* A bare public key judged as a raw public key (RFC 7250). */
static int inspect_key(const inspect_args *a, const m2mtls_policy *p, EVP_PKEY *key)
{
    if (a->chain != NULL) {
        fprintf(stderr, "m2mtls inspect: %s is a public key: --chain applies to certificates\n", a->cert);
        return EXIT_USAGE;
    }
    m2mtls_verdict v;
    int role = a->peer != NULL ? M2MTLS_INITIATOR : M2MTLS_RESPONDER;
    if (!m2_policy_check_key(p, key, a->peer, role, a->seclevel, &v)) {
        fprintf(stderr, "m2mtls inspect: %s\n", m2mtls_last_error());
        return EXIT_USAGE;
    }
    char what[128];
    if (a->json) {
        printf("{\"verdict\": \"%s\", \"role\": \"%s\", \"peer_id\": ", v.accepted ? "accepted" : "rejected",
               a->peer ? "initiator" : "responder");
        tool_json_str(stdout, v.peer_id);
        printf(", \"local_id\": ");
        tool_json_str(stdout, v.local_id);
        printf(", \"cert_name\": ");
        tool_json_str(stdout, v.cert_name);
        printf(", \"anchor\": null, \"reason\": ");
        tool_json_str(stdout, v.reason);
        printf(", \"reason_code\": ");
        tool_json_str(stdout, v.accepted ? NULL : m2mtls_reject_code_name(m2mtls_verdict_code(&v)));
        printf(", \"identified_by\": %s, \"key\": ", v.accepted ? "\"key\"" : "null");
        tool_json_str(stdout, describe_key(key, what, sizeof what));
        printf(", \"key_ids\": ");
        print_key_ids(stdout, key, 1, "", "");
        printf(", \"subject\": null, \"names\": [], \"chain\": [], \"chain_verified\": false}\n");
    } else {
        if (v.accepted)
            printf("accepted: %s\n  matched:  %s\n  local id: %s\n", v.peer_id, v.cert_name,
                   v.local_id ? v.local_id : "(none configured)");
        else
            printf("rejected: %s\n", v.reason);
        printf("  key:      raw public key, %s\n", describe_key(key, what, sizeof what));
        print_key_ids(stdout, key, 0, "  key ids:  ", "            ");
    }
    int rc = v.accepted ? EXIT_ACCEPTED : EXIT_REJECTED;
    m2mtls_verdict_clear(&v);
    return rc;
}

/* CERT's certificates followed by those of --chain; NULL on a file error. */
static STACK_OF(X509) *read_all(const inspect_args *a)
{
    STACK_OF(X509) *certs = tool_read_certs(a->cert), *extra = NULL;
    if (certs == NULL || (a->chain != NULL && (extra = tool_read_certs(a->chain)) == NULL)) {
        sk_X509_pop_free(certs, X509_free);
        return NULL;
    }
    for (int i = 0; i < sk_X509_num(extra); i++)
        if (sk_X509_push(certs, sk_X509_value(extra, i)))
            sk_X509_set(extra, i, NULL);
    sk_X509_pop_free(extra, X509_free);
    return certs;
}

int cmd_inspect(int argc, char **argv)
{
    inspect_args a = { 0 };
    if (!parse_args(argc, argv, &a))
        return EXIT_USAGE;
    if (a.lint) {
        STACK_OF(X509) *certs = read_all(&a);
        int rc = certs != NULL ? lint_report(stdout, a.cert, certs, a.when, a.json) : EXIT_USAGE;
        sk_X509_pop_free(certs, X509_free);
        return rc;
    }
    if (a.key_id)
        return key_id_report(&a);
    m2mtls_policy *p = m2mtls_policy_load(a.policy);
    if (p == NULL) {
        fprintf(stderr, "%s\n", m2mtls_last_error());
        return EXIT_USAGE;
    }
    EVP_PKEY *key = read_public_key(a.cert);
    if (key != NULL) {
        int krc = inspect_key(&a, p, key);
        EVP_PKEY_free(key);
        m2mtls_policy_free(p);
        return krc;
    }
    int rc = EXIT_USAGE;
    STACK_OF(X509) *certs = read_all(&a);
    if (certs == NULL)
        goto done;
    X509 *leaf = sk_X509_value(certs, 0);
    STACK_OF(X509) *chain = sk_X509_dup(certs);
    if (chain == NULL)
        goto done;
    (void)sk_X509_shift(chain);
    m2mtls_verdict v;
    int role = a.peer != NULL ? M2MTLS_INITIATOR : M2MTLS_RESPONDER;
    if (!m2mtls_policy_check_cert_ex(p, leaf, chain, a.peer, role, a.when, a.seclevel, &v)) {
        fprintf(stderr, "m2mtls inspect: %s\n", m2mtls_last_error());
    } else {
        if (a.json)
            print_json(&a, &v, leaf, certs);
        else
            print_text(&v, leaf);
        rc = v.accepted ? EXIT_ACCEPTED : EXIT_REJECTED;
    }
    m2mtls_verdict_clear(&v);
    sk_X509_free(chain);
done:
    sk_X509_pop_free(certs, X509_free);
    m2mtls_policy_free(p);
    return rc;
}
