/* SPDX-License-Identifier: Apache-2.0 */
/* Errors on the OpenSSL error queue: "C_Login: CKR_PIN_INCORRECT", never a bare failure. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "provider.h"

/* Handles of the live provider instances (one per library context that loaded
 * the provider): errors are raised through the most recent live one, never
 * through the handle of an instance that has been torn down. */
#define MAX_INSTANCES 64
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;
static const OSSL_CORE_HANDLE *live[MAX_INSTANCES];
static size_t nlive;
static OSSL_FUNC_core_new_error_fn *c_new_error;
static OSSL_FUNC_core_set_error_debug_fn *c_set_error_debug;
static OSSL_FUNC_core_vset_error_fn *c_vset_error;

static const OSSL_ITEM reason_strings[] = {
    { M2P_R_PKCS11, "PKCS#11 error" },
    { M2P_R_CONFIG, "configuration error" },
    { M2P_R_URI, "invalid pkcs11 URI" },
    { M2P_R_NOT_FOUND, "not found" },
    { M2P_R_UNSUPPORTED, "unsupported" },
    { M2P_R_PIN, "PIN error" },
    { M2P_R_INTERNAL, "internal error" },
    { 0, NULL },
};

const OSSL_ITEM *m2p_reason_strings(void)
{
    return reason_strings;
}

void m2p_err_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in)
{
    for (; in->function_id != 0; in++) {
        switch (in->function_id) {
        case OSSL_FUNC_CORE_NEW_ERROR:
            c_new_error = OSSL_FUNC_core_new_error(in);
            break;
        case OSSL_FUNC_CORE_SET_ERROR_DEBUG:
            c_set_error_debug = OSSL_FUNC_core_set_error_debug(in);
            break;
        case OSSL_FUNC_CORE_VSET_ERROR:
            c_vset_error = OSSL_FUNC_core_vset_error(in);
            break;
        default:
            break;
        }
    }
    pthread_mutex_lock(&err_lock);
    if (nlive < MAX_INSTANCES)
        live[nlive++] = handle;
    pthread_mutex_unlock(&err_lock);
}

void m2p_err_forget(const OSSL_CORE_HANDLE *handle)
{
    size_t i;

    pthread_mutex_lock(&err_lock);
    for (i = 0; i < nlive; i++) {
        if (live[i] == handle) {
            memmove(&live[i], &live[i + 1], (nlive - i - 1) * sizeof(live[0]));
            nlive--;
            break;
        }
    }
    pthread_mutex_unlock(&err_lock);
}

void m2p_err_raw(int reason, const char *file, int line, const char *func, const char *fmt, ...)
{
    const OSSL_CORE_HANDLE *h;
    va_list ap;

    if (c_new_error == NULL || c_vset_error == NULL)
        return;
    pthread_mutex_lock(&err_lock);
    h = nlive > 0 ? live[nlive - 1] : NULL;
    if (h != NULL) {
        c_new_error(h);
        if (c_set_error_debug != NULL)
            c_set_error_debug(h, file, line, func);
        va_start(ap, fmt);
        c_vset_error(h, (uint32_t)reason, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&err_lock);
}

#define CKR(x) { x, #x }
static const struct {
    CK_RV rv;
    const char *name;
} ckr_names[] = {
    CKR(CKR_OK), CKR(CKR_CANCEL), CKR(CKR_HOST_MEMORY), CKR(CKR_SLOT_ID_INVALID),
    CKR(CKR_GENERAL_ERROR), CKR(CKR_FUNCTION_FAILED), CKR(CKR_ARGUMENTS_BAD), CKR(CKR_NO_EVENT),
    CKR(CKR_NEED_TO_CREATE_THREADS), CKR(CKR_CANT_LOCK), CKR(CKR_ATTRIBUTE_READ_ONLY),
    CKR(CKR_ATTRIBUTE_SENSITIVE), CKR(CKR_ATTRIBUTE_TYPE_INVALID), CKR(CKR_ATTRIBUTE_VALUE_INVALID),
    CKR(CKR_ACTION_PROHIBITED), CKR(CKR_DATA_INVALID), CKR(CKR_DATA_LEN_RANGE),
    CKR(CKR_DEVICE_ERROR), CKR(CKR_DEVICE_MEMORY), CKR(CKR_DEVICE_REMOVED),
    CKR(CKR_ENCRYPTED_DATA_INVALID), CKR(CKR_ENCRYPTED_DATA_LEN_RANGE), CKR(CKR_FUNCTION_CANCELED),
    CKR(CKR_FUNCTION_NOT_PARALLEL), CKR(CKR_FUNCTION_NOT_SUPPORTED), CKR(CKR_KEY_HANDLE_INVALID),
    CKR(CKR_KEY_SIZE_RANGE), CKR(CKR_KEY_TYPE_INCONSISTENT), CKR(CKR_KEY_FUNCTION_NOT_PERMITTED),
    CKR(CKR_MECHANISM_INVALID), CKR(CKR_MECHANISM_PARAM_INVALID), CKR(CKR_OBJECT_HANDLE_INVALID),
    CKR(CKR_OPERATION_ACTIVE), CKR(CKR_OPERATION_NOT_INITIALIZED), CKR(CKR_PIN_INCORRECT),
    CKR(CKR_PIN_INVALID), CKR(CKR_PIN_LEN_RANGE), CKR(CKR_PIN_EXPIRED), CKR(CKR_PIN_LOCKED),
    CKR(CKR_SESSION_CLOSED), CKR(CKR_SESSION_COUNT), CKR(CKR_SESSION_HANDLE_INVALID),
    CKR(CKR_SESSION_PARALLEL_NOT_SUPPORTED), CKR(CKR_SESSION_READ_ONLY), CKR(CKR_SESSION_EXISTS),
    CKR(CKR_SESSION_READ_ONLY_EXISTS), CKR(CKR_SESSION_READ_WRITE_SO_EXISTS),
    CKR(CKR_SIGNATURE_INVALID), CKR(CKR_SIGNATURE_LEN_RANGE), CKR(CKR_TEMPLATE_INCOMPLETE),
    CKR(CKR_TEMPLATE_INCONSISTENT), CKR(CKR_TOKEN_NOT_PRESENT), CKR(CKR_TOKEN_NOT_RECOGNIZED),
    CKR(CKR_TOKEN_WRITE_PROTECTED), CKR(CKR_USER_ALREADY_LOGGED_IN), CKR(CKR_USER_NOT_LOGGED_IN),
    CKR(CKR_USER_PIN_NOT_INITIALIZED), CKR(CKR_USER_TYPE_INVALID),
    CKR(CKR_USER_ANOTHER_ALREADY_LOGGED_IN), CKR(CKR_USER_TOO_MANY_TYPES),
    CKR(CKR_DOMAIN_PARAMS_INVALID), CKR(CKR_CURVE_NOT_SUPPORTED), CKR(CKR_BUFFER_TOO_SMALL),
    CKR(CKR_SAVED_STATE_INVALID), CKR(CKR_INFORMATION_SENSITIVE), CKR(CKR_STATE_UNSAVEABLE),
    CKR(CKR_CRYPTOKI_NOT_INITIALIZED), CKR(CKR_CRYPTOKI_ALREADY_INITIALIZED), CKR(CKR_MUTEX_BAD),
    CKR(CKR_MUTEX_NOT_LOCKED), CKR(CKR_FUNCTION_REJECTED),
};

const char *m2p_ckr_name(CK_RV rv)
{
    static __thread char buf[32];
    size_t i;

    for (i = 0; i < sizeof(ckr_names) / sizeof(ckr_names[0]); i++)
        if (ckr_names[i].rv == rv)
            return ckr_names[i].name;
    snprintf(buf, sizeof(buf), "CKR_0x%08lX", (unsigned long)rv);
    return buf;
}
