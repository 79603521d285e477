/* Sockets and (D)TLS I/O for the m2mtls command: non-blocking sockets
 * driven with poll() against a deadline, so nothing waits forever. */
#ifndef M2MTLS_TOOL_NET_H
#define M2MTLS_TOOL_NET_H
#include <stdatomic.h>
#include <stddef.h>
#include <sys/socket.h>
#include <openssl/ssl.h>

/* "host:port" or "[v6]:port" -> HOST, PORT. 0 on a malformed address. */
int  net_split_hostport(const char *s, char *host, size_t hlen, unsigned *port);
/* Connected non-blocking socket (TCP or UDP), or -1 with ERR filled. */
int  net_connect(const char *host, unsigned port, int dtls, int timeout_ms, char *err, size_t errlen);
/* Listening / bound non-blocking socket, or -1 with ERR filled. */
int  net_listen(const char *host, unsigned port, int dtls, char *err, size_t errlen);
/* UDP socket bound like LISTEN_FD and connected to PEER: one per DTLS client. */
int  net_udp_child(int listen_fd, const struct sockaddr *peer, socklen_t peer_len);
const char *net_addr_str(const struct sockaddr *sa, char *buf, size_t len);
/* Milliseconds on a monotonic clock. */
long long net_now_ms(void);

/* I/O on SSL over a non-blocking fd until DEADLINE_MS (monotonic) or *STOP.
 * Return what the SSL call returned (>0 done); on timeout -2, on stop -3. */
int net_handshake(SSL *ssl, int fd, long long deadline_ms, atomic_int *stop);
int net_read(SSL *ssl, int fd, void *buf, int len, long long deadline_ms, atomic_int *stop);
int net_write(SSL *ssl, int fd, const void *buf, int len, long long deadline_ms, atomic_int *stop);
#endif
