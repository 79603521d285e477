/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include "tool.h"

STACK_OF(X509) *tool_read_certs(const char *file)
{
    BIO *bio = BIO_new_file(file, "rb");
    if (bio == NULL) {
        fprintf(stderr, "m2mtls: %s: %s\n", file, strerror(errno));
        ERR_clear_error();
        return NULL;
    }
    STACK_OF(X509) *certs = sk_X509_new_null();
    X509 *x;
    while (certs != NULL && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
        if (!sk_X509_push(certs, x))
            X509_free(x);
    ERR_clear_error();
    if (certs != NULL && sk_X509_num(certs) == 0) { /* not PEM: one DER certificate? */
        (void)BIO_reset(bio);
        x = d2i_X509_bio(bio, NULL);
        if (x != NULL && !sk_X509_push(certs, x))
            X509_free(x);
        ERR_clear_error();
    }
    BIO_free(bio);
    if (certs == NULL || sk_X509_num(certs) == 0) {
        fprintf(stderr, "m2mtls: %s: no certificate (PEM or DER) in the file\n", file);
        sk_X509_pop_free(certs, X509_free);
        return NULL;
    }
    return certs;
}

static int digits(const char **s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*s)++) {
        if (!isdigit((unsigned char)**s))
            return 0;
        v = v * 10 + (**s - '0');
    }
    *out = v;
    return 1;
}

int tool_parse_rfc3339(const char *s, time_t *out)
{
    struct tm tm = { 0 };
    int y, mo, d, h, mi, sec;
    if (!digits(&s, 4, &y) || *s++ != '-' || !digits(&s, 2, &mo) || *s++ != '-' || !digits(&s, 2, &d))
        return 0;
    if (*s != 'T' && *s != 't' && *s != ' ')
        return 0;
    s++;
    if (!digits(&s, 2, &h) || *s++ != ':' || !digits(&s, 2, &mi) || *s++ != ':' || !digits(&s, 2, &sec))
        return 0;
    if (*s == '.') { /* fractions of a second do not change a certificate check */
        s++;
        if (!isdigit((unsigned char)*s))
            return 0;
        while (isdigit((unsigned char)*s))
            s++;
    }
    long offset = 0;
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        int sign = *s++ == '-' ? -1 : 1, oh, om;
        if (!digits(&s, 2, &oh) || *s++ != ':' || !digits(&s, 2, &om) || oh > 23 || om > 59)
            return 0;
        offset = sign * (oh * 3600L + om * 60L);
    } else {
        return 0;
    }
    if (*s != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return 0;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return 0;
    *out = t - offset;
    return 1;
}

void tool_json_bytes(FILE *f, const unsigned char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(f, "\\u%04x", c); /* bytes, not UTF-8: keep the output valid JSON */
        else
            fputc(c, f);
    }
    fputc('"', f);
}

void tool_json_str(FILE *f, const char *s)
{
    if (s == NULL)
        fputs("null", f);
    else
        tool_json_bytes(f, (const unsigned char *)s, strlen(s));
}

const char *tool_name(const X509_NAME *n, char *buf, size_t len)
{
    buf[0] = '\0';
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL)
        return buf;
    X509_NAME_print_ex(b, n, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
    int r = BIO_read(b, buf, (int)len - 1);
    buf[r > 0 ? r : 0] = '\0';
    BIO_free(b);
    return buf;
}

const char *tool_time(const ASN1_TIME *t, char *buf, size_t len)
{
    struct tm tm;
    if (t == NULL || !ASN1_TIME_to_tm(t, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "?");
    return buf;
}
