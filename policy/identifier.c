/* SPDX-License-Identifier: Apache-2.0 */
/* The grammar of oneM2M identifiers (TS-0001 7.2) as far as certificates
 * carry them: SP-IDs are domain names, CSE-IDs and AE-ID-Stems are made of
 * URI unreserved characters, an AE-ID-Stem starts with 'C' (assigned by the
 * registrar CSE) or 'S' (assigned by the service provider). One home for
 * these rules: the parser (peers-from-cert prefixes), the matcher (the
 * identity a peers-from-cert rule takes from a certificate) and the lint. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include "internal.h"

int m2_valid_dns_name(const char *s, size_t n)
{
    size_t label = 0;
    if (n == 0 || n > 253 || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0)
                return 0;
            label = 0;
            continue;
        }
        if (!(isalnum(c) || c == '-' || c == '_') || ++label > 63)
            return 0;
    }
    return 1;
}

/* RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~" (ASCII only). */
static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'
           || c == '_' || c == '~';
}

/* The first byte of S[0..N) that is not unreserved, or N. */
static size_t first_reserved(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && unreserved((unsigned char)s[i]))
        i++;
    return i;
}

int m2_ae_id_stem(const char *s, size_t n)
{
    return n >= 1 && (s[0] == 'C' || s[0] == 'S') && first_reserved(s, n) == n;
}

int m2_pfc_prefix_check(const char *prefix, char *why, size_t why_len)
{
    size_t n = strlen(prefix);
    if (n < 3 || prefix[0] != '/' || prefix[1] != '/') {
        snprintf(why, why_len, "must start with //SP-ID/ (an Absolute AE-ID has no scheme)");
        return 0;
    }
    if (prefix[n - 1] != '/') {
        snprintf(why, why_len, "must end with '/' (the AE-ID-Stem follows it)");
        return 0;
    }
    const char *sp = prefix + 2, *slash = strchr(sp, '/');
    if (!m2_valid_dns_name(sp, (size_t)(slash - sp))) {
        snprintf(why, why_len, "the SP-ID '%.*s' is not a domain name", (int)(slash - sp), sp);
        return 0;
    }
    const char *cse = slash + 1, *end = prefix + n - 1;
    if (cse > end) /* //SP-ID/ */
        return 1;
    size_t cse_len = (size_t)(end - cse);
    if (cse_len == 0) {
        snprintf(why, why_len, "must be //SP-ID/ or //SP-ID/CSE-ID/: the CSE-ID is empty");
        return 0;
    }
    size_t bad = first_reserved(cse, cse_len);
    if (bad < cse_len) {
        snprintf(why, why_len, "must be //SP-ID/ or //SP-ID/CSE-ID/: '%c' is not allowed in a CSE-ID%s",
                 cse[bad], cse[bad] == '/' ? " (one path segment at most)" : "");
        return 0;
    }
    return 1;
}

int m2_absolute_ae_id(const char *s, size_t n, char *why, size_t why_len)
{
    if (n < 3 || s[0] != '/' || s[1] != '/') {
        snprintf(why, why_len, "not an Absolute AE-ID (//SP-ID/CSE-ID/C... or //SP-ID/S...)");
        return 0;
    }
    const char *sp = s + 2, *end = s + n;
    const char *slash = memchr(sp, '/', (size_t)(end - sp));
    if (slash == NULL || !m2_valid_dns_name(sp, (size_t)(slash - sp))) {
        snprintf(why, why_len, "the SP-ID after // is not a domain name");
        return 0;
    }
    const char *rest = slash + 1;
    const char *slash2 = memchr(rest, '/', (size_t)(end - rest));
    if (slash2 == NULL) { /* //SP-ID/Stem: only an SP-assigned stem */
        if (m2_ae_id_stem(rest, (size_t)(end - rest)) && rest[0] == 'S')
            return 1;
        snprintf(why, why_len, "//SP-ID/ is followed by an AE-ID-Stem starting with 'S' (a 'C' stem "
                               "belongs under its CSE: //SP-ID/CSE-ID/C...)");
        return 0;
    }
    size_t cse_len = (size_t)(slash2 - rest);
    if (cse_len == 0 || first_reserved(rest, cse_len) != cse_len) {
        snprintf(why, why_len, "the CSE-ID is empty or has characters outside A-Z a-z 0-9 - . _ ~");
        return 0;
    }
    const char *stem = slash2 + 1;
    if (!m2_ae_id_stem(stem, (size_t)(end - stem)) || stem[0] != 'C') {
        snprintf(why, why_len, "//SP-ID/CSE-ID/ is followed by one AE-ID-Stem starting with 'C' "
                               "(then only A-Z a-z 0-9 - . _ ~)");
        return 0;
    }
    return 1;
}
