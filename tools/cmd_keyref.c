/* SPDX-License-Identifier: Apache-2.0 */
/* m2mtls keyref: key references (PEM files naming a key in a token), and the
 * tokens, keys and certificates of a PKCS#11 module. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include "internal.h"
#include "keyref.h"
#include "p11.h"
#include "tool.h"



static const char usage[] =
    "usage: m2mtls keyref --list [--module PATH] [--pin PIN] [--json]\n"
    "       m2mtls keyref --uri URI --out FILE\n"
    "       m2mtls keyref --show FILE [--json]\n"
    "       m2mtls keyref --generate --token LABEL --label NAME [--id HEX] [--pin PIN] [--module PATH]\n"
    "\n"
    "  --list         the tokens of a PKCS#11 module and their keys and certificates,\n"
    "                 each with its pkcs11: URI (private keys need --pin)\n"
    "  --uri, --out   write a key reference: a PEM file ('" M2C_KEYREF_PEM_LABEL "') naming the\n"
    "                 key by URI; programs read it like a key file when openssl.cnf loads\n"
    "                 the m2mtls provider (same format as the pkcs11-provider project)\n"
    "  --show         what a key reference points to, whether the key is reachable now\n"
    "                 (through the provider; exit 1 when it is not), and whether the\n"
    "                 provider signs with a session copy of it ('cached in session'), and\n"
    "                 its RFC 6920 key id (key:sha-256;...: a key identity in a policy)\n"
    "  --generate     an EC P-256 key pair generated inside the token LABEL: the private\n"
    "                 key is sensitive and never extractable; prints its URI (the CKA_ID\n"
    "                 is --id HEX, else random)\n"
    "  --module PATH  the PKCS#11 module (default $M2MTLS_PKCS11_MODULE, else SoftHSM)\n"
    "  --pin PIN      the token's user PIN ('file:PATH' reads it from a file)\n";

/* ---- the key reference format -------------------------------------------- */

static int write_keyref(const char *uri, const char *out)
{
    BIO *b = BIO_new_file(out, "w");
    int ok = b != NULL && m2c_keyref_pem_write(b, uri) && BIO_flush(b) > 0;
    BIO_free(b);
    return ok;
}

static void describe_key(EVP_PKEY *key, char *buf, size_t len)
{
    char group[64] = "";
    EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, NULL);
    snprintf(buf, len, "%s%s%s, %d bits", EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "key",
             group[0] ? " " : "", group, EVP_PKEY_get_bits(key));
}

/* Whether the provider signs with a session copy of the key: "yes" or "no
 * (why)", from the m2mtls provider's key parameter (provider/README.md);
 * NULL for a key some other provider holds. */
#define SESSION_CACHE_PARAM "m2mtls-session-cache"

static const char *session_cache(EVP_PKEY *key, char *buf, size_t len)
{
    if (key == NULL || !EVP_PKEY_get_utf8_string_param(key, SESSION_CACHE_PARAM, buf, len, NULL))
        return NULL;
    return buf;
}

/* "no (why)" -> "why" */
static const char *cache_why(const char *status)
{
    const char *p = strchr(status, '(');
    static char why[256];

    if (p == NULL)
        return NULL;
    snprintf(why, sizeof why, "%s", p + 1);
    why[strcspn(why, ")")] = '\0';
    return why;
}

static int show(const char *file, int json)
{
    char why[512];
    char *uri = m2_keyref_uri(file, why, sizeof why);
    if (uri == NULL) {
        fprintf(stderr, "m2mtls keyref: %s\n", why);
        return EXIT_USAGE;
    }
    EVP_PKEY *key = m2_load_private_key(file, NULL, NULL, why, sizeof why);
    char what[128] = "", cbuf[256];
    if (key != NULL)
        describe_key(key, what, sizeof what);
    const char *cache = session_cache(key, cbuf, sizeof cbuf);
    /* TS-0003 names a raw public key by its RFC 6920 id: what a peer's policy
     * writes as `peer ID key:sha-256;...` for this key. */
    unsigned char sha[32];
    char idbuf[M2_KEYID_TEXT], key_id[M2_KEYID_TEXT + 8] = "";
    if (key != NULL && m2_key_sha256(key, sha))
        snprintf(key_id, sizeof key_id, "key:%s", m2_keyid_format(sha, "sha-256", idbuf, sizeof idbuf));
    if (json) {
        printf("{\"file\": ");
        tool_json_str(stdout, file);
        printf(", \"uri\": ");
        tool_json_str(stdout, uri);
        printf(", \"reachable\": %s, \"key\": ", key ? "true" : "false");
        tool_json_str(stdout, key ? what : NULL);
        printf(", \"key_id\": ");
        tool_json_str(stdout, key_id[0] ? key_id : NULL);
        printf(", \"error\": ");
        tool_json_str(stdout, key ? NULL : why);
        printf(", \"cached_in_session\": %s, \"cache_why\": ",
               cache == NULL ? "null" : strcmp(cache, "yes") == 0 ? "true" : "false");
        tool_json_str(stdout, cache != NULL ? cache_why(cache) : NULL);
        printf("}\n");
    } else {
        printf("%s: key reference\n  uri:       %s\n", file, uri);
        if (key != NULL) {
            printf("  reachable: yes, %s\n", what);
            printf("  key id:    %s\n", key_id[0] ? key_id : "(the public key cannot be encoded)");
            printf("  cached in session: %s\n", cache != NULL ? cache : "unknown (not a key of the m2mtls provider)");
        } else
            printf("  reachable: no: %s\n  (is OPENSSL_CONF loading the m2mtls provider, with the token's PIN?)\n", why);
    }
    EVP_PKEY_free(key);
    OPENSSL_free(uri);
    return key != NULL ? EXIT_ACCEPTED : EXIT_REJECTED;
}

/* ---- entry ---------------------------------------------------------------- */

static int parse_hex(const char *s, unsigned char *out, size_t max, size_t *n)
{
    size_t len = strlen(s);
    if (len == 0 || len % 2 != 0 || len / 2 > max)
        return 0;
    for (size_t i = 0; i < len / 2; i++) {
        int v = OPENSSL_hexchar2int((unsigned char)s[2 * i]) * 16 + OPENSSL_hexchar2int((unsigned char)s[2 * i + 1]);
        if (OPENSSL_hexchar2int((unsigned char)s[2 * i]) < 0 || OPENSSL_hexchar2int((unsigned char)s[2 * i + 1]) < 0)
            return 0;
        out[i] = (unsigned char)v;
    }
    *n = len / 2;
    return 1;
}

/* "file:PATH" reads the PIN from a file (first line). */
static const char *resolve_pin(const char *pin, char *buf, size_t len)
{
    if (pin == NULL || strncmp(pin, "file:", 5) != 0)
        return pin;
    FILE *f = fopen(pin + 5, "r");
    if (f == NULL || fgets(buf, (int)len, f) == NULL) {
        if (f)
            fclose(f);
        return NULL;
    }
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
    return buf;
}

int cmd_keyref(int argc, char **argv)
{
    static const struct option opts[] = {
        { "list", no_argument, NULL, 'l' },        { "uri", required_argument, NULL, 'u' },
        { "out", required_argument, NULL, 'o' },   { "show", required_argument, NULL, 's' },
        { "generate", no_argument, NULL, 'g' },    { "token", required_argument, NULL, 't' },
        { "label", required_argument, NULL, 'L' }, { "id", required_argument, NULL, 'i' },
        { "module", required_argument, NULL, 'm' }, { "pin", required_argument, NULL, 'p' },
        { "json", no_argument, NULL, 'j' },        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *uri = NULL, *out = NULL, *showf = NULL, *token = NULL, *label = NULL, *id = NULL, *module = NULL,
               *pin = NULL;
    int list = 0, gen = 0, json = 0, ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'l': list = 1; break;
        case 'u': uri = optarg; break;
        case 'o': out = optarg; break;
        case 's': showf = optarg; break;
        case 'g': gen = 1; break;
        case 't': token = optarg; break;
        case 'L': label = optarg; break;
        case 'i': id = optarg; break;
        case 'm': module = optarg; break;
        case 'p': pin = optarg; break;
        case 'j': json = 1; break;
        case 'h': fputs(usage, stdout); return EXIT_ACCEPTED;
        default: fputs(usage, stderr); return EXIT_USAGE;
        }
    }
    int modes = list + (uri != NULL || out != NULL) + (showf != NULL) + gen;
    if (optind != argc || modes != 1) {
        fprintf(stderr, "m2mtls keyref: give exactly one of --list, --uri/--out, --show, --generate\n%s", usage);
        return EXIT_USAGE;
    }
    if (showf != NULL)
        return show(showf, json);
    if (uri != NULL || out != NULL) {
        if (uri == NULL || out == NULL || strncmp(uri, "pkcs11:", 7) != 0) {
            fprintf(stderr, "m2mtls keyref: --uri pkcs11:... and --out FILE go together\n");
            return EXIT_USAGE;
        }
        if (!write_keyref(uri, out)) {
            fprintf(stderr, "m2mtls keyref: cannot write %s\n", out);
            return EXIT_USAGE;
        }
        printf("wrote %s -> %s\n", out, uri);
        return EXIT_ACCEPTED;
    }
    char pinbuf[256];
    const char *real_pin = resolve_pin(pin, pinbuf, sizeof pinbuf);
    if (pin != NULL && real_pin == NULL) {
        fprintf(stderr, "m2mtls keyref: cannot read the PIN from %s\n", pin + 5);
        return EXIT_USAGE;
    }
    if (gen && (token == NULL || label == NULL || real_pin == NULL)) {
        fprintf(stderr, "m2mtls keyref: --generate needs --token LABEL, --label NAME and --pin PIN\n");
        return EXIT_USAGE;
    }
    unsigned char idb[64];
    size_t idn = 0;
    if (id != NULL && !parse_hex(id, idb, sizeof idb, &idn)) {
        fprintf(stderr, "m2mtls keyref: --id %s: expected an even number of hex digits (at most 128)\n", id);
        return EXIT_USAGE;
    }
    /* Without --id, a random CKA_ID: it is what ties the private key to its
     * public key and certificate in the token. */
    if (gen && id == NULL) {
        idn = 8;
        if (RAND_bytes(idb, (int)idn) != 1) {
            fprintf(stderr, "m2mtls keyref: no randomness for a key id\n");
            return EXIT_USAGE;
        }
    }
    p11 m;
    const char *mod = p11_default_module(module);
    if (!p11_open(&m, mod)) {
        fprintf(stderr, "m2mtls keyref: %s\n", m.error);
        return EXIT_USAGE;
    }
    int rc = EXIT_ACCEPTED;
    CK_SLOT_ID slot;
    if (list) {
        if (!p11_list(&m, real_pin, json, stdout))
            rc = EXIT_USAGE;
    } else if (!p11_find_token(&m, token, &slot) || !p11_generate_p256(&m, slot, real_pin, label, idb, idn)) {
        rc = EXIT_USAGE;
    } else {
        char *key_uri = p11_key_uri(token, label, idb, idn, "private");
        printf("%s\n", key_uri ? key_uri : "");
        free(key_uri);
    }
    if (rc != EXIT_ACCEPTED)
        fprintf(stderr, "m2mtls keyref: %s (module %s)\n", m.error, mod);
    p11_close(&m);
    return rc;
}
