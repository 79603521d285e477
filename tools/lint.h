/* SPDX-License-Identifier: Apache-2.0 */
/* m2mtls inspect --lint: a certificate and its chain against the TS-0003
 * certificate profile. */
#ifndef M2MTLS_TOOL_LINT_H
#define M2MTLS_TOOL_LINT_H
#include <stdio.h>
#include <time.h>
#include <openssl/x509.h>

/* Lints CERTS (the certificate first, then its chain) as of AT (0: now),
 * prints one finding a line (or one JSON object) to OUT and returns the
 * exit status: 0 clean, 1 findings. NAME is the file, for the text report. */
int lint_report(FILE *out, const char *name, STACK_OF(X509) *certs, time_t at, int json);
#endif
