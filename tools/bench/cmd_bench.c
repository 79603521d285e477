/* SPDX-License-Identifier: Apache-2.0 */
/* m2mtls bench: what a key in a token and the m2mtls verifier cost, each
 * next to its baseline measured in the same run (sign.c,
 * handshake.c, policy.c; output in common.c). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bench.h"
#include "tool.h"

static const char usage[] =
    "usage: m2mtls bench sign      [--threads N] [--seconds S] [--key REF] [--pkcs11-provider PATH] [--json|--csv]\n"
    "       m2mtls bench handshake [--threads N] [--seconds S] [--pkcs11-provider PATH] [--json|--csv]\n"
    "       m2mtls bench policy    [--peers N] [--seconds S] [--count N] [--no-callgrind] [--json|--csv]\n"
    "\n"
    "Measures what keeping the private key in a PKCS#11 token and verifying peers\n"
    "with m2mtls cost, each figure next to its baseline from the same run. Every\n"
    "table names the machine: CPUs, OpenSSL version, token. sign and handshake\n"
    "make a throw-away SoftHSM token (keys generated inside it) and remove it.\n"
    "\n"
    "  sign       signatures/s, ECDSA P-256 and RSA-2048-PSS: m2mtls provider (session\n"
    "             key cache on and off), raw C_Sign on the token object and on a\n"
    "             session copy (the ceiling), pkcs11-provider, libp11's engine, a key file\n"
    "  handshake  mutual-auth handshakes/s, TLS 1.2 / 1.3 / DTLS 1.2: key in the\n"
    "             token (cached, uncached, pkcs11-provider) vs a file, m2mtls\n"
    "             verifier vs plain; resumed ones\n"
    "  policy     policy load time and memory for 10,000 / 100,000 / 1,000,000\n"
    "             peers, verifier cost per handshake at each size\n"
    "\n"
    "  --json | --csv    machine-readable output (one JSON document; CSV tables\n"
    "                    after '# ' comment lines)\n"
    "  m2mtls bench <benchmark> --help   the options of one benchmark\n";

static const char usage_sign[] =
    "usage: m2mtls bench sign [--threads N] [--seconds S] [--key REF] [--module PATH]\n"
    "                         [--provider PATH] [--pkcs11-provider PATH] [--clock wall|cpu]\n"
    "                         [--json|--csv] [--count N]\n"
    "\n"
    "ECDSA P-256 (SHA-256) and RSA-2048-PSS signatures per second at 1 and N\n"
    "threads, all with the same key in the token, through: raw PKCS#11\n"
    "C_SignInit + C_Sign on the token object, and on a session copy of it\n"
    "(C_CopyObject, CKA_TOKEN false: the ceiling); the m2mtls provider\n"
    "(EVP_DigestSign as libssl signs) with its session key cache on, and off;\n"
    "pkcs11-provider with its defaults (when its module is there); libp11's\n"
    "engine (when libengine-pkcs11-openssl is installed); and the default\n"
    "provider with a key file. A table with each row's share of the ceiling,\n"
    "then the ratios the goals are about. The paths alternate in short rounds;\n"
    "figures are median rounds.\n"
    "\n"
    "  --threads N      the second column (default: the number of CPUs)\n"
    "  --seconds S      measuring time per figure (default 2)\n"
    "  --key REF        measure this key (pkcs11: URI or key reference file) through\n"
    "                   the provider loaded by OPENSSL_CONF instead of a throw-away\n"
    "                   token; no ceiling then\n"
    "  --module PATH    PKCS#11 module (default $M2MTLS_PKCS11_MODULE, else SoftHSM)\n"
    "  --provider PATH  m2mtls.so (default $M2MTLS_PROVIDER_MODULE, build tree, installed)\n"
    "  --pkcs11-provider PATH\n"
    "                   pkcs11-provider's pkcs11.so (default: the cache that\n"
    "                   tools/bench/get-pkcs11-provider.sh fills, $M2MTLS_PKCS11_PROVIDER_CACHE\n"
    "                   or /var/cache/m2mtls/pkcs11-provider); its rows say so when absent\n"
    "  --clock wall|cpu wall: signatures per second of elapsed time (default); cpu:\n"
    "                   per second of CPU time of each signing thread (user + system),\n"
    "                   which other load on the machine hardly moves\n"
    "  --count N        no clock: N signatures by each path, one thread, one callgrind\n"
    "                   dump per path (valgrind --tool=callgrind --instr-atstart=no\n"
    "                   m2mtls bench sign --count N): instructions per signature\n";

static const char usage_handshake[] =
    "usage: m2mtls bench handshake [--threads N] [--seconds S] [--module PATH]\n"
    "                              [--provider PATH] [--pkcs11-provider PATH] [--clock wall|cpu]\n"
    "                              [--json|--csv] [--count N]\n"
    "\n"
    "Full mutual-auth handshakes per second, TLS 1.2 (ECDHE-ECDSA-AES128-SHA256),\n"
    "TLS 1.3 and DTLS 1.2 (ECDHE-ECDSA-AES128-CCM8, UDP on 127.0.0.1), at 1 and N\n"
    "threads: server key in a throw-away SoftHSM token (the m2mtls provider with\n"
    "its session key cache on, and off; pkcs11-provider when its module is there)\n"
    "vs in a file, the m2mtls verifier vs plain SSL_VERIFY_PEER (both with\n"
    "SSL_MODE_NO_AUTO_CHAIN); then resumed handshakes, each checked to keep the\n"
    "identity label. Client and server run in this process: figures are whole\n"
    "handshakes.\n"
    "\n"
    "  --threads N      the second column (default: the number of CPUs)\n"
    "  --seconds S      measuring time per figure (default 2)\n"
    "  --module PATH, --provider PATH, --pkcs11-provider PATH, --clock wall|cpu\n"
    "                   as for bench sign\n"
    "  --count N        no clock: N handshakes of each variant (full, resumed), one thread, one\n"
    "                   callgrind dump per variant (valgrind --tool=callgrind\n"
    "                   --instr-atstart=no m2mtls bench handshake --count N)\n";

static const char usage_policy[] =
    "usage: m2mtls bench policy [--peers N] [--seconds S] [--count N] [--no-callgrind]\n"
    "                           [--json|--csv]\n"
    "\n"
    "Policy load time and peak memory for 10,000, 100,000 and 1,000,000 peer\n"
    "lines (or only N), each size loaded in a process of its own; the verifier's\n"
    "cost per full mutual handshake at each size (TLS 1.2 and 1.3): wall clock,\n"
    "plain vs m2mtls in alternating rounds (median), and, when valgrind is\n"
    "installed, instructions per handshake counted by callgrind.\n"
    "\n"
    "  --peers N        one size only\n"
    "  --seconds S      wall-clock time per figure (default 2)\n"
    "  --count N        handshakes per variant under callgrind (default 30)\n"
    "  --no-callgrind   wall clock only\n";

int cmd_bench(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    const char *what = argv[1];
    if (strcmp(what, "--help") == 0 || strcmp(what, "-h") == 0 || strcmp(what, "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    int sign = strcmp(what, "sign") == 0, hs = strcmp(what, "handshake") == 0, pol = strcmp(what, "policy") == 0;
    if (!sign && !hs && !pol) {
        fprintf(stderr, "m2mtls bench: unknown benchmark '%s'\n%s", what, usage);
        return EXIT_USAGE;
    }
    const char *help = sign ? usage_sign : hs ? usage_handshake : usage_policy;
    static const struct option opts[] = {
        { "threads", required_argument, NULL, 't' }, { "seconds", required_argument, NULL, 's' },
        { "key", required_argument, NULL, 'k' },     { "module", required_argument, NULL, 'm' },
        { "provider", required_argument, NULL, 'p' }, { "peers", required_argument, NULL, 'n' },
        { "pkcs11-provider", required_argument, NULL, 'P' }, { "clock", required_argument, NULL, 'T' },
        { "count", required_argument, NULL, 'c' },   { "no-callgrind", no_argument, NULL, 'G' },
        { "json", no_argument, NULL, 'j' },          { "csv", no_argument, NULL, 'v' },
        { "callgrind-child", required_argument, NULL, 'C' },
        { "help", no_argument, NULL, 'h' },          { NULL, 0, NULL, 0 },
    };
    char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    self[sl > 0 ? sl : 0] = '\0';
    bench_args a = { .threads = (int)sysconf(_SC_NPROCESSORS_ONLN), .seconds = 2, .count = pol ? 30 : 0,
                     .callgrind = 1, .self = self };
    int format = BENCH_TEXT, ch;
    const char *child_dir = NULL;
    char *end;
    int ac = argc - 1;
    char **av = argv + 1;
    optind = 1;
    while ((ch = getopt_long(ac, av, "h", opts, NULL)) != -1) {
        /* options of another benchmark are usage errors */
        int bad = ((ch == 't' || ch == 'm' || ch == 'p' || ch == 'P' || ch == 'T') && pol) || (ch == 'k' && !sign)
                  || ((ch == 'n' || ch == 'G' || ch == 'C') && !pol);
        if (bad) {
            const char *name = "?";
            for (int i = 0; opts[i].name != NULL; i++)
                if (opts[i].val == ch)
                    name = opts[i].name;
            fprintf(stderr, "m2mtls bench %s: --%s is not an option of this benchmark\n%s", what, name, help);
            return EXIT_USAGE;
        }
        switch (ch) {
        case 't':
            a.threads = (int)strtol(optarg, &end, 10);
            if (*end != '\0' || a.threads < 1 || a.threads > 256) {
                fprintf(stderr, "m2mtls bench: --threads %s: expected 1 to 256\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 's':
            a.seconds = strtod(optarg, &end);
            if (*end != '\0' || !(a.seconds >= 0.01 && a.seconds <= 3600)) {
                fprintf(stderr, "m2mtls bench: --seconds %s: expected 0.01 to 3600\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'n': {
            unsigned long long v = strtoull(optarg, &end, 10);
            if (*end != '\0' || v < 1 || v > 100000000ULL) {
                fprintf(stderr, "m2mtls bench: --peers %s: expected 1 to 100000000\n", optarg);
                return EXIT_USAGE;
            }
            a.peers = (size_t)v;
            break;
        }
        case 'c':
            a.count = (int)strtol(optarg, &end, 10);
            if (*end != '\0' || a.count < 1 || a.count > 100000) {
                fprintf(stderr, "m2mtls bench: --count %s: expected 1 to 100000\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'k': a.key = optarg; break;
        case 'm': a.module = optarg; break;
        case 'p': a.provider = optarg; break;
        case 'P': a.pkcs11_provider = optarg; break;
        case 'T':
            if (strcmp(optarg, "wall") != 0 && strcmp(optarg, "cpu") != 0) {
                fprintf(stderr, "m2mtls bench: --clock %s: expected wall or cpu\n", optarg);
                return EXIT_USAGE;
            }
            bench_use_cpu_clock(strcmp(optarg, "cpu") == 0);
            a.cpu_clock = strcmp(optarg, "cpu") == 0;
            break;
        case 'G': a.callgrind = 0; break;
        case 'C': child_dir = optarg; break;
        case 'j': format = BENCH_JSON; break;
        case 'v': format = BENCH_CSV; break;
        case 'h': fputs(help, stdout); return 0;
        default: fputs(help, stderr); return EXIT_USAGE;
        }
    }
    if (optind != ac) {
        fprintf(stderr, "m2mtls bench %s: unexpected argument '%s'\n%s", what, av[optind], help);
        return EXIT_USAGE;
    }
    if (child_dir != NULL)
        return bench_policy_callgrind_child(child_dir, a.count);

    bench_machine m;
    bench_table *t[BENCH_MAX_TABLES];
    int n = 0;
    int rc = sign ? bench_sign(&a, &m, t, &n) : hs ? bench_handshakes(&a, &m, t, &n) : bench_policy(&a, &m, t, &n);
    if (rc == 0 && n > 0)
        bench_print(stdout, &m, t, n, format);
    for (int i = 0; i < n; i++)
        bench_table_free(t[i]);
    fflush(stdout);
    return rc;
}
