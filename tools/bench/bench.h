/* SPDX-License-Identifier: Apache-2.0 */
/* m2mtls bench: shared pieces. Clocks and thread runners, the machine
 * description, a table printer (aligned text, JSON, CSV), the throw-away
 * SoftHSM token with the provider loaded in-process, certificates, and the
 * in-process handshake driver (BIO pairs for TLS, UDP on 127.0.0.1 for DTLS). */
#ifndef M2MTLS_TOOL_BENCH_H
#define M2MTLS_TOOL_BENCH_H
#include <stddef.h>
#include <openssl/ssl.h>
#include <m2mtls/policy.h>
#include "p11.h"
/* Callgrind's client requests (valgrind's headers), for fixed-count runs. */
#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define HAVE_CALLGRIND 1
#endif
#endif
#ifndef HAVE_CALLGRIND
#define HAVE_CALLGRIND 0
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_DUMP_STATS_AT(s) (void)(s)
#endif

/* ---- output ------------------------------------------------------------------ */

enum { BENCH_TEXT = 0, BENCH_JSON, BENCH_CSV };

typedef struct bench_machine {
    long cpus;
    char cpu[128];       /* /proc/cpuinfo model name */
    char openssl[128];
    char token[4400];    /* "SoftHSM 2.6 (...) /usr/lib/softhsm/libsofthsm2.so", or "none" */
} bench_machine;

#define BENCH_COLS 12
typedef struct bench_cell {
    char text[96];
    int is_num;
    double num;
} bench_cell;

typedef struct bench_table {
    char title[256];
    char note[1024];     /* printed under the table (text), "note" in JSON */
    int ncols;
    const char *key[BENCH_COLS];   /* JSON / CSV names */
    char head[BENCH_COLS][48];     /* text headers */
    int nrows, cap;
    bench_cell *cells;             /* nrows * BENCH_COLS */
} bench_table;

void bench_machine_init(bench_machine *m, const char *token);
bench_table *bench_table_new(const char *title);
void bench_table_free(bench_table *t);
/* Column: KEY for JSON/CSV, HEAD for the text table (printf format, e.g. "%d threads/s"). */
void bench_col(bench_table *t, const char *key, const char *head, ...) __attribute__((format(printf, 3, 4)));
int  bench_row(bench_table *t);
void bench_str(bench_table *t, int row, int col, const char *s);
void bench_num(bench_table *t, int row, int col, double v, const char *fmt);
/* Prints every table, each preceded by the machine (one JSON document for all). */
void bench_print(FILE *f, const bench_machine *m, bench_table **t, int n, int format);

/* ---- measuring ---------------------------------------------------------------- */

double bench_now(void);
double bench_median(double *v, int n); /* sorts v */

/* One kind of work, done by THREADS threads at once: START makes a thread's
 * state (NULL on failure, reason in ERR), STEP does one unit (0 on failure),
 * STOP frees the state. */
typedef struct bench_op {
    void *(*start)(void *arg, char *err, size_t len);
    int (*step)(void *state, char *err, size_t len);
    void (*stop)(void *state);
    void *arg;
} bench_op;
/* Units per second over about SECONDS, all threads together; -1 on failure
 * (ERR). With the CPU clock (bench_use_cpu_clock(1), --clock cpu): per second
 * of CPU time (user + system) of each thread, so that the load of other
 * processes hardly moves the figures; waiting (locks) is then not counted. */
void bench_use_cpu_clock(int on);
double bench_rate(const bench_op *op, int threads, double seconds, char *err, size_t len);
/* The variants alternate in short rounds (ROUNDS of them, SECONDS in all per
 * variant): out[v] is variant v's median round. 0 on failure. */
int bench_compare(const bench_op *ops, int nops, int threads, double seconds, double *out, char *err, size_t len);

/* ---- the throw-away token ------------------------------------------------------- */

typedef struct bench_env {
    char dir[4096];
    char module[4096];
    char provider[4096];
    char token_desc[4400];
    char ec_file[4200], rsa_file[4200];  /* software keys (PEM) for the default-provider rows */
    CK_SLOT_ID slot;
    int made;                            /* dir to remove */
    /* Library contexts of their own (never freed: their providers share the
     * module with the rest of the process until it exits): */
    OSSL_LIB_CTX *nocache;               /* default + m2mtls, pkcs11-module-cache-keys = false */
    OSSL_LIB_CTX *p11prov;               /* default + pkcs11-provider; NULL when absent */
    char p11prov_desc[256];              /* "pkcs11-provider 1.0-3 (trixie, amd64)" */
    char p11prov_why[600];               /* why there is no p11prov */
} bench_env;

/* pkcs11-provider's module: GIVEN (--pkcs11-provider), else the cache that
 * tools/bench/get-pkcs11-provider.sh fills ($M2MTLS_PKCS11_PROVIDER_CACHE,
 * else /var/cache/m2mtls/pkcs11-provider)/pkcs11.so. */
const char *bench_pkcs11_provider(const char *given, char *buf, size_t len);
/* A private key by pkcs11: URI (or file) through CTX's providers; NULL with WHY. */
EVP_PKEY *bench_load_key(OSSL_LIB_CTX *ctx, const char *uri, char *why, size_t len);

#define BENCH_TOKEN "m2mtls-bench"
#define BENCH_PIN   "bench-user-pin"
#define BENCH_EC_URI  "pkcs11:token=" BENCH_TOKEN ";object=ec;type=private"
#define BENCH_RSA_URI "pkcs11:token=" BENCH_TOKEN ";object=rsa;type=private"

/* Temp dir, SoftHSM token with an EC P-256 ("ec") and an RSA-2048 ("rsa") key
 * generated inside it, software key files, openssl.cnf loading the m2mtls
 * provider into the default library context (session key cache on), the
 * nocache context and, when PKCS11_PROVIDER (a path, or NULL for the
 * default cache) is there, the p11prov context. 0 with a message on stderr. */
int  bench_env_setup(bench_env *e, const char *module, const char *provider, const char *pkcs11_provider);
void bench_env_cleanup(bench_env *e);
/* DIR/NAME into buf. */
const char *bench_path(const char *dir, const char *name, char *buf, size_t len);
int bench_rmtree(const char *dir);

/* ---- handshakes (certificates: tool_issue, pki.h) ------------------------------------ */

enum { BENCH_TLS12 = 0, BENCH_TLS13, BENCH_DTLS12, BENCH_PROTOS };
extern const char *const bench_proto_name[BENCH_PROTOS];
/* A context for PROTO (BENCH_TLS12 ...) with the TS-0003 profile, CERT and
 * KEY (in LIBCTX, the key's: NULL = default), SSL_MODE_NO_AUTO_CHAIN; verifying with POLICY (m2mtls_ctx_install)
 * or, when NULL, plain SSL_VERIFY_PEER against ROOT. RESUME: session
 * tickets (one per handshake), else no session cache and no tickets.
 * NULL with a message on stderr. */
SSL_CTX *bench_ssl_ctx(OSSL_LIB_CTX *libctx, int proto, int server, X509 *cert, EVP_PKEY *key, X509 *root,
                       m2mtls_policy *policy, int resume);

/* Per-thread transport: for DTLS two connected non-blocking UDP sockets on
 * 127.0.0.1; TLS uses a BIO pair per handshake. */
typedef struct bench_link {
    int dtls;
    int fd[2];
    BIO_ADDR *addr[2];   /* addr[i]: where fd[i] is bound */
} bench_link;
int  bench_link_open(bench_link *l, int dtls, char *err, size_t len);
void bench_link_close(bench_link *l);

/* One handshake between SCTX and CCTX. PEER (m2mtls variants): the client
 * asks for that association and both labels must be set afterwards. With
 * *SESS: resumed with it, and it must resume (with labels); without, it must
 * be a full one; when SESS is not NULL and *SESS is, the session is kept
 * there (TLS 1.3: the ticket is read). 1 ok, 0 with the reason in ERR. */
int bench_handshake(SSL_CTX *sctx, SSL_CTX *cctx, bench_link *l, const char *peer, SSL_SESSION **sess, char *err,
                    size_t len);

/* ---- the three benchmarks (sign.c, handshake.c, policy.c) ---- */

typedef struct bench_args {
    int threads;            /* N (the other column is 1 thread) */
    double seconds;         /* per figure */
    const char *key;        /* bench sign --key REF */
    const char *module, *provider;
    const char *pkcs11_provider;  /* --pkcs11-provider PATH (NULL: the default cache) */
    int cpu_clock;          /* --clock cpu: per second of CPU time (bench_use_cpu_clock) */
    size_t peers;           /* bench policy --peers N (0: 10k, 100k, 1M) */
    int count;              /* bench policy: handshakes per variant under callgrind;
                               bench sign: fixed-count mode (0: measure time) */
    int callgrind;          /* bench policy: 1 use valgrind when found, 0 never */
    const char *self;       /* this executable (bench policy runs itself under valgrind) */
} bench_args;

#define BENCH_MAX_TABLES 8
/* Each fills M and up to BENCH_MAX_TABLES tables (*N of them); returns an exit
 * status (0 ok), with the reason on stderr. */
int bench_sign(const bench_args *a, bench_machine *m, bench_table **t, int *n);
int bench_handshakes(const bench_args *a, bench_machine *m, bench_table **t, int *n);
int bench_policy(const bench_args *a, bench_machine *m, bench_table **t, int *n);
/* The fixed-count child bench_policy runs under callgrind (hidden option). */
int bench_policy_callgrind_child(const char *dir, int count);
#endif
