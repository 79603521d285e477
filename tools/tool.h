/* SPDX-License-Identifier: Apache-2.0 */
/* Shared pieces of the m2mtls command. */
#ifndef M2MTLS_TOOL_H
#define M2MTLS_TOOL_H
#include <stdio.h>
#include <time.h>
#include <openssl/x509.h>
#include <m2mtls/policy.h>

/* Exit statuses shared by every subcommand. */
enum { EXIT_ACCEPTED = 0, EXIT_REJECTED = 1, EXIT_USAGE = 2 };

int cmd_inspect(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_connect(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_csr(int argc, char **argv);
int cmd_keyref(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_bench(int argc, char **argv);


/* An SSL_CTX for a role, ready for m2mtls associations: TS-0003 profile,
 * the policy's own credential, the verifier. VERSION 0 = any, 12 or 13 pins
 * TLS 1.2 / 1.3 (ignored for DTLS). NULL with a message on stderr. */
SSL_CTX *tool_ssl_ctx(const char *policy, int server, int dtls, int version, m2mtls_policy **out);
/* One association, described: human lines or one JSON object (no newline). */
void tool_print_association(FILE *f, SSL *ssl, int json);
/* The first OpenSSL error as text ("" if none); clears the queue. */
const char *tool_ssl_error(char *buf, size_t len);

/* Reads every certificate of FILE (PEM, or one DER certificate). NULL with a
 * message on stderr when it holds none or cannot be read. */
STACK_OF(X509) *tool_read_certs(const char *file);
/* RFC 3339 ("2026-11-28T10:00:00Z", "...+01:00", fractions) -> time_t. */
int tool_parse_rfc3339(const char *s, time_t *out);
/* JSON string (with quotes), or null for NULL. */
void tool_json_str(FILE *f, const char *s);
void tool_json_bytes(FILE *f, const unsigned char *s, size_t n);
/* "CN=x, O=y" of a name, into buf. */
const char *tool_name(const X509_NAME *n, char *buf, size_t len);
/* ISO 8601 UTC of an ASN1_TIME into buf. */
const char *tool_time(const ASN1_TIME *t, char *buf, size_t len);
#endif
