/* SPDX-License-Identifier: Apache-2.0 */
/* m2mtls csr: a certificate signing request with the subjectAltName TS-0003
 * 10.1.4 requires, signed by a key in a token (or a file). */
#include <ctype.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include "internal.h"
#include "tool.h"

static const char usage[] =
    "usage: m2mtls csr --key KEY (--cse-fqdn NAME | --ae-id //SP-ID/CSE-ID/AE-ID) [--subject CN] [--out FILE]\n"
    "\n"
    "Writes a PEM certificate signing request for KEY with the subjectAltName of\n"
    "TS-0003 10.1.4, keyUsage digitalSignature, signed with ECDSA P-256 / SHA-256.\n"
    "\n"
    "  --key KEY        a PEM key file, a key reference PEM or a pkcs11: URI (the\n"
    "                   last two through the m2mtls provider loaded by openssl.cnf)\n"
    "  --cse-fqdn NAME  a CSE-ID certificate: dNSName NAME (the CSE's public FQDN)\n"
    "  --ae-id ID       an AE-ID certificate: URI ID, the Absolute AE-ID\n"
    "  --subject CN     subject commonName (default: the FQDN or the AE-ID)\n"
    "  --out FILE       write the request there (default: standard output)\n"
    "\n"
    "Exit status: 0 written, 2 usage or key error.\n";

static int valid_fqdn(const char *s)
{
    size_t label = 0, n = strlen(s);
    if (n == 0 || n > 253 || s[0] == '.' || s[n - 1] == '.')
        return 0;
    for (; *s; s++) {
        if (*s == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if ((!isalnum((unsigned char)*s) && *s != '-') || ++label > 63) {
            return 0;
        }
    }
    return 1;
}

/* //SP-ID/CSE-ID/AE-ID, printable ASCII, no wildcard. */
static int valid_ae_id(const char *s)
{
    if (strncmp(s, "//", 2) != 0 || strchr(s, '*') != NULL)
        return 0;
    int slashes = 0;
    for (const char *c = s + 2; *c; c++) {
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
            return 0;
        if (*c == '/') {
            if (c[1] == '/' || c[1] == '\0')
                return 0;
            slashes++;
        }
    }
    return slashes >= 1 && s[2] != '/';
}

static int is_p256(EVP_PKEY *key)
{
    char group[64] = "";
    return EVP_PKEY_is_a(key, "EC")
           && EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, NULL)
           && (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0);
}

static int add_ext(STACK_OF(X509_EXTENSION) *exts, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, nid, value);
    if (ext == NULL || !sk_X509_EXTENSION_push(exts, ext)) {
        X509_EXTENSION_free(ext);
        return 0;
    }
    return 1;
}

static X509_REQ *make_request(EVP_PKEY *key, const char *cn, const char *san)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    int ok = req != NULL && name != NULL && exts != NULL && X509_REQ_set_version(req, X509_REQ_VERSION_1)
             && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0)
             && X509_REQ_set_subject_name(req, name) && X509_REQ_set_pubkey(req, key)
             && add_ext(exts, NID_subject_alt_name, san)
             && add_ext(exts, NID_key_usage, "critical,digitalSignature")
             && add_ext(exts, NID_basic_constraints, "critical,CA:FALSE")
             && X509_REQ_add_extensions(req, exts) && X509_REQ_sign(req, key, EVP_sha256()) > 0;
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_NAME_free(name);
    if (!ok) {
        X509_REQ_free(req);
        return NULL;
    }
    return req;
}

int cmd_csr(int argc, char **argv)
{
    static const struct option opts[] = {
        { "key", required_argument, NULL, 'k' },   { "cse-fqdn", required_argument, NULL, 'c' },
        { "ae-id", required_argument, NULL, 'a' }, { "subject", required_argument, NULL, 's' },
        { "out", required_argument, NULL, 'o' },   { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *keyref = NULL, *fqdn = NULL, *ae = NULL, *cn = NULL, *out = NULL;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'k': keyref = optarg; break;
        case 'c': fqdn = optarg; break;
        case 'a': ae = optarg; break;
        case 's': cn = optarg; break;
        case 'o': out = optarg; break;
        case 'h': fputs(usage, stdout); return EXIT_ACCEPTED;
        default: fputs(usage, stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc || keyref == NULL || (fqdn == NULL) == (ae == NULL)) {
        fprintf(stderr, "m2mtls csr: %s\n%s",
                keyref == NULL ? "--key is required" : "give exactly one of --cse-fqdn and --ae-id", usage);
        return EXIT_USAGE;
    }
    if (fqdn != NULL && !valid_fqdn(fqdn)) {
        fprintf(stderr, "m2mtls csr: --cse-fqdn %s: not a DNS name (letters, digits, '-', dots; no wildcard)\n", fqdn);
        return EXIT_USAGE;
    }
    if (ae != NULL && !valid_ae_id(ae)) {
        fprintf(stderr, "m2mtls csr: --ae-id %s: not an Absolute AE-ID (//SP-ID/CSE-ID/AE-ID, no wildcard)\n", ae);
        return EXIT_USAGE;
    }
    char san[1100];
    snprintf(san, sizeof san, "%s:%s", fqdn ? "DNS" : "URI", fqdn ? fqdn : ae);
    char err[256];
    EVP_PKEY *key = m2_load_private_key(keyref, NULL, NULL, err, sizeof err);
    if (key == NULL) {
        fprintf(stderr, "m2mtls csr: cannot load a private key from %s: %s\n", keyref, err);
        return EXIT_USAGE;
    }
    int rc = EXIT_USAGE;
    X509_REQ *req = NULL;
    if (!is_p256(key)) {
        fprintf(stderr, "m2mtls csr: %s is not an EC P-256 key (TS-0003 10.1.1: ECDSA on P-256 with SHA-256)\n", keyref);
        goto done;
    }
    req = make_request(key, cn ? cn : fqdn ? fqdn : ae, san);
    if (req == NULL) {
        fprintf(stderr, "m2mtls csr: cannot make the request: %s\n", tool_ssl_error(err, sizeof err));
        goto done;
    }
    BIO *bio = out ? BIO_new_file(out, "w") : BIO_new_fp(stdout, BIO_NOCLOSE);
    if (bio == NULL || !PEM_write_bio_X509_REQ(bio, req) || BIO_flush(bio) <= 0)
        fprintf(stderr, "m2mtls csr: cannot write %s: %s\n", out ? out : "to standard output",
                tool_ssl_error(err, sizeof err));
    else
        rc = EXIT_ACCEPTED;
    BIO_free(bio);
done:
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return rc;
}
