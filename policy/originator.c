/* SPDX-License-Identifier: Apache-2.0 */
/* TS-0003 7.2.1: the From parameter of every request must name the identity
 * bound to the security association (else ORIGINATOR_NOT_AUTHENTICATED).
 * Identifiers come CSE-relative ("Cxyz"), SP-relative ("/CSE-ID/Cxyz") and
 * absolute ("//SP-ID/CSE-ID/Cxyz"); both sides are brought to (SP-ID, path)
 * with the registrar's own CSE-ID and SP-ID (the connection's local id), then
 * compared: SP-ID as a domain name (case-insensitive), the path exactly. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "internal.h"

typedef struct span { const char *s; size_t n; } span;
typedef struct m2m_id { span sp; span path; int sp_known; } m2m_id;

/* The registrar: "//SP/CSE" or "/CSE". */
typedef struct registrar { span sp, cse; int sp_known, cse_known; } registrar;

static span until_slash(const char *s)
{
    const char *e = strchr(s, '/');
    return (span){ s, e ? (size_t)(e - s) : strlen(s) };
}

static void read_registrar(const char *local, const char *bound, registrar *r)
{
    memset(r, 0, sizeof *r);
    if (local != NULL && strncmp(local, "//", 2) == 0) {
        r->sp = until_slash(local + 2);
        r->sp_known = r->sp.n > 0;
        if (local[2 + r->sp.n] == '/') {
            r->cse = until_slash(local + 3 + r->sp.n);
            r->cse_known = r->cse.n > 0;
        }
    } else if (local != NULL && local[0] == '/') {
        r->cse = until_slash(local + 1);
        r->cse_known = r->cse.n > 0;
    } else if (local != NULL && local[0] != '\0') {
        r->cse = until_slash(local);
        r->cse_known = 1;
    }
    /* An SP-relative registrar id: its SP is the one of the absolute bound id. */
    if (!r->sp_known && bound != NULL && strncmp(bound, "//", 2) == 0) {
        r->sp = until_slash(bound + 2);
        r->sp_known = r->sp.n > 0;
    }
}

/* PATH_BUF holds a CSE-relative id made SP-relative. 0 when it cannot be resolved. */
static int normalize(const char *id, const registrar *r, m2m_id *out, char *path_buf, size_t buf_len)
{
    if (strncmp(id, "//", 2) == 0) {
        out->sp = until_slash(id + 2);
        if (out->sp.n == 0 || id[2 + out->sp.n] != '/')
            return 0;
        out->path = (span){ id + 3 + out->sp.n, strlen(id + 3 + out->sp.n) };
        out->sp_known = 1;
    } else if (id[0] == '/') {
        out->sp = r->sp;
        out->sp_known = r->sp_known;
        out->path = (span){ id + 1, strlen(id + 1) };
    } else if (id[0] == 'S') { /* an S-AE-ID is unique in its SP already */
        out->sp = r->sp;
        out->sp_known = r->sp_known;
        out->path = (span){ id, strlen(id) };
    } else {
        if (!r->cse_known)
            return 0;
        int n = snprintf(path_buf, buf_len, "%.*s/%s", (int)r->cse.n, r->cse.s, id);
        if (n < 0 || (size_t)n >= buf_len)
            return 0;
        out->sp = r->sp;
        out->sp_known = r->sp_known;
        out->path = (span){ path_buf, (size_t)n };
    }
    return out->path.n > 0;
}

static int same_id(const m2m_id *a, const m2m_id *b)
{
    if (a->sp_known != b->sp_known || a->path.n != b->path.n || memcmp(a->path.s, b->path.s, a->path.n) != 0)
        return 0;
    return !a->sp_known || (a->sp.n == b->sp.n && strncasecmp(a->sp.s, b->sp.s, a->sp.n) == 0);
}

int m2mtls_ssl_check_originator(const SSL *ssl, const char *from)
{
    const char *bound = ssl != NULL ? m2mtls_ssl_peer_id(ssl) : NULL;
    if (bound == NULL || from == NULL || from[0] == '\0')
        return 0;
    if (strcmp(bound, from) == 0)
        return 1;
    registrar r;
    read_registrar(m2mtls_ssl_local_id(ssl), bound, &r);
    size_t cap = strlen(bound) + strlen(from) + r.cse.n + 2;
    char *buf_a = malloc(cap), *buf_b = malloc(cap);
    m2m_id a, b;
    int same = buf_a != NULL && buf_b != NULL && normalize(bound, &r, &a, buf_a, cap)
               && normalize(from, &r, &b, buf_b, cap) && same_id(&a, &b);
    free(buf_a);
    free(buf_b);
    return same;
}
