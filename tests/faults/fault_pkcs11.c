/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A fault-injecting PKCS#11 module for the tests. It exports C_GetFunctionList,
 * dlopens the real module (M2MTLS_FAULTS_MODULE, default: SoftHSM) and forwards
 * every call. Functions the provider uses are wrapped: at each call the control
 * file named by M2MTLS_FAULTS is consulted (re-parsed when it changes; rule
 * state restarts then). One rule a line, '#' comments:
 *
 *   FUNCTION [CKR_NAME] [count=N] [after=N] [delay_ms=N] [token=LABEL]
 *
 *   CKR_NAME   the call fails with that code (or 0xHEX; without one: only delayed/counted)
 *   after=N    the first N matching calls pass, later ones are affected
 *   count=N    affect at most N calls (default: every one)
 *   delay_ms=N sleep that long before the call
 *   token=L    only calls on a session or slot of the token labelled L
 *
 * A failed C_Sign with an output buffer first runs the real C_Sign (a token
 * that fails C_Sign ends the operation, PKCS#11 5.13) and returns the fault;
 * other failed calls are not forwarded. M2MTLS_FAULTS_COUNTS names a file
 * rewritten after every wrapped call: "FUNCTION calls injected" lines.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ckr.h" /* common/: CKR_ names */
#include "pkcs11.h"

#ifndef FAULTS_DEFAULT_MODULE
#define FAULTS_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#endif
#define EXPORT __attribute__((visibility("default")))

static CK_FUNCTION_LIST *real;
static CK_FUNCTION_LIST list;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- counters ------------------------------------------------------------ */

enum {
    F_Initialize, F_Finalize, F_GetInfo, F_GetSlotList, F_GetSlotInfo, F_GetTokenInfo,
    F_GetMechanismList, F_GetMechanismInfo, F_OpenSession, F_CloseSession, F_CloseAllSessions,
    F_GetSessionInfo, F_Login, F_Logout, F_GetAttributeValue, F_FindObjectsInit, F_FindObjects,
    F_FindObjectsFinal, F_SignInit, F_Sign, F_CopyObject, F_DestroyObject, F_COUNT
};
static const char *const fn_names[F_COUNT] = {
    "C_Initialize", "C_Finalize", "C_GetInfo", "C_GetSlotList", "C_GetSlotInfo", "C_GetTokenInfo",
    "C_GetMechanismList", "C_GetMechanismInfo", "C_OpenSession", "C_CloseSession",
    "C_CloseAllSessions", "C_GetSessionInfo", "C_Login", "C_Logout", "C_GetAttributeValue",
    "C_FindObjectsInit", "C_FindObjects", "C_FindObjectsFinal", "C_SignInit", "C_Sign",
    "C_CopyObject", "C_DestroyObject",
};
static unsigned long calls[F_COUNT], injected[F_COUNT];

static void write_counts(void)
{
    const char *path = getenv("M2MTLS_FAULTS_COUNTS");
    char tmp[4096];
    FILE *fp;

    if (path == NULL || snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid()) >= (int)sizeof(tmp))
        return;
    if ((fp = fopen(tmp, "w")) == NULL)
        return;
    for (int i = 0; i < F_COUNT; i++)
        fprintf(fp, "%s %lu %lu\n", fn_names[i], calls[i], injected[i]);
    if (fclose(fp) == 0)
        rename(tmp, path);
    else
        unlink(tmp);
}

/* ---- rules ---------------------------------------------------------------- */

#define MAX_RULES 32
typedef struct {
    int fn;
    CK_RV rv;                       /* 0: no failure */
    unsigned long count, after, delay_ms;   /* count 0: unlimited */
    char token[33];
    unsigned long seen, hits;       /* state since the file last changed */
} rule;

static rule rules[MAX_RULES];
static int nrules;
static struct stat last_st;
static int have_file;

static void parse_rules(FILE *fp)
{
    char line[512];

    nrules = 0;
    while (fgets(line, sizeof(line), fp) != NULL && nrules < MAX_RULES) {
        rule r;
        char *save = NULL, *tok = strtok_r(line, " \t\r\n", &save);
        int fn = -1;

        if (tok == NULL || tok[0] == '#')
            continue;
        for (int i = 0; i < F_COUNT; i++)
            if (strcmp(tok, fn_names[i]) == 0)
                fn = i;
        if (fn < 0) {
            fprintf(stderr, "fault_pkcs11: unknown function '%s' (rule ignored)\n", tok);
            continue;
        }
        memset(&r, 0, sizeof(r));
        r.fn = fn;
        while ((tok = strtok_r(NULL, " \t\r\n", &save)) != NULL && tok[0] != '#') {
            if (strncmp(tok, "count=", 6) == 0)
                r.count = strtoul(tok + 6, NULL, 10);
            else if (strncmp(tok, "after=", 6) == 0)
                r.after = strtoul(tok + 6, NULL, 10);
            else if (strncmp(tok, "delay_ms=", 9) == 0)
                r.delay_ms = strtoul(tok + 9, NULL, 10);
            else if (strncmp(tok, "token=", 6) == 0)
                snprintf(r.token, sizeof(r.token), "%s", tok + 6);
            else {
                if (!m2c_ckr_value(tok, &r.rv))
                    r.rv = 0;
                if (r.rv == 0 && strncmp(tok, "0x", 2) == 0)
                    r.rv = strtoul(tok, NULL, 16);   /* any other code, in hex */
                else if (r.rv == 0 && strncmp(tok, "CKR_", 4) == 0)
                    fprintf(stderr, "fault_pkcs11: unknown code '%s'\n", tok);
            }
        }
        rules[nrules++] = r;
    }
}

/* with lock held: re-reads the control file when it changed (another file,
 * size, modification time or content: timestamps are coarse and inode
 * numbers are reused, so the content is compared too) */
static char last_text[4096];

static void refresh_rules(void)
{
    const char *path = getenv("M2MTLS_FAULTS");
    char text[sizeof(last_text)];
    struct stat st;
    size_t n;
    FILE *fp;

    if (path == NULL || stat(path, &st) != 0 || (fp = fopen(path, "r")) == NULL) {
        nrules = 0;
        have_file = 0;
        return;
    }
    n = fread(text, 1, sizeof(text) - 1, fp);
    text[n] = '\0';
    if (have_file && st.st_ino == last_st.st_ino && st.st_size == last_st.st_size
        && st.st_mtim.tv_sec == last_st.st_mtim.tv_sec && st.st_mtim.tv_nsec == last_st.st_mtim.tv_nsec
        && strcmp(text, last_text) == 0) {
        fclose(fp);
        return;
    }
    rewind(fp);
    parse_rules(fp);
    fclose(fp);
    memcpy(last_text, text, n + 1);
    last_st = st;
    have_file = 1;
}

static int token_is(CK_SLOT_ID slot, const char *label)
{
    CK_TOKEN_INFO ti;
    size_t n = strlen(label);

    if (real->C_GetTokenInfo(slot, &ti) != CKR_OK || n > sizeof(ti.label))
        return 0;
    if (memcmp(ti.label, label, n) != 0)
        return 0;
    for (size_t i = n; i < sizeof(ti.label); i++)
        if (ti.label[i] != ' ' && ti.label[i] != '\0')
            return 0;
    return 1;
}

/* Counts the call; returns the code to fail it with (CKR_OK: forward). The
 * session or slot (has_* say which) selects token= rules. */
static CK_RV check(int fn, int has_session, CK_SESSION_HANDLE s, int has_slot, CK_SLOT_ID slot)
{
    unsigned long delay = 0;
    CK_RV rv = CKR_OK;

    pthread_mutex_lock(&lock);
    refresh_rules();
    calls[fn]++;
    for (int i = 0; i < nrules; i++) {
        rule *r = &rules[i];

        if (r->fn != fn)
            continue;
        if (r->token[0] != '\0') {
            CK_SLOT_ID sl = slot;

            if (has_session) {
                CK_SESSION_INFO si;

                if (real->C_GetSessionInfo(s, &si) != CKR_OK)
                    continue;
                sl = si.slotID;
            } else if (!has_slot) {
                continue;
            }
            if (!token_is(sl, r->token))
                continue;
        }
        if (r->seen++ < r->after)
            continue;
        if (r->count != 0 && r->hits >= r->count)
            continue;
        r->hits++;
        if (r->delay_ms > delay)
            delay = r->delay_ms;
        if (r->rv != CKR_OK && rv == CKR_OK)
            rv = r->rv;
    }
    if (rv != CKR_OK)
        injected[fn]++;
    if (getenv("M2MTLS_FAULTS_DEBUG") != NULL)
        fprintf(stderr, "fault_pkcs11: %s%s%s\n", fn_names[fn], rv != CKR_OK ? " -> injected " : "",
                rv != CKR_OK ? m2c_ckr_name(rv) : "");
    write_counts();
    pthread_mutex_unlock(&lock);
    if (delay > 0) {
        struct timespec ts = { (time_t)(delay / 1000), (long)(delay % 1000) * 1000000L };

        nanosleep(&ts, NULL);
    }
    return rv;
}

#define NONE 0, 0, 0, 0
#define SESSION(h) 1, (h), 0, 0
#define SLOT(sl) 0, 0, 1, (sl)

/* ---- wrappers ------------------------------------------------------------- */

static CK_RV w_Initialize(void *a)
{
    CK_RV rv = check(F_Initialize, NONE);
    return rv != CKR_OK ? rv : real->C_Initialize(a);
}
static CK_RV w_Finalize(void *a)
{
    CK_RV rv = check(F_Finalize, NONE);
    return rv != CKR_OK ? rv : real->C_Finalize(a);
}
static CK_RV w_GetInfo(CK_INFO *i)
{
    CK_RV rv = check(F_GetInfo, NONE);
    return rv != CKR_OK ? rv : real->C_GetInfo(i);
}
static CK_RV w_GetSlotList(CK_BBOOL p, CK_SLOT_ID *l, CK_ULONG *n)
{
    CK_RV rv = check(F_GetSlotList, NONE);
    return rv != CKR_OK ? rv : real->C_GetSlotList(p, l, n);
}
static CK_RV w_GetSlotInfo(CK_SLOT_ID s, CK_SLOT_INFO *i)
{
    CK_RV rv = check(F_GetSlotInfo, SLOT(s));
    return rv != CKR_OK ? rv : real->C_GetSlotInfo(s, i);
}
static CK_RV w_GetTokenInfo(CK_SLOT_ID s, CK_TOKEN_INFO *i)
{
    CK_RV rv = check(F_GetTokenInfo, SLOT(s));
    return rv != CKR_OK ? rv : real->C_GetTokenInfo(s, i);
}
static CK_RV w_GetMechanismList(CK_SLOT_ID s, CK_MECHANISM_TYPE *l, CK_ULONG *n)
{
    CK_RV rv = check(F_GetMechanismList, SLOT(s));
    return rv != CKR_OK ? rv : real->C_GetMechanismList(s, l, n);
}
static CK_RV w_GetMechanismInfo(CK_SLOT_ID s, CK_MECHANISM_TYPE t, CK_MECHANISM_INFO *i)
{
    CK_RV rv = check(F_GetMechanismInfo, SLOT(s));
    return rv != CKR_OK ? rv : real->C_GetMechanismInfo(s, t, i);
}
static CK_RV w_OpenSession(CK_SLOT_ID s, CK_FLAGS f, void *a, CK_NOTIFY n, CK_SESSION_HANDLE *h)
{
    CK_RV rv = check(F_OpenSession, SLOT(s));
    return rv != CKR_OK ? rv : real->C_OpenSession(s, f, a, n, h);
}
static CK_RV w_CloseSession(CK_SESSION_HANDLE h)
{
    CK_RV rv = check(F_CloseSession, SESSION(h));
    return rv != CKR_OK ? rv : real->C_CloseSession(h);
}
static CK_RV w_CloseAllSessions(CK_SLOT_ID s)
{
    CK_RV rv = check(F_CloseAllSessions, SLOT(s));
    return rv != CKR_OK ? rv : real->C_CloseAllSessions(s);
}
static CK_RV w_GetSessionInfo(CK_SESSION_HANDLE h, CK_SESSION_INFO *i)
{
    CK_RV rv = check(F_GetSessionInfo, SESSION(h));
    return rv != CKR_OK ? rv : real->C_GetSessionInfo(h, i);
}
static CK_RV w_Login(CK_SESSION_HANDLE h, CK_USER_TYPE u, CK_UTF8CHAR *p, CK_ULONG l)
{
    CK_RV rv = check(F_Login, SESSION(h));
    return rv != CKR_OK ? rv : real->C_Login(h, u, p, l);
}
static CK_RV w_Logout(CK_SESSION_HANDLE h)
{
    CK_RV rv = check(F_Logout, SESSION(h));
    return rv != CKR_OK ? rv : real->C_Logout(h);
}
static CK_RV w_GetAttributeValue(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE *t, CK_ULONG n)
{
    CK_RV rv = check(F_GetAttributeValue, SESSION(h));
    return rv != CKR_OK ? rv : real->C_GetAttributeValue(h, o, t, n);
}
static CK_RV w_FindObjectsInit(CK_SESSION_HANDLE h, CK_ATTRIBUTE *t, CK_ULONG n)
{
    CK_RV rv = check(F_FindObjectsInit, SESSION(h));
    return rv != CKR_OK ? rv : real->C_FindObjectsInit(h, t, n);
}
static CK_RV w_FindObjects(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE *o, CK_ULONG m, CK_ULONG *n)
{
    CK_RV rv = check(F_FindObjects, SESSION(h));
    return rv != CKR_OK ? rv : real->C_FindObjects(h, o, m, n);
}
static CK_RV w_FindObjectsFinal(CK_SESSION_HANDLE h)
{
    CK_RV rv = check(F_FindObjectsFinal, SESSION(h));
    return rv != CKR_OK ? rv : real->C_FindObjectsFinal(h);
}
static CK_RV w_SignInit(CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_OBJECT_HANDLE k)
{
    CK_RV rv = check(F_SignInit, SESSION(h));
    return rv != CKR_OK ? rv : real->C_SignInit(h, m, k);
}
static CK_RV w_Sign(CK_SESSION_HANDLE h, CK_BYTE *d, CK_ULONG dl, CK_BYTE *sig, CK_ULONG *sl)
{
    CK_RV rv = check(F_Sign, SESSION(h));

    if (rv == CKR_OK)
        return real->C_Sign(h, d, dl, sig, sl);
    if (sig != NULL)
        (void)real->C_Sign(h, d, dl, sig, sl);   /* ends the operation, as a failing token does */
    return rv;
}

static CK_RV w_CopyObject(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    CK_RV rv = check(F_CopyObject, SESSION(h));
    return rv != CKR_OK ? rv : real->C_CopyObject(h, o, t, n, out);
}
static CK_RV w_DestroyObject(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o)
{
    CK_RV rv = check(F_DestroyObject, SESSION(h));
    return rv != CKR_OK ? rv : real->C_DestroyObject(h, o);
}

static CK_RV w_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR pp);

static int load_real(void)
{
    const char *path = getenv("M2MTLS_FAULTS_MODULE");
    CK_C_GetFunctionList gfl;
    void *dl, *sym;

    if (real != NULL)
        return 1;
    if (path == NULL || *path == '\0')
        path = FAULTS_DEFAULT_MODULE;
    if ((dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
        fprintf(stderr, "fault_pkcs11: %s\n", dlerror());
        return 0;
    }
    if ((sym = dlsym(dl, "C_GetFunctionList")) == NULL)
        return 0;
    memcpy(&gfl, &sym, sizeof(gfl));
    if (gfl(&real) != CKR_OK || real == NULL) {
        real = NULL;
        return 0;
    }
    list = *real;   /* functions not wrapped below are forwarded as they are */
    list.C_GetFunctionList = w_GetFunctionList;
    list.C_Initialize = w_Initialize;
    list.C_Finalize = w_Finalize;
    list.C_GetInfo = w_GetInfo;
    list.C_GetSlotList = w_GetSlotList;
    list.C_GetSlotInfo = w_GetSlotInfo;
    list.C_GetTokenInfo = w_GetTokenInfo;
    list.C_GetMechanismList = w_GetMechanismList;
    list.C_GetMechanismInfo = w_GetMechanismInfo;
    list.C_OpenSession = w_OpenSession;
    list.C_CloseSession = w_CloseSession;
    list.C_CloseAllSessions = w_CloseAllSessions;
    list.C_GetSessionInfo = w_GetSessionInfo;
    list.C_Login = w_Login;
    list.C_Logout = w_Logout;
    list.C_GetAttributeValue = w_GetAttributeValue;
    list.C_FindObjectsInit = w_FindObjectsInit;
    list.C_FindObjects = w_FindObjects;
    list.C_FindObjectsFinal = w_FindObjectsFinal;
    list.C_SignInit = w_SignInit;
    list.C_Sign = w_Sign;
    list.C_CopyObject = w_CopyObject;
    list.C_DestroyObject = w_DestroyObject;
    return 1;
}

static CK_RV w_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR pp)
{
    int ok;

    if (pp == NULL)
        return CKR_ARGUMENTS_BAD;
    pthread_mutex_lock(&lock);
    ok = load_real();
    pthread_mutex_unlock(&lock);
    if (!ok)
        return CKR_GENERAL_ERROR;
    *pp = &list;
    return CKR_OK;
}

EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR pp)
{
    return w_GetFunctionList(pp);
}
