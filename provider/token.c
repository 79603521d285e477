/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Token access: the PKCS#11 module (loaded lazily, re-initialised after fork),
 * tokens, the per-token session pool and login (a refused PIN is never
 * presented again). Signing with recovery is the key's (key.c).
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>

#include "provider.h"

/* ---- fork detection --------------------------------------------------------- */

static unsigned long forks;     /* fork()s this process went through (atomic) */
static pthread_once_t forks_once = PTHREAD_ONCE_INIT;

static void count_fork(void)
{
    __atomic_add_fetch(&forks, 1, __ATOMIC_RELAXED);
}

/* glibc removes a module's fork handlers when it is unloaded (dlclose runs
 * __cxa_finalize, which unregisters them); this one touches nothing else. */
static void register_fork_handler(void)
{
    pthread_atfork(NULL, NULL, count_fork);
}

void m2p_forks_init(void)
{
    pthread_once(&forks_once, register_fork_handler);
}

unsigned long m2p_forks(void)
{
    return __atomic_load_n(&forks, __ATOMIC_ACQUIRE);
}

m2p_module *m2p_module_new(m2p_prov *prov)
{
    m2p_module *mod = OPENSSL_zalloc(sizeof(*mod));

    if (mod == NULL)
        return NULL;
    mod->prov = prov;
    pthread_mutex_init(&mod->lock, NULL);
    return mod;
}

static void token_free(m2p_token *tok)
{
    pthread_mutex_destroy(&tok->lock);
    OPENSSL_free(tok->pool);
    if (tok->pin != NULL)
        OPENSSL_clear_free(tok->pin, strlen(tok->pin));
    OPENSSL_free(tok);
}

void m2p_module_free(m2p_module *mod)
{
    m2p_token *t, *next;

    if (mod == NULL)
        return;
    /* No C_Finalize here: teardown runs from OPENSSL_cleanup() at exit, and a
     * module that uses libcrypto itself (SoftHSM) crashes finalising against a
     * half torn down libcrypto. The process is ending; the module stays
     * initialised (a later load finds it so and carries on). */
    for (t = mod->tokens; t != NULL; t = next) {
        next = t->next;
        token_free(t);
    }
    /* The module is deliberately not dlclose()d: a PKCS#11 module that links
     * libcrypto (SoftHSM) may have registered atexit handlers. */
    pthread_mutex_destroy(&mod->lock);
    OPENSSL_free(mod);
}

/* with mod->lock held */
static int module_init_locked(m2p_module *mod)
{
    CK_C_INITIALIZE_ARGS args;
    CK_RV rv;

    if (mod->f == NULL) {
        const char *path = mod->prov->module_path;
        CK_C_GetFunctionList gfl;
        void *sym;

        if (path == NULL || *path == '\0') {
            M2P_ERR(M2P_R_CONFIG, "pkcs11-module-path is not configured");
            mod->init_failed = CKR_GENERAL_ERROR;
            return 0;
        }
        if (mod->dl == NULL && (mod->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
            M2P_ERR(M2P_R_CONFIG, "cannot load PKCS#11 module %s: %s", path, dlerror());
            return 0;
        }
        sym = dlsym(mod->dl, "C_GetFunctionList");
        if (sym == NULL) {
            M2P_ERR(M2P_R_CONFIG, "%s is not a PKCS#11 module (no C_GetFunctionList)", path);
            return 0;
        }
        memcpy(&gfl, &sym, sizeof(gfl));
        rv = gfl(&mod->f);
        if (rv != CKR_OK || mod->f == NULL) {
            mod->f = NULL;
            M2P_ERR_CK("C_GetFunctionList", rv);
            return 0;
        }
    }
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    /* a module using libcrypto itself (SoftHSM) may leave errors behind */
    ERR_set_mark();
    rv = mod->f->C_Initialize(&args);
    if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED && ATOMIC_GET(mod->initialized)) {
        /* a child after fork() whose module kept its parent's state */
        mod->f->C_Finalize(NULL);
        rv = mod->f->C_Initialize(&args);
    }
    ERR_pop_to_mark();
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        M2P_ERR_CK("C_Initialize", rv);
        return 0;
    }
    ATOMIC_SET(mod->forks, m2p_forks());
    __atomic_add_fetch(&mod->gen, 1, __ATOMIC_ACQ_REL);
    ATOMIC_SET(mod->initialized, 1);
    return 1;
}

int m2p_module_ready(m2p_module *mod, unsigned long *gen)
{
    int ok = 1;

    if (mod->prov->config_error != NULL) {
        M2P_ERR(M2P_R_CONFIG, "%s", mod->prov->config_error);
        return 0;
    }
    /* the common case without a lock (nor a system call: getpid() costs
     * more than the rest of this provider's work per signature in some
     * virtual machines): initialised, by this process */
    if (ATOMIC_GET(mod->initialized) && ATOMIC_GET(mod->forks) == m2p_forks()) {
        if (gen != NULL)
            *gen = ATOMIC_GET(mod->gen);
        return 1;
    }
    pthread_mutex_lock(&mod->lock);
    if (ATOMIC_GET(mod->initialized) && ATOMIC_GET(mod->forks) != m2p_forks()) {
        /* forked child: every session and login of the parent is gone */
        ok = module_init_locked(mod);
    } else if (!ATOMIC_GET(mod->initialized)) {
        ok = module_init_locked(mod);
    }
    if (gen != NULL)
        *gen = ATOMIC_GET(mod->gen);
    pthread_mutex_unlock(&mod->lock);
    return ok;
}

static void copy_padded(char *dst, const unsigned char *src, size_t len)
{
    while (len > 0 && (src[len - 1] == ' ' || src[len - 1] == '\0'))
        len--;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static int match_str(const char *want, const char *have)
{
    return want == NULL || strcmp(want, have) == 0;
}

/* with mod->lock held */
static m2p_token *token_for_slot(m2p_module *mod, CK_SLOT_ID slot)
{
    m2p_token *t;

    for (t = mod->tokens; t != NULL; t = t->next)
        if (t->slot == slot)
            return t;
    if ((t = OPENSSL_zalloc(sizeof(*t))) == NULL)
        return NULL;
    t->mod = mod;
    t->slot = slot;
    t->gen = ATOMIC_GET(mod->gen);
    pthread_mutex_init(&t->lock, NULL);
    t->next = mod->tokens;
    mod->tokens = t;
    return t;
}

size_t m2p_tokens_find(m2p_module *mod, const m2p_uri *u, m2p_token **out, size_t max)
{
    CK_SLOT_ID *slots = NULL;
    CK_ULONG n = 0, i;
    size_t found = 0;
    CK_RV rv;

    if (!m2p_module_ready(mod, NULL))
        return 0;
    rv = mod->f->C_GetSlotList(CK_TRUE, NULL, &n);
    if (rv != CKR_OK) {
        M2P_ERR_CK("C_GetSlotList", rv);
        return 0;
    }
    if (n == 0)
        return 0;
    if ((slots = OPENSSL_malloc(n * sizeof(*slots))) == NULL)
        return 0;
    rv = mod->f->C_GetSlotList(CK_TRUE, slots, &n);
    if (rv != CKR_OK) {
        M2P_ERR_CK("C_GetSlotList", rv);
        OPENSSL_free(slots);
        return 0;
    }
    for (i = 0; i < n && found < max; i++) {
        CK_TOKEN_INFO ti;
        CK_SLOT_INFO si;
        char label[33], manuf[33], model[17], serial[17], sdesc[65], smanuf[33];
        m2p_token *t;

        if (u != NULL && u->has_slot_id && u->slot_id != slots[i])
            continue;
        if (mod->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
            continue;
        if (mod->f->C_GetSlotInfo(slots[i], &si) != CKR_OK)
            memset(&si, ' ', sizeof(si));
        if (!(ti.flags & CKF_TOKEN_INITIALIZED))
            continue;
        copy_padded(label, ti.label, sizeof(ti.label));
        copy_padded(manuf, ti.manufacturerID, sizeof(ti.manufacturerID));
        copy_padded(model, ti.model, sizeof(ti.model));
        copy_padded(serial, ti.serialNumber, sizeof(ti.serialNumber));
        copy_padded(sdesc, si.slotDescription, sizeof(si.slotDescription));
        copy_padded(smanuf, si.manufacturerID, sizeof(si.manufacturerID));
        if (u != NULL
            && !(match_str(u->token, label) && match_str(u->manufacturer, manuf)
                 && match_str(u->model, model) && match_str(u->serial, serial)
                 && match_str(u->slot_description, sdesc)
                 && match_str(u->slot_manufacturer, smanuf)))
            continue;
        pthread_mutex_lock(&mod->lock);
        t = token_for_slot(mod, slots[i]);
        pthread_mutex_unlock(&mod->lock);
        if (t == NULL)
            break;
        pthread_mutex_lock(&t->lock);
        strcpy(t->label, label);
        strcpy(t->manufacturer, manuf);
        strcpy(t->model, model);
        strcpy(t->serial, serial);
        strcpy(t->slot_description, sdesc);
        strcpy(t->slot_manufacturer, smanuf);
        t->login_required = (ti.flags & CKF_LOGIN_REQUIRED) != 0;
        pthread_mutex_unlock(&t->lock);
        out[found++] = t;
    }
    OPENSSL_free(slots);
    return found;
}

char *m2p_read_pin_file(const char *path)
{
    char buf[256];
    size_t len;
    FILE *fp;

    if (strncmp(path, "file:", 5) == 0)
        path += 5;
    if ((fp = fopen(path, "r")) == NULL) {
        M2P_ERR(M2P_R_PIN, "cannot read PIN file %s: %s", path, strerror(errno));
        return NULL;
    }
    len = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[len] = '\0';
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        buf[--len] = '\0';
    {
        char *pin = OPENSSL_strdup(buf);

        OPENSSL_cleanse(buf, sizeof(buf));
        return pin;
    }
}

static int is_pin_refusal(CK_RV rv)
{
    return rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE
        || rv == CKR_PIN_EXPIRED || rv == CKR_PIN_LOCKED;
}

/* Logs the token in once; with tok->lock held. *rv_out: the C_Login result
 * (CKR_OK when C_Login was not called). */
static int token_login_locked(m2p_token *tok, CK_SESSION_HANDLE s, const m2p_login_src *src, CK_RV *rv_out)
{
    m2p_prov *prov = tok->mod->prov;
    char *pin = NULL;
    CK_RV rv;

    *rv_out = CKR_OK;
    if (tok->login_failed) {
        M2P_ERR(M2P_R_PKCS11, "C_Login: %s (token \"%s\": the refused PIN is not tried again)",
                m2c_ckr_name(tok->login_failed), tok->label);
        return 0;
    }
    if (src != NULL && src->pin != NULL)
        pin = OPENSSL_strdup(src->pin);
    else if (tok->pin != NULL)
        pin = OPENSSL_strdup(tok->pin);
    else if (prov->pin_cfg != NULL) {
        if (strncmp(prov->pin_cfg, "file:", 5) == 0)
            pin = m2p_read_pin_file(prov->pin_cfg);
        else
            pin = OPENSSL_strdup(prov->pin_cfg);
        if (pin == NULL)
            return 0;
    } else if (src != NULL && src->pw_cb != NULL) {
        char buf[256];
        size_t len = 0;
        char info[128];
        OSSL_PARAM params[2];

        snprintf(info, sizeof(info), "PIN for token \"%s\"", tok->label);
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PASSPHRASE_PARAM_INFO, info, 0);
        params[1] = OSSL_PARAM_construct_end();
        if (!src->pw_cb(buf, sizeof(buf) - 1, &len, params, src->pw_cbarg)) {
            M2P_ERR(M2P_R_PIN, "no PIN for token \"%s\" (passphrase callback failed)", tok->label);
            return 0;
        }
        buf[len] = '\0';
        pin = OPENSSL_strdup(buf);
        OPENSSL_cleanse(buf, sizeof(buf));
    } else {
        M2P_ERR(M2P_R_PIN, "no PIN for token \"%s\": set pkcs11-module-token-pin or pin-value",
                tok->label);
        return 0;
    }
    if (pin == NULL)
        return 0;
    rv = tok->mod->f->C_Login(s, CKU_USER, (CK_UTF8CHAR *)pin, (CK_ULONG)strlen(pin));
    *rv_out = rv;
    if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) {
        tok->logged_in = 1;
        if (tok->pin == NULL)
            tok->pin = pin;
        else
            OPENSSL_clear_free(pin, strlen(pin));
        return 1;
    }
    OPENSSL_clear_free(pin, strlen(pin));
    if (is_pin_refusal(rv))
        tok->login_failed = rv;
    M2P_ERR(M2P_R_PKCS11, "C_Login: %s (token \"%s\")", m2c_ckr_name(rv), tok->label);
    return 0;
}

/* The token may sit in another slot now (re-inserted, or the module was
 * re-initialised after fork): find it again by serial number and label. */
static int token_relocate(m2p_token *tok)
{
    CK_FUNCTION_LIST *f = tok->mod->f;
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64, i;
    char serial[17], label[33];
    int found = 0;

    if (f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
        return 0;
    pthread_mutex_lock(&tok->lock);
    for (i = 0; i < n && !found; i++) {
        CK_TOKEN_INFO ti;

        if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
            continue;
        copy_padded(serial, ti.serialNumber, sizeof(ti.serialNumber));
        copy_padded(label, ti.label, sizeof(ti.label));
        if (strcmp(serial, tok->serial) == 0 && strcmp(label, tok->label) == 0) {
            tok->slot = slots[i];
            found = 1;
        }
    }
    pthread_mutex_unlock(&tok->lock);
    return found;
}

/* The module lost a token we know (SoftHSM, for one, skips a token whose files
 * another process holds locked while it initialises): start it again. */
static void module_restart(m2p_module *mod)
{
    CK_C_INITIALIZE_ARGS args;

    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    pthread_mutex_lock(&mod->lock);
    ERR_set_mark();
    mod->f->C_Finalize(NULL);
    if (mod->f->C_Initialize(&args) == CKR_OK) {
        ATOMIC_SET(mod->forks, m2p_forks());
        __atomic_add_fetch(&mod->gen, 1, __ATOMIC_ACQ_REL);
    } else {
        ATOMIC_SET(mod->initialized, 0);   /* m2p_module_ready() tries again, and reports */
    }
    ERR_pop_to_mark();
    pthread_mutex_unlock(&mod->lock);
}

static int slot_gone(CK_RV rv)
{
    return rv == CKR_SLOT_ID_INVALID || rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_DEVICE_REMOVED
        || rv == CKR_TOKEN_NOT_RECOGNIZED;
}

/* C_Login failures that say nothing about the PIN: the session or the token
 * went away under us, or the module read the token while another process
 * held its files (SoftHSM, in a forked child, then answers C_Login with
 * CKR_USER_PIN_NOT_INITIALIZED or CKR_GENERAL_ERROR). Worth another try, after
 * a module restart for all but a lost session. A token refuses a wrong PIN
 * with CKR_PIN_INCORRECT (PKCS#11 5.6): that one is never retried. */
static int login_transient(CK_RV rv)
{
    return slot_gone(rv) || rv == CKR_USER_PIN_NOT_INITIALIZED || rv == CKR_GENERAL_ERROR
        || rv == CKR_DEVICE_ERROR || rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED;
}

int m2p_session_get(m2p_token *tok, CK_SESSION_HANDLE *s, const m2p_login_src *src)
{
    m2p_module *mod = tok->mod;
    CK_SESSION_HANDLE ss;
    unsigned long gen;
    CK_RV rv = CKR_OK, lrv;
    CK_SLOT_ID slot;
    int ok, attempt, login_attempt = 0;

retry:
    for (attempt = 0;; attempt++) {
        if (!m2p_module_ready(mod, &gen))
            return 0;
        ss = CK_INVALID_HANDLE;
        pthread_mutex_lock(&tok->lock);
        if (tok->gen != gen) {
            /* module re-initialised (fork): the pooled handles, the keeper
             * and its copies mean nothing now */
            tok->npool = 0;
            tok->logged_in = 0;
            tok->gen = gen;
            tok->keeper = CK_INVALID_HANDLE;
            __atomic_add_fetch(&tok->keeper_epoch, 1, __ATOMIC_ACQ_REL);
        }
        if (tok->login_failed) {
            CK_RV lf = tok->login_failed;

            pthread_mutex_unlock(&tok->lock);
            M2P_ERR(M2P_R_PKCS11,
                    "C_Login: %s (token \"%s\": the refused PIN is not tried again)",
                    m2c_ckr_name(lf), tok->label);
            return 0;
        }
        if (tok->npool > 0)
            ss = tok->pool[--tok->npool];
        slot = tok->slot;
        if (ss != CK_INVALID_HANDLE && (tok->logged_in || !tok->login_required)) {
            /* the common case: a pooled session of a logged-in token */
            pthread_mutex_unlock(&tok->lock);
            *s = ss;
            return 1;
        }
        pthread_mutex_unlock(&tok->lock);
        if (ss != CK_INVALID_HANDLE)
            break;
        rv = mod->f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &ss);
        if (rv == CKR_OK)
            break;
        if (!slot_gone(rv) || attempt == M2P_MAX_RETRIES) {
            M2P_ERR(M2P_R_PKCS11, "C_OpenSession: %s (token \"%s\")", m2c_ckr_name(rv),
                    tok->label);
            return 0;
        }
        if (!token_relocate(tok)) {
            usleep(10000u << attempt);
            module_restart(mod);
            token_relocate(tok);
        }
    }
    ok = 1;
    lrv = CKR_OK;
    ERR_set_mark();
    pthread_mutex_lock(&tok->lock);
    if (tok->login_required && !tok->logged_in && !(src != NULL && src->no_login))
        ok = token_login_locked(tok, ss, src, &lrv);
    pthread_mutex_unlock(&tok->lock);
    if (!ok) {
        mod->f->C_CloseSession(ss);
        if (login_transient(lrv) && login_attempt + 1 < M2P_MAX_RETRIES) {
            ERR_pop_to_mark();
            usleep(10000u << login_attempt);
            if (lrv != CKR_SESSION_HANDLE_INVALID && lrv != CKR_SESSION_CLOSED) {
                m2p_token_reset(tok, 0);
                module_restart(mod);
                token_relocate(tok);
            }
            login_attempt++;
            goto retry;
        }
        ERR_clear_last_mark();
        return 0;
    }
    ERR_clear_last_mark();
    *s = ss;
    return 1;
}

void m2p_session_put(m2p_token *tok, CK_SESSION_HANDLE s)
{
    pthread_mutex_lock(&tok->lock);
    if (tok->npool == tok->cappool) {
        size_t ncap = tok->cappool ? tok->cappool * 2 : 8;
        CK_SESSION_HANDLE *np = OPENSSL_realloc(tok->pool, ncap * sizeof(*np));

        if (np == NULL) {
            pthread_mutex_unlock(&tok->lock);
            tok->mod->f->C_CloseSession(s);
            return;
        }
        tok->pool = np;
        tok->cappool = ncap;
    }
    tok->pool[tok->npool++] = s;
    pthread_mutex_unlock(&tok->lock);
}

void m2p_session_drop(m2p_token *tok, CK_SESSION_HANDLE s)
{
    tok->mod->f->C_CloseSession(s);
}

void m2p_token_reset(m2p_token *tok, int logged_out_only)
{
    CK_SESSION_HANDLE *old = NULL, keeper;
    size_t n = 0, i;

    pthread_mutex_lock(&tok->lock);
    tok->logged_in = 0;
    if (!logged_out_only) {
        old = tok->pool;
        n = tok->npool;
        tok->pool = NULL;
        tok->npool = tok->cappool = 0;
    }
    /* The device went away: closing the keeper destroys whatever is left
     * of the copies, and the next signatures make new ones. A logout alone
     * leaves the keeper open: each key learns that its copy is gone. */
    keeper = logged_out_only ? CK_INVALID_HANDLE : tok->keeper;
    if (!logged_out_only) {
        tok->keeper = CK_INVALID_HANDLE;
        __atomic_add_fetch(&tok->keeper_epoch, 1, __ATOMIC_ACQ_REL);
    }
    pthread_mutex_unlock(&tok->lock);
    for (i = 0; i < n; i++)
        tok->mod->f->C_CloseSession(old[i]);
    OPENSSL_free(old);
    if (keeper != CK_INVALID_HANDLE)
        tok->mod->f->C_CloseSession(keeper);
}

unsigned long m2p_token_keeper_epoch(m2p_token *tok)
{
    return __atomic_load_n(&tok->keeper_epoch, __ATOMIC_ACQUIRE);
}

/* with tok->lock held */
static CK_RV copy_locked(m2p_token *tok, CK_OBJECT_HANDLE obj, CK_OBJECT_HANDLE *copy)
{
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE tmpl = { CKA_TOKEN, &no, sizeof(no) };
    CK_RV rv;

    if (tok->keeper == CK_INVALID_HANDLE) {
        /* read-only: session objects may be made in any session */
        rv = tok->mod->f->C_OpenSession(tok->slot, CKF_SERIAL_SESSION, NULL, NULL, &tok->keeper);
        if (rv != CKR_OK) {
            tok->keeper = CK_INVALID_HANDLE;
            return rv;
        }
    }
    return tok->mod->f->C_CopyObject(tok->keeper, obj, &tmpl, 1, copy);
}

CK_RV m2p_token_copy_key(m2p_token *tok, CK_OBJECT_HANDLE obj, CK_OBJECT_HANDLE *copy,
                         unsigned long *epoch)
{
    CK_RV rv;

    /* under the lock: a reset cannot close the keeper between its opening
     * and the copy, and the epoch returned is the copy's */
    pthread_mutex_lock(&tok->lock);
    rv = copy_locked(tok, obj, copy);
    if (rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED) {
        /* the keeper was closed behind our back: a new one, once */
        tok->keeper = CK_INVALID_HANDLE;
        __atomic_add_fetch(&tok->keeper_epoch, 1, __ATOMIC_ACQ_REL);
        rv = copy_locked(tok, obj, copy);
    }
    *epoch = tok->keeper_epoch;
    pthread_mutex_unlock(&tok->lock);
    return rv;
}

void m2p_token_drop_copy(m2p_token *tok, CK_OBJECT_HANDLE copy, unsigned long epoch)
{
    pthread_mutex_lock(&tok->lock);
    /* not after a module restart the keeper has not seen yet, nor in a
     * forked child that has not re-initialised the module (the handles
     * there are its parent's) */
    if (tok->keeper != CK_INVALID_HANDLE && tok->keeper_epoch == epoch
        && tok->gen == ATOMIC_GET(tok->mod->gen) && ATOMIC_GET(tok->mod->forks) == m2p_forks())
        tok->mod->f->C_DestroyObject(tok->keeper, copy);
    pthread_mutex_unlock(&tok->lock);
}

CK_RV m2p_get_attr(m2p_token *tok, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                   CK_ATTRIBUTE_TYPE type, unsigned char **val, size_t *len)
{
    CK_ATTRIBUTE a = { type, NULL, 0 };
    CK_RV rv;

    *val = NULL;
    *len = 0;
    rv = tok->mod->f->C_GetAttributeValue(s, h, &a, 1);
    if (rv != CKR_OK)
        return rv;
    if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
        return CKR_ATTRIBUTE_TYPE_INVALID;
    if ((a.pValue = OPENSSL_malloc(a.ulValueLen + 1)) == NULL)
        return CKR_HOST_MEMORY;
    rv = tok->mod->f->C_GetAttributeValue(s, h, &a, 1);
    if (rv != CKR_OK) {
        OPENSSL_free(a.pValue);
        return rv;
    }
    ((unsigned char *)a.pValue)[a.ulValueLen] = '\0';
    *val = a.pValue;
    *len = a.ulValueLen;
    return CKR_OK;
}

long m2p_find(m2p_token *tok, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG n,
              CK_OBJECT_HANDLE *out, CK_ULONG max)
{
    CK_FUNCTION_LIST *f = tok->mod->f;
    CK_ULONG cnt = 0;
    CK_RV rv;

    rv = f->C_FindObjectsInit(s, tmpl, n);
    if (rv != CKR_OK) {
        M2P_ERR_CK("C_FindObjectsInit", rv);
        return -(long)(rv == 0 ? 1 : rv);
    }
    rv = f->C_FindObjects(s, out, max, &cnt);
    f->C_FindObjectsFinal(s);
    if (rv != CKR_OK) {
        M2P_ERR_CK("C_FindObjects", rv);
        return -(long)(rv == 0 ? 1 : rv);
    }
    return (long)cnt;
}
