/* SPDX-License-Identifier: Apache-2.0 */
/* m2mtls bench sign: libp11's PKCS#11 engine (Debian: libengine-pkcs11-openssl),
 * the path many programs use today, measured on the same token. The ENGINE
 * API is deprecated in OpenSSL 3: this file alone is compiled with it
 * (tools/CMakeLists.txt), and the engine is loaded at run time, so the
 * command neither needs nor links it. */
#include <stdio.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include "engine.h"

void *bench_engine_open(const char *module, const char *pin, char *why, size_t len)
{
    ENGINE *e = ENGINE_by_id("pkcs11");
    if (e == NULL) {
        ERR_clear_error();
        snprintf(why, len, "not installed");
        return NULL;
    }
    if (!ENGINE_ctrl_cmd_string(e, "MODULE_PATH", module, 0) || !ENGINE_init(e)) {
        unsigned long err = ERR_peek_last_error();
        snprintf(why, len, "engine pkcs11: %s", err ? ERR_reason_error_string(err) : "cannot initialise");
        ERR_clear_error();
        ENGINE_free(e);
        return NULL;
    }
    ENGINE_free(e); /* the functional reference from ENGINE_init keeps it */
    if (!ENGINE_ctrl_cmd_string(e, "PIN", pin, 0)) {
        snprintf(why, len, "engine pkcs11: PIN refused");
        ERR_clear_error();
        return NULL; /* never finished: see engine.h */
    }
    return e;
}

EVP_PKEY *bench_engine_key(void *engine, const char *uri, char *why, size_t len)
{
    EVP_PKEY *k = ENGINE_load_private_key(engine, uri, NULL, NULL);
    if (k == NULL) {
        unsigned long err = ERR_peek_last_error();
        snprintf(why, len, "engine pkcs11: %s: %s", uri, err ? ERR_reason_error_string(err) : "cannot load");
    }
    ERR_clear_error();
    return k;
}
