/* Shared pieces of the m2mtls command. */
#ifndef M2MTLS_TOOL_H
#define M2MTLS_TOOL_H
#include <stdio.h>
#include <time.h>
#include <openssl/x509.h>

/* Exit statuses shared by every subcommand. */
enum { EXIT_ACCEPTED = 0, EXIT_REJECTED = 1, EXIT_USAGE = 2 };

int cmd_inspect(int argc, char **argv);
int cmd_policy(int argc, char **argv);

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
