/* SPDX-License-Identifier: Apache-2.0 */
/* TS-0003 7.2.1: the From parameter of every request must name the identity
 * bound to the security association (else ORIGINATOR_NOT_AUTHENTICATED).
 * Identifiers come CSE-relative ("Cxyz"), SP-relative ("/CSE-ID/Cxyz") and
 * absolute ("//SP-ID/CSE-ID/Cxyz"). Both the bound identity and From are
 * brought to (SP-ID, path) with what the RECEIVING CSE knows of itself: its
 * CSE-ID and SP-ID from the connection's local id, the SP-ID from the
 * policy's `sp-id` line when that local id is SP-relative. Never from the
 * peer's identity: a peer of another SP would otherwise pass with the
 * relative name of one of this SP's entities. Without an own SP-ID, a
 * relative From is never the same as an absolute identity. SP-IDs compare
 * as domain names (case-insensitively), paths exactly. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "internal.h"

typedef struct span { const char *s; size_t n; } span;
typedef struct m2m_id { span sp; span path; } m2m_id;  /* sp.n == 0: SP unknown */

/* The receiving CSE: SP-ID and CSE-ID (n == 0 when not known). */
typedef struct registrar { span sp, cse; } registrar;

static span until_slash(const char *s)
{
    const char *e = strchr(s, '/');
    return (span){ s, e ? (size_t)(e - s) : strlen(s) };
}

/* LOCAL: "//SP/CSE", "/CSE" or "CSE"; OWN_SP: the policy's sp-id. */
static void read_registrar(const char *local, const char *own_sp, registrar *r)
{
    memset(r, 0, sizeof *r);
    if (local != NULL && strncmp(local, "//", 2) == 0) {
        r->sp = until_slash(local + 2);
        if (local[2 + r->sp.n] == '/')
            r->cse = until_slash(local + 3 + r->sp.n);
    } else if (local != NULL && local[0] == '/') {
        r->cse = until_slash(local + 1);
    } else if (local != NULL) {
        r->cse = until_slash(local);
    }
    if (r->sp.n == 0 && own_sp != NULL)
        r->sp = (span){ own_sp, strlen(own_sp) };
}

/* PATH_BUF holds a CSE-relative id made SP-relative. 0 when it cannot be resolved. */
static int normalize(const char *id, const registrar *r, m2m_id *out, char *path_buf, size_t buf_len)
{
    if (strncmp(id, "//", 2) == 0) {
        out->sp = until_slash(id + 2);
        if (out->sp.n == 0 || id[2 + out->sp.n] != '/')
            return 0;
        out->path = (span){ id + 3 + out->sp.n, strlen(id + 3 + out->sp.n) };
    } else if (id[0] == '/') {
        out->sp = r->sp;
        out->path = (span){ id + 1, strlen(id + 1) };
    } else if (id[0] == 'S') { /* an S-AE-ID is unique in its SP already */
        out->sp = r->sp;
        out->path = (span){ id, strlen(id) };
    } else {
        if (r->cse.n == 0)
            return 0;
        int n = snprintf(path_buf, buf_len, "%.*s/%s", (int)r->cse.n, r->cse.s, id);
        if (n < 0 || (size_t)n >= buf_len)
            return 0;
        out->sp = r->sp;
        out->path = (span){ path_buf, (size_t)n };
    }
    return out->path.n > 0;
}

static int same_id(const m2m_id *a, const m2m_id *b)
{
    if (a->path.n != b->path.n || memcmp(a->path.s, b->path.s, a->path.n) != 0 || a->sp.n != b->sp.n)
        return 0;
    return a->sp.n == 0 || strncasecmp(a->sp.s, b->sp.s, a->sp.n) == 0;
}

int m2mtls_ssl_check_originator(const SSL *ssl, const char *from)
{
    const char *bound = m2mtls_ssl_peer_id(ssl);
    if (bound == NULL || from == NULL || from[0] == '\0')
        return 0;
    if (strcmp(bound, from) == 0)
        return 1;
    const m2_conn *c = m2_conn_get(ssl, 0);
    registrar r;
    read_registrar(m2mtls_ssl_local_id(ssl), c != NULL && c->policy != NULL ? c->policy->sp_id : NULL, &r);
    size_t cap = strlen(bound) + strlen(from) + r.cse.n + 2;
    char *buf_a = malloc(cap), *buf_b = malloc(cap);
    m2m_id a, b;
    int same = buf_a != NULL && buf_b != NULL && normalize(bound, &r, &a, buf_a, cap)
               && normalize(from, &r, &b, buf_b, cap) && same_id(&a, &b);
    free(buf_a);
    free(buf_b);
    return same;
}
