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
