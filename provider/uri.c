/* SPDX-License-Identifier: Apache-2.0 */
/* RFC 7512 pkcs11: URI parser. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "provider.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes [s, s+len) into a NUL-terminated buffer; *outlen excludes the NUL. */
static unsigned char *pct_decode(const char *s, size_t len, size_t *outlen)
{
    unsigned char *out = OPENSSL_malloc(len + 1);
    size_t i, o = 0;

    if (out == NULL)
        return NULL;
    for (i = 0; i < len; i++) {
        if (s[i] == '%') {
            int hi, lo;

            if (i + 2 >= len) {
                OPENSSL_free(out);
                return NULL;
            }
            hi = hexval((unsigned char)s[i + 1]);
            lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0) {
                OPENSSL_free(out);
                return NULL;
            }
            out[o++] = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = (unsigned char)s[i];
        }
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

void m2p_uri_free(m2p_uri *u)
{
    if (u == NULL)
        return;
    OPENSSL_free(u->token);
    OPENSSL_free(u->manufacturer);
    OPENSSL_free(u->model);
    OPENSSL_free(u->serial);
    OPENSSL_free(u->slot_description);
    OPENSSL_free(u->slot_manufacturer);
    OPENSSL_free(u->object);
    OPENSSL_free(u->id);
    if (u->pin_value != NULL)
        OPENSSL_clear_free(u->pin_value, strlen(u->pin_value));
    OPENSSL_free(u->pin_source);
    OPENSSL_free(u->module_path);
    OPENSSL_free(u);
}

static int set_str(char **dst, unsigned char *val, size_t len, const char *name)
{
    if (*dst != NULL || memchr(val, '\0', len) != NULL) {
        M2P_ERR(M2P_R_URI, "attribute %s repeated or contains NUL", name);
        OPENSSL_free(val);
        return 0;
    }
    *dst = (char *)val;
    return 1;
}

static int parse_attr(m2p_uri *u, const char *a, size_t alen, int query)
{
    const char *eq = memchr(a, '=', alen);
    size_t nlen, vlen;
    unsigned char *val;
    char name[32];

    if (alen == 0)
        return 1;
    if (eq == NULL) {
        M2P_ERR(M2P_R_URI, "attribute without value: %.*s", (int)alen, a);
        return 0;
    }
    nlen = (size_t)(eq - a);
    if (nlen == 0 || nlen >= sizeof(name)) {
        M2P_ERR(M2P_R_URI, "bad attribute name");
        return 0;
    }
    memcpy(name, a, nlen);
    name[nlen] = '\0';
    if ((val = pct_decode(eq + 1, alen - nlen - 1, &vlen)) == NULL) {
        M2P_ERR(M2P_R_URI, "bad percent-encoding in %s", name);
        return 0;
    }
    if (!query) {
        if (strcmp(name, "token") == 0)
            return set_str(&u->token, val, vlen, name);
        if (strcmp(name, "manufacturer") == 0)
            return set_str(&u->manufacturer, val, vlen, name);
        if (strcmp(name, "model") == 0)
            return set_str(&u->model, val, vlen, name);
        if (strcmp(name, "serial") == 0)
            return set_str(&u->serial, val, vlen, name);
        if (strcmp(name, "slot-description") == 0)
            return set_str(&u->slot_description, val, vlen, name);
        if (strcmp(name, "slot-manufacturer") == 0)
            return set_str(&u->slot_manufacturer, val, vlen, name);
        if (strcmp(name, "object") == 0)
            return set_str(&u->object, val, vlen, name);
        if (strcmp(name, "id") == 0) {
            if (u->has_id) {
                OPENSSL_free(val);
                M2P_ERR(M2P_R_URI, "attribute id repeated");
                return 0;
            }
            u->id = val;
            u->id_len = vlen;
            u->has_id = 1;
            return 1;
        }
        if (strcmp(name, "slot-id") == 0) {
            char *end;
            unsigned long v;

            if (vlen == 0 || !isdigit(val[0])) {
                OPENSSL_free(val);
                M2P_ERR(M2P_R_URI, "slot-id is not a number");
                return 0;
            }
            v = strtoul((char *)val, &end, 10);
            if (*end != '\0') {
                OPENSSL_free(val);
                M2P_ERR(M2P_R_URI, "slot-id is not a number");
                return 0;
            }
            OPENSSL_free(val);
            u->has_slot_id = 1;
            u->slot_id = v;
            return 1;
        }
        if (strcmp(name, "type") == 0) {
            const char *t = (const char *)val;

            if (strcmp(t, "private") == 0)
                u->type = (int)CKO_PRIVATE_KEY;
            else if (strcmp(t, "public") == 0)
                u->type = (int)CKO_PUBLIC_KEY;
            else if (strcmp(t, "cert") == 0)
                u->type = (int)CKO_CERTIFICATE;
            else if (strcmp(t, "secret-key") == 0)
                u->type = (int)CKO_SECRET_KEY;
            else if (strcmp(t, "data") == 0)
                u->type = (int)CKO_DATA;
            else {
                M2P_ERR(M2P_R_URI, "unknown object type \"%s\"", t);
                OPENSSL_free(val);
                return 0;
            }
            OPENSSL_free(val);
            return 1;
        }
        if (strncmp(name, "library-", 8) == 0 || strncmp(name, "x-", 2) == 0) {
            OPENSSL_free(val);
            return 1;
        }
        M2P_ERR(M2P_R_URI, "unknown path attribute \"%s\"", name);
        OPENSSL_free(val);
        return 0;
    }
    if (strcmp(name, "pin-value") == 0)
        return set_str(&u->pin_value, val, vlen, name);
    if (strcmp(name, "pin-source") == 0)
        return set_str(&u->pin_source, val, vlen, name);
    if (strcmp(name, "module-path") == 0)
        return set_str(&u->module_path, val, vlen, name);
    /* module-name and vendor query attributes are accepted and ignored */
    OPENSSL_free(val);
    return 1;
}

m2p_uri *m2p_uri_parse(const char *str)
{
    m2p_uri *u;
    const char *p, *end, *q;

    if (str == NULL || strncasecmp(str, "pkcs11:", 7) != 0) {
        M2P_ERR(M2P_R_URI, "not a pkcs11: URI");
        return NULL;
    }
    if ((u = OPENSSL_zalloc(sizeof(*u))) == NULL)
        return NULL;
    u->type = -1;
    p = str + 7;
    q = strchr(p, '?');
    end = q != NULL ? q : p + strlen(p);
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *stop = semi != NULL ? semi : end;

        if (!parse_attr(u, p, (size_t)(stop - p), 0))
            goto err;
        p = stop + (semi != NULL ? 1 : 0);
        if (semi == NULL)
            break;
    }
    if (q != NULL) {
        p = q + 1;
        end = p + strlen(p);
        while (p < end) {
            const char *amp = memchr(p, '&', (size_t)(end - p));
            const char *stop = amp != NULL ? amp : end;

            if (!parse_attr(u, p, (size_t)(stop - p), 1))
                goto err;
            if (amp == NULL)
                break;
            p = amp + 1;
        }
    }
    if (u->pin_value != NULL && u->pin_source != NULL) {
        M2P_ERR(M2P_R_URI, "pin-value and pin-source are exclusive");
        goto err;
    }
    return u;
err:
    m2p_uri_free(u);
    return NULL;
}
