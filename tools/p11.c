/* SPDX-License-Identifier: Apache-2.0 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tool.h"
#include "p11.h"

#include "ckr.h"

#define SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define MAX_SLOTS 64
#define MAX_OBJECTS 256

static int fail(p11 *m, const char *fn, CK_RV rv)
{
    snprintf(m->error, sizeof m->error, "%s: %s", fn, m2c_ckr_name(rv));
    return 0;
}

const char *p11_default_module(const char *given)
{
    if (given != NULL)
        return given;
    const char *env = getenv("M2MTLS_PKCS11_MODULE");
    return env != NULL && *env ? env : SOFTHSM_MODULE;
}

int p11_open(p11 *m, const char *module)
{
    memset(m, 0, sizeof *m);
    m->dl = dlopen(module, RTLD_NOW | RTLD_LOCAL);
    if (m->dl == NULL) {
        snprintf(m->error, sizeof m->error, "cannot load the PKCS#11 module %s: %s", module, dlerror());
        return 0;
    }
    CK_RV (*get)(CK_FUNCTION_LIST **) = NULL;
    *(void **)&get = dlsym(m->dl, "C_GetFunctionList");
    if (get == NULL) {
        snprintf(m->error, sizeof m->error, "%s is not a PKCS#11 module (no C_GetFunctionList)", module);
        dlclose(m->dl);
        m->dl = NULL;
        return 0;
    }
    CK_RV rv = get(&m->f);
    CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
    if (rv == CKR_OK)
        rv = m->f->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        fail(m, rv == CKR_OK ? "C_GetFunctionList" : "C_Initialize", rv);
        dlclose(m->dl);
        m->dl = NULL;
        return 0;
    }
    m->owner = rv == CKR_OK;
    return 1;
}

void p11_close(p11 *m)
{
    if (m->f != NULL && m->owner)
        m->f->C_Finalize(NULL);
    if (m->dl != NULL)
        dlclose(m->dl);
    m->f = NULL;
    m->dl = NULL;
}

/* Blank-padded PKCS#11 text -> C string. */
static void unpad(char *dst, const CK_UTF8CHAR *src, size_t n)
{
    memcpy(dst, src, n);
    while (n > 0 && dst[n - 1] == ' ')
        n--;
    dst[n] = '\0';
}

/* RFC 7512: everything but unreserved characters (and a few path-safe ones)
 * is percent-encoded. */
static void pct_append(char **s, size_t *len, size_t *cap, const unsigned char *v, size_t n)
{
    if (*len + n * 3 + 1 > *cap) {
        size_t c = (*len + n * 3 + 1) * 2;
        char *t = realloc(*s, c);
        if (t == NULL)
            return;
        *s = t;
        *cap = c;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = v[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.'
            || ch == '_' || ch == '~')
            (*s)[(*len)++] = (char)ch;
        else
            *len += (size_t)snprintf(*s + *len, 4, "%%%02X", ch);
    }
    (*s)[*len] = '\0';
}

static void add_attr(char **s, size_t *len, size_t *cap, const char *name, const unsigned char *v, size_t n)
{
    if (v == NULL)
        return;
    char head[32];
    int hn = snprintf(head, sizeof head, "%s%s=", *len > 7 ? ";" : "", name);
    if (*len + (size_t)hn + 1 > *cap) {
        char *t = realloc(*s, *cap + (size_t)hn + 64);
        if (t == NULL)
            return;
        *s = t;
        *cap += (size_t)hn + 64;
    }
    memcpy(*s + *len, head, (size_t)hn + 1);
    *len += (size_t)hn;
    pct_append(s, len, cap, v, n);
}

char *p11_key_uri(const char *token, const char *object, const unsigned char *id, size_t id_len, const char *type)
{
    size_t len = 7, cap = 256;
    char *s = malloc(cap);
    if (s == NULL)
        return NULL;
    memcpy(s, "pkcs11:", 8);
    add_attr(&s, &len, &cap, "token", (const unsigned char *)token, token ? strlen(token) : 0);
    add_attr(&s, &len, &cap, "object", (const unsigned char *)object, object ? strlen(object) : 0);
    if (id_len > 0)
        add_attr(&s, &len, &cap, "id", id, id_len);
    add_attr(&s, &len, &cap, "type", (const unsigned char *)type, type ? strlen(type) : 0);
    return s;
}

static int slots(p11 *m, CK_SLOT_ID *list, CK_ULONG *n, int present)
{
    *n = MAX_SLOTS;
    CK_RV rv = m->f->C_GetSlotList(present ? 1 : 0, list, n);
    return rv == CKR_OK || fail(m, "C_GetSlotList", rv);
}

static int session(p11 *m, CK_SLOT_ID slot, const char *pin, CK_SESSION_HANDLE *s)
{
    CK_RV rv = m->f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, s);
    if (rv != CKR_OK)
        return fail(m, "C_OpenSession", rv);
    if (pin == NULL)
        return 1;
    rv = m->f->C_Login(*s, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin));
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        m->f->C_CloseSession(*s);
        return fail(m, "C_Login", rv);
    }
    return 1;
}

int p11_find_token(p11 *m, const char *label, CK_SLOT_ID *slot)
{
    CK_SLOT_ID list[MAX_SLOTS];
    CK_ULONG n;
    if (!slots(m, list, &n, 1))
        return 0;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        char l[33];
        if (m->f->C_GetTokenInfo(list[i], &ti) != CKR_OK)
            continue;
        unpad(l, ti.label, sizeof ti.label);
        if (strcmp(l, label) == 0) {
            *slot = list[i];
            return 1;
        }
    }
    snprintf(m->error, sizeof m->error, "no token labelled '%s'", label);
    return 0;
}

int p11_init_token(p11 *m, const char *label, const char *so_pin, const char *user_pin, CK_SLOT_ID *slot)
{
    CK_SLOT_ID list[MAX_SLOTS];
    CK_ULONG n;
    if (!slots(m, list, &n, 1))
        return 0;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (m->f->C_GetTokenInfo(list[i], &ti) != CKR_OK || (ti.flags & CKF_TOKEN_INITIALIZED))
            continue;
        CK_UTF8CHAR padded[32];
        memset(padded, ' ', sizeof padded);
        memcpy(padded, label, strlen(label) < 32 ? strlen(label) : 32);
        CK_RV rv = m->f->C_InitToken(list[i], (CK_UTF8CHAR *)so_pin, strlen(so_pin), padded);
        if (rv != CKR_OK)
            return fail(m, "C_InitToken", rv);
        /* SoftHSM moves an initialised token to a new slot: look it up by label. */
        CK_SESSION_HANDLE s;
        if (!p11_find_token(m, label, slot) || !session(m, *slot, NULL, &s))
            return 0;
        rv = m->f->C_Login(s, CKU_SO, (CK_UTF8CHAR *)so_pin, strlen(so_pin));
        if (rv == CKR_OK)
            rv = m->f->C_InitPIN(s, (CK_UTF8CHAR *)user_pin, strlen(user_pin));
        m->f->C_CloseSession(s);
        return rv == CKR_OK || fail(m, "C_InitPIN", rv);
    }
    snprintf(m->error, sizeof m->error, "no free slot to initialise a token in");
    return 0;
}

/* A key pair generated inside the token with MECH; ALG: the public template's
 * algorithm attributes. The private key is sensitive and never extractable. */
static int generate_pair(p11 *m, CK_SLOT_ID slot, const char *pin, CK_MECHANISM_TYPE mech_type,
                         const CK_ATTRIBUTE *alg, size_t nalg, const char *label, const unsigned char *id,
                         size_t id_len)
{
    CK_BBOOL yes = 1, no = 0;
    CK_MECHANISM mech = { mech_type, NULL, 0 };
    CK_ATTRIBUTE pub[8] = {
        { CKA_TOKEN, &yes, sizeof yes }, { CKA_VERIFY, &yes, sizeof yes },
        { CKA_LABEL, (void *)label, strlen(label) }, { CKA_ID, (void *)id, id_len },
    };
    size_t npub = 4;
    for (size_t i = 0; i < nalg && npub < sizeof pub / sizeof pub[0]; i++)
        pub[npub++] = alg[i];
    CK_ATTRIBUTE priv[] = {
        { CKA_TOKEN, &yes, sizeof yes },     { CKA_PRIVATE, &yes, sizeof yes },
        { CKA_SENSITIVE, &yes, sizeof yes }, { CKA_EXTRACTABLE, &no, sizeof no },
        { CKA_SIGN, &yes, sizeof yes },      { CKA_LABEL, (void *)label, strlen(label) },
        { CKA_ID, (void *)id, id_len },
    };
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE hpub, hpriv;
    if (!session(m, slot, pin, &s))
        return 0;
    CK_RV rv = m->f->C_GenerateKeyPair(s, &mech, pub, (CK_ULONG)npub, priv, sizeof priv / sizeof priv[0], &hpub, &hpriv);
    m->f->C_CloseSession(s);
    return rv == CKR_OK || fail(m, "C_GenerateKeyPair", rv);
}

int p11_generate_p256(p11 *m, CK_SLOT_ID slot, const char *pin, const char *label, const unsigned char *id,
                      size_t id_len)
{
    static const unsigned char p256_oid[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
    CK_ATTRIBUTE alg[] = { { CKA_EC_PARAMS, (void *)p256_oid, sizeof p256_oid } };
    return generate_pair(m, slot, pin, CKM_EC_KEY_PAIR_GEN, alg, 1, label, id, id_len);
}

int p11_generate_rsa2048(p11 *m, CK_SLOT_ID slot, const char *pin, const char *label, const unsigned char *id,
                         size_t id_len)
{
    static const unsigned char e65537[] = { 0x01, 0x00, 0x01 };
    CK_ULONG bits = 2048;
    CK_ATTRIBUTE alg[] = { { CKA_MODULUS_BITS, &bits, sizeof bits },
                           { CKA_PUBLIC_EXPONENT, (void *)e65537, sizeof e65537 } };
    return generate_pair(m, slot, pin, CKM_RSA_PKCS_KEY_PAIR_GEN, alg, 2, label, id, id_len);
}

int p11_module_info(p11 *m, char *buf, size_t len)
{
    CK_INFO info;
    CK_RV rv = m->f->C_GetInfo(&info);
    if (rv != CKR_OK)
        return fail(m, "C_GetInfo", rv);
    char manuf[33], desc[33];
    unpad(manuf, info.manufacturerID, 32);
    unpad(desc, info.libraryDescription, 32);
    snprintf(buf, len, "%s %u.%u (%s)", manuf, info.libraryVersion.major, info.libraryVersion.minor, desc);
    return 1;
}

int p11_sign_session(p11 *m, CK_SLOT_ID slot, const char *pin, const char *label, CK_SESSION_HANDLE *s,
                     CK_OBJECT_HANDLE *key)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_LABEL, (void *)label, strlen(label) } };
    CK_ULONG n = 0;
    if (!session(m, slot, pin, s))
        return 0;
    CK_RV rv = m->f->C_FindObjectsInit(*s, tmpl, 2);
    if (rv == CKR_OK) {
        rv = m->f->C_FindObjects(*s, key, 1, &n);
        m->f->C_FindObjectsFinal(*s);
    }
    if (rv == CKR_OK && n == 1)
        return 1;
    m->f->C_CloseSession(*s);
    if (rv != CKR_OK)
        return fail(m, "C_FindObjects", rv);
    snprintf(m->error, sizeof m->error, "no private key labelled '%s'", label);
    return 0;
}

int p11_session_copy(p11 *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, CK_OBJECT_HANDLE *copy)
{
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE tmpl = { CKA_TOKEN, &no, sizeof no };
    CK_RV rv = m->f->C_CopyObject(s, key, &tmpl, 1, copy);
    return rv == CKR_OK || fail(m, "C_CopyObject", rv);
}

CK_RV p11_sign(const p11 *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, CK_MECHANISM *mech, const unsigned char *in,
               size_t in_len, unsigned char *sig, size_t *sig_len)
{
    CK_ULONG n = *sig_len;
    CK_RV rv = m->f->C_SignInit(s, mech, key);
    if (rv == CKR_OK)
        rv = m->f->C_Sign(s, (CK_BYTE *)in, in_len, sig, &n);
    *sig_len = n;
    return rv;
}

/* ---- listing ---------------------------------------------------------------- */

static unsigned char *attr(p11 *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE t, CK_ULONG *n)
{
    CK_ATTRIBUTE a = { t, NULL, 0 };
    if (m->f->C_GetAttributeValue(s, o, &a, 1) != CKR_OK || a.ulValueLen == (CK_ULONG)-1)
        return NULL;
    a.pValue = malloc(a.ulValueLen + 1);
    if (a.pValue == NULL || m->f->C_GetAttributeValue(s, o, &a, 1) != CKR_OK) {
        free(a.pValue);
        return NULL;
    }
    ((unsigned char *)a.pValue)[a.ulValueLen] = '\0';
    *n = a.ulValueLen;
    return a.pValue;
}

static void list_object(p11 *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, const char *token, int json, int *first,
                        FILE *out)
{
    CK_ULONG n = 0, ln = 0, idn = 0, kn = 0;
    unsigned char *cls = attr(m, s, o, CKA_CLASS, &n);
    if (cls == NULL || n != sizeof(CK_OBJECT_CLASS)) {
        free(cls);
        return;
    }
    CK_OBJECT_CLASS c;
    memcpy(&c, cls, sizeof c);
    free(cls);
    const char *type = c == CKO_PRIVATE_KEY ? "private" : c == CKO_PUBLIC_KEY ? "public" : c == CKO_CERTIFICATE ? "cert" : NULL;
    if (type == NULL)
        return;
    char *label = (char *)attr(m, s, o, CKA_LABEL, &ln);
    unsigned char *id = attr(m, s, o, CKA_ID, &idn);
    unsigned char *kt = c == CKO_CERTIFICATE ? NULL : attr(m, s, o, CKA_KEY_TYPE, &kn);
    const char *alg = "";
    if (kt != NULL && kn == sizeof(CK_KEY_TYPE)) {
        CK_KEY_TYPE k;
        memcpy(&k, kt, sizeof k);
        alg = k == CKK_EC ? "EC" : k == CKK_RSA ? "RSA" : "other";
    }
    char *uri = p11_key_uri(token, label, id, idn, type);
    if (json) {
        fprintf(out, "%s{\"type\": \"%s\", \"key_type\": ", *first ? "" : ", ", type);
        tool_json_str(out, *alg ? alg : NULL);
        fprintf(out, ", \"label\": ");
        tool_json_str(out, label);
        fprintf(out, ", \"uri\": ");
        tool_json_str(out, uri);
        fprintf(out, "}");
    } else {
        fprintf(out, "  %-11s %-4s %-20s %s\n", c == CKO_CERTIFICATE ? "certificate" : c == CKO_PRIVATE_KEY ? "private key" : "public key",
                alg, label ? label : "(no label)", uri ? uri : "?");
    }
    *first = 0;
    free(uri);
    free(label);
    free(id);
    free(kt);
}

static void list_token(p11 *m, CK_SLOT_ID slot, const char *pin, int json, FILE *out, int *first_token)
{
    CK_TOKEN_INFO ti;
    char label[33], manuf[33], model[17], serial[17];
    if (m->f->C_GetTokenInfo(slot, &ti) != CKR_OK || !(ti.flags & CKF_TOKEN_INITIALIZED))
        return;
    unpad(label, ti.label, 32);
    unpad(manuf, ti.manufacturerID, 32);
    unpad(model, ti.model, 16);
    unpad(serial, ti.serialNumber, 16);
    size_t len = 7, cap = 128;
    char *turi = malloc(cap);
    if (turi != NULL) {
        memcpy(turi, "pkcs11:", 8);
        add_attr(&turi, &len, &cap, "token", (unsigned char *)label, strlen(label));
        add_attr(&turi, &len, &cap, "manufacturer", (unsigned char *)manuf, strlen(manuf));
        add_attr(&turi, &len, &cap, "model", (unsigned char *)model, strlen(model));
        add_attr(&turi, &len, &cap, "serial", (unsigned char *)serial, strlen(serial));
    }
    if (json) {
        fprintf(out, "%s{\"token\": ", *first_token ? "" : ", ");
        tool_json_str(out, label);
        fprintf(out, ", \"slot\": %lu, \"uri\": ", (unsigned long)slot);
        tool_json_str(out, turi);
        fprintf(out, ", \"objects\": [");
    } else {
        fprintf(out, "token \"%s\" (%s %s, serial %s, slot %lu)\n  %s\n", label, manuf, model, serial,
                (unsigned long)slot, turi ? turi : "");
    }
    *first_token = 0;
    CK_SESSION_HANDLE s;
    if (session(m, slot, pin, &s)) {
        CK_OBJECT_HANDLE objs[MAX_OBJECTS];
        CK_ULONG n = 0;
        if (m->f->C_FindObjectsInit(s, NULL, 0) == CKR_OK) {
            m->f->C_FindObjects(s, objs, MAX_OBJECTS, &n);
            m->f->C_FindObjectsFinal(s);
        }
        int first = 1;
        for (CK_ULONG i = 0; i < n; i++)
            list_object(m, s, objs[i], label, json, &first, out);
        if (!json && n == 0)
            fprintf(out, "  (no objects visible%s)\n", pin ? "" : "; private objects need --pin");
        m->f->C_CloseSession(s);
    } else if (!json) {
        fprintf(out, "  (%s)\n", m->error);
    }
    if (json)
        fprintf(out, "]}");
    free(turi);
}

int p11_list(p11 *m, const char *pin, int json, FILE *out)
{
    CK_SLOT_ID list[MAX_SLOTS];
    CK_ULONG n;
    if (!slots(m, list, &n, 1))
        return 0;
    int first = 1;
    if (json)
        fprintf(out, "{\"tokens\": [");
    for (CK_ULONG i = 0; i < n; i++)
        list_token(m, list[i], pin, json, out, &first);
    if (json)
        fprintf(out, "]}\n");
    else if (first)
        fprintf(out, "no initialised token\n");
    return 1;
}
