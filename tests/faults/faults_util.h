/* SPDX-License-Identifier: Apache-2.0 */
/* Shared pieces of the fault-injection tests: the fault module's control and
 * counts files. (Handshakes: tests/hs.h; certificates: tests/pki.h.) */
#ifndef FAULTS_UTIL_H
#define FAULTS_UTIL_H

/* Writes the control file (text may be "" = no faults). */
int ft_faults(const char *path, const char *text);
/* calls and injected faults of fn from the counts file; 0 when absent */
int ft_count(const char *path, const char *fn, unsigned long *calls, unsigned long *injected);

/* The fault module in front of SoftHSM, for this process: the control file
 * DIR/faults (FAULTS, written empty), the counts file DIR/counts (COUNTS),
 * and DIR/faults.cnf (CONF), an openssl.cnf loading the provider with the
 * module at MODULE_PATH and the PIN from PINFILE. Each buffer holds PATH_MAX
 * + 16 bytes. 1 ok. */
int ft_use_fault_module(const char *dir, const char *pinfile, const char *module_path, char *faults,
                        char *counts, char *conf);
#endif
