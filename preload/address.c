/* SPDX-License-Identifier: Apache-2.0 */
/* The peer's address in the preload's log lines, for every kind of transport:
 *
 *   1. DTLS: the SSL's datagram BIO (BIO_CTRL_DGRAM_GET_PEER). A DTLS server
 *      that reads every peer from one unconnected socket (DTLSv1_listen) has
 *      the address only there; a custom BIO that answers the control works too.
 *   2. The socket's peer (getpeername on SSL_get_fd): TCP, connected UDP.
 *   3. libcoap, whose own BIOs ("coapdgram", "coapsock") answer neither: the
 *      address is in the libcoap session that is the SSL's app data, read
 *      through libcoap's public getter, found in the program at run time.
 *   4. Otherwise "-" (a memory BIO fed by the program, e.g. Node.js). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include "preload.h"

/* A sockaddr as long as any BIO could copy: OpenSSL copies the size of the
 * address's family, a custom BIO may copy a whole sockaddr_storage. */
typedef union peer_sa {
    struct sockaddr sa;
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    struct sockaddr_storage ss;
    unsigned char room[256];
} peer_sa;

static int format_sockaddr(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        if (inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip) == NULL)
            return 0;
        snprintf(buf, len, "%s:%u", ip, ntohs(a->sin_port));
        return 1;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        if (inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip) == NULL)
            return 0;
        snprintf(buf, len, "[%s]:%u", ip, ntohs(a->sin6_port));
        return 1;
    }
    return 0;
}

static int from_dgram_bio(const SSL *ssl, char *buf, size_t len)
{
    BIO *b = SSL_get_rbio(ssl);
    if (!SSL_is_dtls(ssl) || b == NULL)
        return 0;
    peer_sa u;
    memset(&u, 0, sizeof u);
    if (BIO_ctrl(b, BIO_CTRL_DGRAM_GET_PEER, (long)sizeof u, &u) <= 0)
        return 0;
    return format_sockaddr(&u.sa, buf, len);
}

static int from_socket(const SSL *ssl, char *buf, size_t len)
{
    int fd = SSL_get_fd(ssl);
    peer_sa u;
    socklen_t sl = sizeof u.ss;
    memset(&u, 0, sizeof u);
    if (fd < 0 || getpeername(fd, &u.sa, &sl) != 0)
        return 0;
    return format_sockaddr(&u.sa, buf, len);
}

/* libcoap 4.3's public coap_address_t (POSIX builds): its size, then the
 * address as a sockaddr. */
typedef struct coap_address_view {
    socklen_t size;
    union {
        struct sockaddr sa;
        struct sockaddr_in sin;
        struct sockaddr_in6 sin6;
    } addr;
} coap_address_view;

static const coap_address_view *(*coap_get_addr_remote)(const void *session);
static pthread_once_t coap_once = PTHREAD_ONCE_INIT;

static void find_libcoap(void)
{
    *(void **)&coap_get_addr_remote = dlsym(RTLD_DEFAULT, "coap_session_get_addr_remote");
}

static int from_libcoap(const SSL *ssl, char *buf, size_t len)
{
    BIO *b = SSL_get_rbio(ssl);
    const char *method = b != NULL ? BIO_method_name(b) : NULL;
    /* Only libcoap's own BIOs say that the app data is a coap_session_t. */
    if (method == NULL || (strcmp(method, "coapdgram") != 0 && strcmp(method, "coapsock") != 0))
        return 0;
    const void *session = SSL_get_app_data(ssl);
    if (session == NULL)
        return 0;
    pthread_once(&coap_once, find_libcoap);
    const coap_address_view *a = coap_get_addr_remote != NULL ? coap_get_addr_remote(session) : NULL;
    if (a == NULL || a->size < (socklen_t)sizeof(sa_family_t))
        return 0;
    return format_sockaddr(&a->addr.sa, buf, len);
}

const char *pl_peer_address(const SSL *ssl, char *buf, size_t len)
{
    if (ssl == NULL || !(from_dgram_bio(ssl, buf, len) || from_socket(ssl, buf, len) || from_libcoap(ssl, buf, len)))
        snprintf(buf, len, "-");
    return buf;
}
