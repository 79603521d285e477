/* SPDX-License-Identifier: Apache-2.0 */
/* m2mtls policy check FILE: load a policy, list every mistake. */
#include <string.h>
#include <time.h>
#include <m2mtls/policy.h>
#include "internal.h"
#include "tool.h"

static const char usage[] =
    "usage: m2mtls policy check FILE\n"
    "\n"
    "Loads FILE as m2mtls would and reports every mistake as FILE:LINE: what is wrong.\n"
    "Exit status: 0 the policy loads, 2 it does not (or usage error).\n";

int cmd_policy(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        fputs(usage, stdout);
        return EXIT_ACCEPTED;
    }
    if (argc != 3 || strcmp(argv[1], "check") != 0) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    m2mtls_policy *p = m2mtls_policy_load(argv[2]);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (p == NULL) {
        fprintf(stderr, "%s\n", m2mtls_last_error());
        return EXIT_USAGE;
    }
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    printf("ok: %s: %zu peers (%u by key), %u anchors, %u peers-from-cert rules, %d CRLs, local-id %s, "
           "credential %s (loaded in %.1f ms)\n",
           argv[2], m2mtls_policy_peer_count(p), p->n_key_peers, p->n_anchors, p->n_pfcs, sk_X509_CRL_num(p->crls),
           p->local_id ? p->local_id : "(none)", p->cert && p->key_ref ? "cert+key" : "none", ms);
    m2mtls_policy_free(p);
    return EXIT_ACCEPTED;
}
