/* SPDX-License-Identifier: Apache-2.0 */
#include "faults_util.h"
#include "prov_fixture.h"

#include <arpa/inet.h>
#include <limits.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <m2mtls/policy.h>

static void timeouts(int fd)
{
    struct timeval tv = { 10, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static void queue_to(char *buf, size_t n)
{
    unsigned long e;
    const char *data, *file, *func;
    int flags, line;
    size_t len = 0;

    buf[0] = '\0';
    while ((e = ERR_get_error_all(&file, &line, &func, &data, &flags)) != 0) {
        char eb[256];
        ERR_error_string_n(e, eb, sizeof(eb));
        if (len < n)
            len += (size_t)snprintf(buf + len, n - len, "%s%s%s%s", len ? " | " : "", eb,
                                    (flags & ERR_TXT_STRING) ? ": " : "", (flags & ERR_TXT_STRING) ? data : "");
    }
}

static void *server_main(void *arg)
{
    ft_server *s = arg;

    for (;;) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) {
            if (atomic_load(&s->stop))
                break;
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break;
        }
        timeouts(fd);
        memset(&s->last, 0, sizeof(s->last));
        SSL *ssl = SSL_new(s->ctx);
        SSL_set_fd(ssl, fd);
        ERR_clear_error();
        if (SSL_accept(ssl) == 1) {
            char b;
            const char *p = m2mtls_ssl_peer_id(ssl);
            if (p != NULL)
                snprintf(s->last.peer, sizeof(s->last.peer), "%s", p);
            if (SSL_read(ssl, &b, 1) == 1 && SSL_write(ssl, &b, 1) == 1)
                s->last.ok = p != NULL;
            SSL_shutdown(ssl);
        } else {
            queue_to(s->last.errors, sizeof(s->last.errors));
        }
        ERR_clear_error();
        SSL_free(ssl);
        close(fd);
        sem_post(&s->done);
    }
    return NULL;
}

int ft_server_start(ft_server *s, SSL_CTX *ctx)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);

    memset(s, 0, sizeof(*s));
    s->ctx = ctx;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((s->lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0 || bind(s->lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0
        || listen(s->lfd, 16) != 0 || getsockname(s->lfd, (struct sockaddr *)&sin, &sl) != 0)
        return 0;
    s->port = ntohs(sin.sin_port);
    sem_init(&s->done, 0, 0);
    return pthread_create(&s->th, NULL, server_main, s) == 0;
}

void ft_server_stop(ft_server *s)
{
    atomic_store(&s->stop, 1);
    shutdown(s->lfd, SHUT_RDWR);
    pthread_join(s->th, NULL);
    close(s->lfd);
    sem_destroy(&s->done);
}

int ft_connect(ft_server *s, SSL_CTX *cli, const char *peer, ft_result *srv)
{
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok = 0;
    SSL *ssl = NULL;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((unsigned short)s->port);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    timeouts(fd);
    ssl = SSL_new(cli);
    SSL_set_fd(ssl, fd);
    m2mtls_ssl_set_peer(ssl, peer);
    if (SSL_connect(ssl) == 1) {
        char c = 'x';
        ok = SSL_write(ssl, &c, 1) == 1 && SSL_read(ssl, &c, 1) == 1 && m2mtls_ssl_peer_id(ssl) != NULL
             && strcmp(m2mtls_ssl_peer_id(ssl), peer) == 0;
        SSL_shutdown(ssl);
    }
    ERR_clear_error();
    shutdown(fd, SHUT_RDWR);
    SSL_free(ssl);
    close(fd);
    {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 20;
        if (sem_timedwait(&s->done, &ts) != 0)
            return 0;
    }
    if (srv != NULL)
        *srv = s->last;
    return ok;
}

int ft_write_file(const char *path, const char *text)
{
    char tmp[4200];
    FILE *fp;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if ((fp = fopen(tmp, "w")) == NULL)
        return 0;
    fputs(text, fp);
    if (fclose(fp) != 0)
        return 0;
    return rename(tmp, path) == 0;  /* a new inode: the module sees a new file */
}

int ft_faults(const char *path, const char *text)
{
    return ft_write_file(path, text);
}

int ft_count(const char *path, const char *fn, unsigned long *calls, unsigned long *injected)
{
    FILE *fp = fopen(path, "r");
    char name[64];
    unsigned long c, i;

    *calls = *injected = 0;
    if (fp == NULL)
        return 0;
    while (fscanf(fp, "%63s %lu %lu", name, &c, &i) == 3) {
        if (strcmp(name, fn) == 0) {
            *calls = c;
            *injected = i;
        }
    }
    fclose(fp);
    return 1;
}


int ft_use_fault_module(const char *dir, const char *pinfile, const char *module_path, char *faults,
                        char *counts, char *conf)
{
    char pin[PATH_MAX + 16];
    size_t n = PATH_MAX + 16;

    snprintf(faults, n, "%s/faults", dir);
    snprintf(counts, n, "%s/counts", dir);
    snprintf(conf, n, "%s/faults.cnf", dir);
    snprintf(pin, sizeof(pin), "file:%s", pinfile);
    setenv("M2MTLS_FAULTS", faults, 1);
    setenv("M2MTLS_FAULTS_COUNTS", counts, 1);
    setenv("M2MTLS_FAULTS_MODULE", M2P_SOFTHSM, 1);
    return ft_faults(faults, "") && fx_write_conf(conf, FX_ORDER_LAST, pin, module_path);
}
