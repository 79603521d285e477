/* SPDX-License-Identifier: Apache-2.0 */
#include "plain_listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int plain_listen(const char *prog)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 8) != 0
        || getsockname(lfd, (struct sockaddr *)&a, &al) != 0) {
        fprintf(stderr, "%s: ", prog);
        perror("listen");
        if (lfd >= 0)
            close(lfd);
        return -1;
    }
    printf("listening %u\n", ntohs(a.sin_port));
    fflush(stdout);
    return lfd;
}

_Noreturn void plain_serve_forever(int lfd, void (*serve)(int fd, void *arg), void *arg)
{
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        /* a client that stalls must not hold the one-at-a-time server */
        struct timeval tv = { 5, 0 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        serve(fd, arg);
        close(fd);
    }
}
