/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The loopback listener of the test servers written against plain OpenSSL
 * (preload_server, attack/careless_server): sockets only, no OpenSSL and no
 * m2mtls here, so that each program makes every OpenSSL call of its own
 * (careless_server through dlsym).
 */
#ifndef M2MTLS_TESTS_PLAIN_LISTENER_H
#define M2MTLS_TESTS_PLAIN_LISTENER_H

/* A TCP listener on 127.0.0.1 with a port chosen by the kernel, announced
 * as "listening PORT" on stdout; -1 (perror "PROG: listen") on error. */
int plain_listen(const char *prog);

/* Forever: the next connection of LFD, its socket's reads and writes
 * timing out after 5 s, given to SERVE (which must not close it), then
 * closed. */
_Noreturn void plain_serve_forever(int lfd, void (*serve)(int fd, void *arg), void *arg);

#endif
