/* SPDX-License-Identifier: Apache-2.0 */
/* m2mtls: diagnosis and demos for oneM2M certificate-based security associations. */
#include <stdio.h>
#include <string.h>
#include <m2mtls/policy.h>
#include "tool.h"

static const char usage[] =
    "usage: m2mtls <command> [options]\n"
    "\n"
    "oneM2M TS-0003 certificate-based security associations for OpenSSL 3.\n"
    "\n"
    "commands:\n"
    "  demo [--keep DIR]\n"
    "                 TS-0003 end to end: keys in a token, B and A over TLS and DTLS\n"
    "  inspect --policy FILE [--peer ID] [--chain FILE] [--at TIME] [--seclevel N] [--json] CERT\n"
    "                 would the policy accept CERT as a peer certificate, and why\n"
    "  inspect --lint [--chain FILE] [--at TIME] [--json] CERT\n"
    "                 check CERT and its chain against the TS-0003 certificate profile\n"
    "  policy check FILE\n"
    "                 load a policy and report every mistake as FILE:LINE\n"
    "  connect --policy FILE --peer ID [--to HOST:PORT] [--dtls] [--send TEXT] [--resume N]\n"
    "                 act as Entity A: establish the association with peer ID\n"
    "  serve --policy FILE [--listen HOST:PORT] [--dtls] [--once] [--json]\n"
    "                 act as Entity B: accept, verify and log associations; echo data\n"
    "  keyref --list | --uri URI --out FILE | --show FILE | --generate ...\n"
    "                 key references, and the keys and certificates of a token\n"
    "  csr --key KEY (--cse-fqdn NAME | --ae-id //SP/CSE/AE) [--out FILE]\n"
    "                 certificate signing request with the TS-0003 subjectAltName\n"
#ifdef M2MTLS_WITH_BENCH
    "  bench sign|handshake|policy [--threads N] [--seconds S] [--peers N] [--json|--csv]\n"
    "                 what a key in a token and the verifier cost, next to their baselines\n"
#endif
    "\n"
    "  m2mtls <command> --help   details of one command\n"
    "  m2mtls --version          the version, and the OpenSSL versions it was built\n"
    "                            with and runs with\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        /* The OpenSSL of the headers and the one loaded now can differ (a
         * distribution upgrade): both matter when something goes wrong. */
        printf("m2mtls %s\n", M2MTLS_VERSION_STRING);
        printf("built with:   %s\n", OPENSSL_VERSION_TEXT);
        printf("running with: %s\n", OpenSSL_version(OPENSSL_VERSION));
        return 0;
    }
    if (strcmp(cmd, "inspect") == 0)
        return cmd_inspect(argc - 1, argv + 1);
    if (strcmp(cmd, "policy") == 0)
        return cmd_policy(argc - 1, argv + 1);
    if (strcmp(cmd, "connect") == 0)
        return cmd_connect(argc - 1, argv + 1);
    if (strcmp(cmd, "csr") == 0)
        return cmd_csr(argc - 1, argv + 1);
#ifdef M2MTLS_WITH_BENCH
    if (strcmp(cmd, "bench") == 0)
        return cmd_bench(argc - 1, argv + 1);
#endif
    if (strcmp(cmd, "demo") == 0)
        return cmd_demo(argc - 1, argv + 1);
    if (strcmp(cmd, "keyref") == 0)
        return cmd_keyref(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    fprintf(stderr, "m2mtls: unknown command '%s'\n%s", cmd, usage);
    return EXIT_USAGE;
}
