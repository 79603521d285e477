/* SPDX-License-Identifier: Apache-2.0 */
/* Internal interface between the files of libm2mtls-preload.so. Nothing here
 * leaves the library (hidden visibility, and exports.map). */
#ifndef M2MTLS_PRELOAD_H
#define M2MTLS_PRELOAD_H

#include <stddef.h>
#include <m2mtls/policy.h>

#define PL_HIDDEN __attribute__((visibility("hidden")))

/* preload.c: a line to the log (M2MTLS_LOG: stderr or syslog); PRIO is a
 * syslog priority. */
PL_HIDDEN void plog(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Calls made by m2mtls itself (or by libssl inside an interposed call) go
 * straight to OpenSSL: the interposed functions let them through while this
 * thread's counter is above zero. */
PL_HIDDEN void pl_enter(void);
PL_HIDDEN void pl_leave(void);

/* reload.c: the policy of M2MTLS_POLICY, shared by every context. */
/* Loads PATH and reads M2MTLS_RELOAD; logs what it did. 1 with a policy. */
PL_HIDDEN int pl_policy_start(const char *path);
/* A new reference to the current policy (NULL when none was loaded); with
 * M2MTLS_RELOAD=N, first re-reads the file if it changed and the last check
 * is N seconds old. This is libm2mtls's m2_policy_source. */
PL_HIDDEN m2mtls_policy *pl_policy_current(void);

/* address.c: the peer's address, "1.2.3.4:5", "[::1]:5" or "-". */
PL_HIDDEN const char *pl_peer_address(const SSL *ssl, char *buf, size_t len);

#endif
