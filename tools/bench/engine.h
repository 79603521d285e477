/* SPDX-License-Identifier: Apache-2.0 */
/* libp11's engine for m2mtls bench sign (engine.c: the only file built
 * with the deprecated ENGINE API). */
#ifndef M2MTLS_TOOL_BENCH_ENGINE_H
#define M2MTLS_TOOL_BENCH_ENGINE_H
#include <stddef.h>
#include <openssl/evp.h>

/* Engine "pkcs11" with MODULE and PIN; NULL with WHY ("not installed", ...).
 * The engine is never finished: libp11 would C_Finalize the module that the
 * m2mtls provider shares in this process. */
void *bench_engine_open(const char *module, const char *pin, char *why, size_t len);
EVP_PKEY *bench_engine_key(void *engine, const char *uri, char *why, size_t len);
#endif
