/* SPDX-License-Identifier: Apache-2.0 */
/* Shared pieces of the fault-injection tests: a TLS server thread that keeps
 * serving (one result per connection, with the whole error queue of a failed
 * handshake), a client, the fault control and counts files, certificates. */
#ifndef FAULTS_UTIL_H
#define FAULTS_UTIL_H
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <openssl/ssl.h>

typedef struct {
    int ok;                 /* handshake and echo done, peer labelled */
    char peer[128];         /* m2mtls_ssl_peer_id() */
    char errors[4096];      /* every error of the queue after a failed SSL_accept */
} ft_result;

typedef struct {
    SSL_CTX *ctx;
    int lfd, port;
    pthread_t th;
    sem_t done;
    ft_result last;
    atomic_int stop;
} ft_server;

int ft_server_start(ft_server *s, SSL_CTX *ctx);
void ft_server_stop(ft_server *s);
/* One connection from cli (m2mtls_ssl_set_peer(peer)); the client's outcome
 * is returned, the server's is copied to *srv. */
int ft_connect(ft_server *s, SSL_CTX *cli, const char *peer, ft_result *srv);

/* Writes the control file (text may be "" = no faults). */
int ft_faults(const char *path, const char *text);
/* calls and injected faults of fn from the counts file; 0 when absent */
int ft_count(const char *path, const char *fn, unsigned long *calls, unsigned long *injected);

int ft_write_file(const char *path, const char *text);

/* The fault module in front of SoftHSM, for this process: the control file
 * DIR/faults (FAULTS, written empty), the counts file DIR/counts (COUNTS),
 * and DIR/faults.cnf (CONF), an openssl.cnf loading the provider with the
 * module at MODULE_PATH and the PIN from PINFILE. Each buffer holds PATH_MAX
 * + 16 bytes. 1 ok. */
int ft_use_fault_module(const char *dir, const char *pinfile, const char *module_path, char *faults,
                        char *counts, char *conf);
#endif
