/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A loopback proxy for the m2mtls tests: it sits between a client and a
 * server on 127.0.0.1 (TCP, or UDP for DTLS), forwards both ways, and hands
 * every (D)TLS record the client sends to a tamper function first - the way
 * an attacker on the path would change a message.
 */
#ifndef M2MTLS_TESTS_PROXY_H
#define M2MTLS_TESTS_PROXY_H

#include <stddef.h>

/* REC: one whole record (header included), LEN bytes; may be changed in place. */
typedef void (*proxy_tamper_fn)(unsigned char *rec, size_t len, int dtls, void *arg);

typedef struct proxy proxy;

/* Listens on 127.0.0.1 (port in *PORT) and forwards to 127.0.0.1:SERVER_PORT
 * for one connection (TCP) or one client (UDP). NULL on error. */
proxy *proxy_start(int dtls, int server_port, proxy_tamper_fn tamper, void *arg, int *port);
/* Stops the proxy thread and closes its sockets. */
void   proxy_stop(proxy *p);

/* Record helpers for tamper functions. */
int                  proxy_record_type(const unsigned char *rec, int dtls);
/* The first handshake message type in a plaintext handshake record, or -1. */
int                  proxy_handshake_type(const unsigned char *rec, size_t len, int dtls);

#endif
