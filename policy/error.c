/* SPDX-License-Identifier: Apache-2.0 */
/* This thread's last error, error lists for the parser, growable reasons. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include "internal.h"

#define LAST_ERROR_MAX 8192
#define ERRORS_SHOWN   50    /* a policy with more mistakes lists the first ones */

static _Thread_local char last_error[LAST_ERROR_MAX];

const char *m2mtls_last_error(void)
{
    return last_error;
}

void m2_set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
}

/* The whole error queue, root cause first: a provider's "C_Login:
 * CKR_PIN_INCORRECT" comes before the generic "STORE routines::unsupported"
 * that OpenSSL adds on top of it, and both are worth reading. Reads (and so
 * empties) the queue: call it between m2_err_stash and m2_err_unstash. */
void m2_openssl_reason(char *buf, size_t len)
{
    if (len == 0)
        return;
    buf[0] = '\0';
    size_t used = 0;
    const char *data = NULL;
    int flags = 0, shown = 0;
    unsigned long e;
    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        if (shown++ >= 4 || used + 4 >= len)
            continue;
        const char *lib = ERR_lib_error_string(e), *reason = ERR_reason_error_string(e);
        int n = snprintf(buf + used, len - used, "%s%s%s%s%s%s", used ? "; " : "", lib ? lib : "",
                         lib ? ": " : "", reason ? reason : "error",
                         (flags & ERR_TXT_STRING) && data && *data ? ": " : "",
                         (flags & ERR_TXT_STRING) && data ? data : "");
        used += n > 0 ? (size_t)n : 0;
        if (used >= len)
            used = len - 1;
    }
    if (shown == 0)
        snprintf(buf, len, "unknown OpenSSL error");
}

/* ---- the application's OpenSSL errors ----------------------------------- */

/* OpenSSL's error queue belongs to the thread, so to the application as
 * well: errors it queued before calling us are its own, and no code of
 * ours may read or drop them. A mark (ERR_set_mark / ERR_pop_to_mark) is
 * enough where we only drop what we pushed; where we read our reasons, the
 * queue is read from its oldest entry, which may be the application's, so
 * its entries are taken out first and put back, in order, at the end. */
void m2_err_stash(m2_err_saved *s)
{
    memset(s, 0, sizeof *s);
    const char *file, *func, *data;
    int line, flags;
    unsigned long e;
    while ((e = ERR_get_error_all(&file, &line, &func, &data, &flags)) != 0) {
        if (s->n == M2_ERR_SAVED)
            continue; /* the queue holds no more than that: cannot happen */
        m2_err_entry *x = &s->e[s->n++];
        /* The strings stay in the queue's slot until it is reused: copies. */
        x->code = e;
        x->line = line;
        x->file = m2_strdup(file && *file ? file : NULL);
        x->func = m2_strdup(func && *func ? func : NULL);
        x->data = (flags & ERR_TXT_STRING) && data && *data ? m2_strdup(data) : NULL;
    }
}

void m2_err_discard_own(void)
{
    /* Only between m2_err_stash and m2_err_unstash: what is queued is ours. */
    ERR_clear_error();
}

void m2_err_unstash(m2_err_saved *s)
{
    m2_err_discard_own();
    for (int i = 0; i < s->n; i++) {
        m2_err_entry *x = &s->e[i];
        ERR_new();
        ERR_set_debug(x->file, x->line, x->func);
        if (x->data != NULL)
            ERR_set_error(ERR_GET_LIB(x->code), ERR_GET_REASON(x->code), "%s", x->data);
        else
            ERR_set_error(ERR_GET_LIB(x->code), ERR_GET_REASON(x->code), NULL);
        free(x->file);
        free(x->func);
        free(x->data);
    }
    memset(s, 0, sizeof *s);
}

char *m2_strdup(const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

/* ---- growable buffer ---------------------------------------------------- */

static int buf_reserve(m2_buf *b, size_t extra)
{
    if (b->oom)
        return 0;
    if (b->len + extra + 1 <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 128;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *s = realloc(b->s, cap);
    if (s == NULL) {
        b->oom = 1;
        return 0;
    }
    b->s = s;
    b->cap = cap;
    return 1;
}

__attribute__((format(printf, 2, 0))) static void buf_vaddf(m2_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0 || !buf_reserve(b, (size_t)n))
        return;
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void m2_buf_addf(m2_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vaddf(b, fmt, ap);
    va_end(ap);
}

/* Peer-supplied bytes go into messages printable and bounded: anything
 * outside printable ASCII becomes \xHH, and more than MAX bytes are cut. */
void m2_buf_add_escaped(m2_buf *b, const unsigned char *s, size_t n, size_t max)
{
    size_t shown = n > max ? max : n;
    if (!buf_reserve(b, shown * 4 + 4))
        return;
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            b->s[b->len++] = (char)c;
        else
            b->len += (size_t)snprintf(b->s + b->len, 5, "\\x%02x", c);
    }
    if (shown < n) {
        memcpy(b->s + b->len, "...", 3);
        b->len += 3;
    }
    b->s[b->len] = '\0';
}

const char *m2mtls_reject_code_name(m2mtls_reject_code code)
{
    static const char *const names[] = {
        [M2MTLS_REJECT_NONE] = "none",
        [M2MTLS_REJECT_NO_CERTIFICATE] = "no-certificate",
        [M2MTLS_REJECT_NAME] = "name",
        [M2MTLS_REJECT_ROOT_OF_TRUST] = "root-of-trust",
        [M2MTLS_REJECT_REVOCATION] = "revocation",
        [M2MTLS_REJECT_AMBIGUOUS] = "ambiguous",
        [M2MTLS_REJECT_PROFILE] = "profile",
        [M2MTLS_REJECT_APPLICATION] = "application",
        [M2MTLS_REJECT_RESUMPTION] = "resumption",
        [M2MTLS_REJECT_KEY_PROOF] = "key-proof",
        [M2MTLS_REJECT_INTERNAL] = "internal",
    };
    unsigned i = (unsigned)code;
    return i < sizeof names / sizeof names[0] && names[i] != NULL ? names[i] : "unknown";
}

char *m2_buf_take(m2_buf *b)
{
    char *s = b->oom ? NULL : b->s;
    if (b->oom)
        free(b->s);
    if (s == NULL && !b->oom)
        s = m2_strdup("");
    memset(b, 0, sizeof *b);
    return s;
}

/* ---- error lists ---------------------------------------------------------- */

void m2_errors_add(m2_errors *e, const char *file, unsigned line, const char *fmt, ...)
{
    e->count++;
    if (e->count > ERRORS_SHOWN)
        return;
    m2_buf b = { e->text, e->len, e->cap, 0 };
    if (line > 0)
        m2_buf_addf(&b, "%s:%u: ", file, line);
    else
        m2_buf_addf(&b, "%s: ", file);
    va_list ap;
    va_start(ap, fmt);
    buf_vaddf(&b, fmt, ap);
    va_end(ap);
    m2_buf_addf(&b, "\n");
    if (b.oom) { /* keep what we had; the count still says there were more */
        return;
    }
    e->text = b.s;
    e->len = b.len;
    e->cap = b.cap;
}

void m2_errors_publish(m2_errors *e)
{
    if (e->count > ERRORS_SHOWN && e->text != NULL) {
        m2_buf b = { e->text, e->len, e->cap, 0 };
        m2_buf_addf(&b, "... and %u more errors\n", e->count - ERRORS_SHOWN);
        e->text = b.s;
        e->len = b.len;
    }
    if (e->text != NULL && e->len > 0 && e->text[e->len - 1] == '\n')
        e->text[--e->len] = '\0';
    m2_set_error("%s", e->text != NULL ? e->text : "unknown error");
    free(e->text);
    memset(e, 0, sizeof *e);
}
