/* SPDX-License-Identifier: Apache-2.0 */
/* Key references: the one codec of the format that names a key in a token.
 *
 *   -----BEGIN PKCS#11 PROVIDER URI-----
 *   base64 of DER: SEQUENCE { VisibleString "PKCS#11 Provider URI v1.0",
 *                             UTF8String    <pkcs11: URI> }
 *   -----END PKCS#11 PROVIDER URI-----
 *
 * The format of the pkcs11-provider project, so a reference written for one
 * provider works with the other. The provider's decoder, libm2mtls (the
 * policy's `key` line), `m2mtls keyref` and the tests all read and write it
 * here. Internal to m2mtls: hidden in every library it is linked into. */
#ifndef M2MTLS_COMMON_KEYREF_H
#define M2MTLS_COMMON_KEYREF_H
#include <stddef.h>
#include <openssl/bio.h>

#define M2C_KEYREF_PEM_LABEL "PKCS#11 PROVIDER URI"
#define M2C_KEYREF_DESC      "PKCS#11 Provider URI v1.0"
/* DER lengths are written in at most two bytes: no reference is bigger. */
#define M2C_KEYREF_MAX_DER   65535u

#include "hidden.h"

/* Reads the DER structure: 1 and *URI (NUL-terminated, OPENSSL_free it) when
 * DER is exactly the canonical encoding of a reference, else 0 and *URI NULL.
 * Canonical: definite minimal lengths, universal primitive strings, the
 * version string exactly, no NUL in the URI, nothing after the SEQUENCE. So
 * decode followed by encode gives back the same bytes. */
M2C_HIDDEN int m2c_keyref_decode(const unsigned char *der, size_t len, char **uri);
/* Writes the DER structure for URI: 1 and *DER (OPENSSL_free it), *LEN; 0
 * when URI is too long for M2C_KEYREF_MAX_DER or on allocation failure. */
M2C_HIDDEN int m2c_keyref_encode(const char *uri, unsigned char **der, size_t *len);

/* The PEM file: writes it to OUT (1 ok). */
M2C_HIDDEN int m2c_keyref_pem_write(BIO *out, const char *uri);
/* Reads the first PEM block of IN: its URI (OPENSSL_free it), or NULL and
 * WHY ("not a PEM file", "PEM label is 'X', not '...'", "not a '...'
 * structure"). Leaves the OpenSSL error queue empty. */
M2C_HIDDEN char *m2c_keyref_pem_read(BIO *in, char *why, size_t why_len);
#endif
