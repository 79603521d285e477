/* SPDX-License-Identifier: Apache-2.0 */
/* The key-reference codec (common/keyref.c), the one reader and writer of
 *   SEQUENCE { VisibleString "PKCS#11 Provider URI v1.0", UTF8String uri }
 * that the provider's decoder, libm2mtls, `m2mtls keyref` and the tests use.
 * Invariants on arbitrary bytes:
 * - decode never reads outside the input, and fails with *uri NULL;
 * - what decode accepts is canonical: the URI is NUL-free, lies inside the
 *   input, and encoding it gives back exactly the input bytes (so no file
 *   can mean one thing to one reader and another thing to another);
 * - the input read as a URI (up to its first NUL) encodes, decodes back to
 *   itself, and survives the PEM layer (write, then read) unchanged;
 * - a truncated canonical encoding is refused. */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include "fuzz.h"
#include "keyref.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

static void check_decoded(const unsigned char *der, size_t size, const char *uri)
{
    size_t n = strlen(uri);
    unsigned char *again = NULL;
    size_t again_len = 0;
    if (n > size || memmem(der, size, uri, n) == NULL)
        abort();
    if (!m2c_keyref_encode(uri, &again, &again_len) || again_len != size || memcmp(again, der, size) != 0) {
        fprintf(stderr, "fuzz_keyref: an accepted input is not the canonical encoding of its URI\n");
        abort();
    }
    OPENSSL_free(again);
}

/* DATA up to its first NUL, as a URI: encode, decode, PEM round trips. */
static void round_trip(const uint8_t *data, size_t size)
{
    size_t n = strnlen((const char *)data, size);
    char *uri = OPENSSL_strndup((const char *)data, n), *back = NULL;
    unsigned char *der = NULL;
    size_t len = 0;
    if (uri == NULL)
        return;
    if (!m2c_keyref_encode(uri, &der, &len)) {
        OPENSSL_free(uri);
        return; /* only a URI too long for the format is refused */
    }
    if (!m2c_keyref_decode(der, len, &back) || strcmp(back, uri) != 0)
        abort();
    OPENSSL_free(back);
    back = NULL;
    if (len > 0 && m2c_keyref_decode(der, len - 1, &back))
        abort(); /* truncated */
    BIO *mem = BIO_new(BIO_s_mem());
    char why[256];
    if (mem != NULL && m2c_keyref_pem_write(mem, uri)) {
        back = m2c_keyref_pem_read(mem, why, sizeof why);
        if (back == NULL || strcmp(back, uri) != 0)
            abort();
        OPENSSL_free(back);
    }
    BIO_free(mem);
    OPENSSL_free(der);
    OPENSSL_free(uri);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a private copy: any read past the input is an ASan report */
    unsigned char *der = malloc(size ? size : 1);
    char *uri = NULL;
    if (der == NULL)
        return 0;
    memcpy(der, data, size);
    if (m2c_keyref_decode(der, size, &uri))
        check_decoded(der, size, uri);
    else if (uri != NULL)
        abort(); /* failure leaves *uri NULL */
    OPENSSL_free(uri);
    free(der);
    round_trip(data, size);
    return 0;
}
