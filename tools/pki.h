/* SPDX-License-Identifier: Apache-2.0 */
/* Certificates and files for the command's own needs (demo, bench): a small
 * CA that issues TS-0003 end-entity certificates, PEM files, and where the
 * m2mtls provider module is. */
#ifndef M2MTLS_TOOL_PKI_H
#define M2MTLS_TOOL_PKI_H
#include <openssl/evp.h>
#include <openssl/x509.h>

/* A root (ISSUER NULL: self-signed with KEY, CA) or an end-entity certificate
 * for KEY with subjectAltName SAN ("DNS:..." / "URI:..."), keyUsage
 * digitalSignature, signed by ISSUER_KEY. NULL on error (OpenSSL queue). */
X509 *tool_issue(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, const char *san);
/* A self-signed end-entity certificate for KEY (a device's: keyUsage
 * digitalSignature, subjectAltName SAN unless NULL), signed with KEY. */
X509 *tool_self_signed(const char *cn, EVP_PKEY *key, const char *san);
/* FILE gets X (if not NULL) then KEY (if not NULL) as PEM. 1 ok. */
int tool_write_pem(const char *file, X509 *x, EVP_PKEY *key);
/* The provider module: GIVEN, else $M2MTLS_PROVIDER_MODULE, else the one
 * installed beside this executable (BINDIR/../LIBDIR/ossl-modules: wherever
 * the package or prefix was put), else the build tree's (tools/../provider),
 * else the configured install location. */
const char *tool_find_provider(const char *given);
#endif
