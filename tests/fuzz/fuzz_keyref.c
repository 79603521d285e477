/* SPDX-License-Identifier: Apache-2.0 */
/* The key-reference decoder: m2p_load_ref_decode() of provider/decoder.c, the
 * function the provider's "EC"/"RSA" (input der, structure pkcs11) decoders
 * run on the DER of a 'PKCS#11 PROVIDER URI' file:
 *   SEQUENCE { VisibleString "PKCS#11 Provider URI v1.0", UTF8String uri }
 * The provider's sources are compiled in. A URI it returns must be a NUL-free
 * string that lies inside the input; it is then handed to the URI parser, as
 * m2p_key_from_uri() would do. Differential oracle: whatever the provider
 * accepts, a plain d2i_ASN1_SEQUENCE_ANY reading (what libm2mtls does with
 * the same files, policy/credential.c) accepts too, with the same URI: no
 * file means one thing to the provider and another (or nothing) to the policy
 * library. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include "provider.h"
#include "fuzz.h"

int m2p_load_ref_decode(const unsigned char *der, size_t len, char **uri);

/* the structure read as libm2mtls reads it; malloc'd URI or NULL */
static char *reference_decode(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    STACK_OF(ASN1_TYPE) *seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, (long)len);
    const ASN1_TYPE *v = seq && sk_ASN1_TYPE_num(seq) == 2 ? sk_ASN1_TYPE_value(seq, 0) : NULL;
    const ASN1_TYPE *u = v ? sk_ASN1_TYPE_value(seq, 1) : NULL;
    char *uri = NULL;
    static const char desc[] = "PKCS#11 Provider URI v1.0";

    if (v != NULL && u != NULL && v->type == V_ASN1_VISIBLESTRING && u->type == V_ASN1_UTF8STRING
        && ASN1_STRING_length(v->value.asn1_string) == (int)strlen(desc)
        && memcmp(ASN1_STRING_get0_data(v->value.asn1_string), desc, strlen(desc)) == 0
        && !memchr(ASN1_STRING_get0_data(u->value.asn1_string), '\0', (size_t)ASN1_STRING_length(u->value.asn1_string)))
        uri = strndup((const char *)ASN1_STRING_get0_data(u->value.asn1_string),
                      (size_t)ASN1_STRING_length(u->value.asn1_string));
    sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
    return uri;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a private copy: any read past the input is an ASan report */
    unsigned char *der = malloc(size ? size : 1);
    char *uri = NULL;
    if (der == NULL)
        return 0;
    memcpy(der, data, size);
    int ok = m2p_load_ref_decode(der, size, &uri);
    if (ok) {
        size_t n = strlen(uri);
        if (n > size || memmem(der, size, uri, n) == NULL)
            abort();
        char *ref = reference_decode(der, size);
        if (ref == NULL || strcmp(ref, uri) != 0) {
            fprintf(stderr, "fuzz_keyref: the provider reads a key reference the policy library %s\n",
                    ref == NULL ? "rejects" : "reads differently");
            abort();
        }
        free(ref);
        m2p_uri_free(m2p_uri_parse(uri));
    } else if (uri != NULL) {
        abort(); /* failure leaves *uri NULL */
    }
    OPENSSL_free(uri);
    free(der);
    return 0;
}
