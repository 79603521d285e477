/* SPDX-License-Identifier: Apache-2.0 */
/* Sockets and (D)TLS I/O for the m2mtls command: non-blocking sockets
 * driven with poll() against a deadline, so nothing waits forever. */
#ifndef M2MTLS_TOOL_NET_H
#define M2MTLS_TOOL_NET_H
#include <stdatomic.h>
#include <stddef.h>
#include <sys/socket.h>
#include <openssl/ssl.h>

/* "host:port" or "[v6]:port" -> HOST, PORT (0 allowed when ANY_PORT: a
 * listener then gets a free port). 0 on a malformed address. */
int  net_split_hostport(const char *s, char *host, size_t hlen, unsigned *port, int any_port);
/* Connected non-blocking socket (TCP or UDP), or -1 with ERR filled. */
int  net_connect(const char *host, unsigned port, int dtls, int timeout_ms, char *err, size_t errlen);
/* Listening / bound non-blocking socket, or -1 with ERR filled. */
int  net_listen(const char *host, unsigned port, int dtls, char *err, size_t errlen);
/* accept() giving a non-blocking socket, or -1. */
int  net_accept(int lfd, struct sockaddr_storage *sa, socklen_t *len);
/* UDP socket bound like LISTEN_FD and connected to PEER: one per DTLS client. */
int  net_udp_child(int listen_fd, const struct sockaddr *peer, socklen_t peer_len);
const char *net_addr_str(const struct sockaddr *sa, char *buf, size_t len);
/* Milliseconds on a monotonic clock. */
long long net_now_ms(void);

/* errno of the last socket error seen under an SSL call (0 if none): tells
 * "connection refused" (ICMP port unreachable on UDP) from a TLS refusal. */
int  net_last_errno(void);

/* I/O on SSL over a non-blocking fd until DEADLINE_MS (monotonic) or *STOP.
 * Return what the SSL call returned (>0 done); on timeout -2, on stop -3. */
int net_handshake(SSL *ssl, int fd, long long deadline_ms, atomic_int *stop);
int net_read(SSL *ssl, int fd, void *buf, int len, long long deadline_ms, atomic_int *stop);
int net_write(SSL *ssl, int fd, const void *buf, int len, long long deadline_ms, atomic_int *stop);
#endif
