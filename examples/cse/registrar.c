/* SPDX-License-Identifier: Apache-2.0 */
/* A registrar CSE over CoAP/DTLS (libcoap 4.3, OpenSSL flavour) that applies
 * TS-0003 7.2.1: a request whose From is not the identity bound to the
 * security association is answered ORIGINATOR_NOT_AUTHENTICATED (4106).
 *
 * It is the template for adding TS-0003 to an existing CSE. The security
 * association itself is made by libm2mtls-preload.so, which the CSE runs
 * under (M2MTLS_POLICY decides who may connect and labels each DTLS session
 * with the peer's AE-ID / CSE-ID); the CSE's private key stays in a token
 * (OPENSSL_CONF loads the m2mtls provider; -k is a key reference PEM). The
 * only m2mtls code here is check_originator() below: a few lines where the
 * request dispatch reaches the connection's SSL *.
 *
 *   m2mtls-example-cse -c CERT -k KEY [-C CA] [-A ADDRESS] [-p PORT] [-b CSE-BASE]
 *
 * It serves CREATE of an AE (POST to coaps://ADDRESS:PORT/CSE-BASE) given in
 * either of two forms:
 *   - oneM2M's CoAP binding (TS-0008): the parameters in the oneM2M options
 *     (oneM2M-FR 279, oneM2M-RQI 283; oneM2M-TY 267, oneM2M-RVI 271), the AE
 *     ({"m2m:ae": ...}) in the body. The response has the oneM2M-RSC option
 *     (307) and oneM2M-RQI. These options are critical (odd numbers): a CoAP
 *     endpoint that does not know them refuses the message. libcoap 4.3 can
 *     be told at most two option numbers above 255 (COAP_OPT_FILTER_LONG):
 *     this CSE registers FR and RQI, and libcoap itself answers 4.02 Bad
 *     Option to a request that also carries TY or RVI as options.
 *   - a JSON request primitive in the body with "fr", "rqi", "rvi", "ty" (and
 *     "pc"), answered with a JSON response primitive ("rsc", "rqi", "rvi",
 *     "pc") and no oneM2M option: this form passes any CoAP client.
 * It answers 2001 (CoAP 2.01) with the AE, 4106 ORIGINATOR_NOT_AUTHENTICATED
 * (CoAP 4.03) when From is not the bound identity, 4000 (CoAP 4.00) for a
 * malformed request; the body says why. It keeps no resource tree: that part
 * is the CSE's own. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <coap3/coap.h>
#include <openssl/ssl.h>
#include <m2mtls/policy.h>

#define OPT_TY 267   /* oneM2M-TY, uint */
#define OPT_RVI 271  /* oneM2M-RVI */
#define OPT_FR 279   /* oneM2M-FR: From */
#define OPT_RQI 283  /* oneM2M-RQI */
#define OPT_RSC 307  /* oneM2M-RSC, uint: the response status code */
#define CF_RES_JSON 10001  /* application/vnd.onem2m-res+json */
#define CF_PRSP_JSON 10009 /* application/vnd.onem2m-prsp+json */

/* libcoap 4.3.2 renamed its log levels */
#if LIBCOAP_VERSION >= 4003002U
#define CSE_LOG_LEVEL COAP_LOG_WARN
#else
#define CSE_LOG_LEVEL LOG_WARNING
#endif

#define RSC_CREATED 2001
#define RSC_BAD_REQUEST 4000
#define RSC_ORIGINATOR_NOT_AUTHENTICATED 4106

/* ---- TS-0003 7.2.1: the part a CSE author adds -------------------------------------- */

/* 1 when FROM names the identity bound to the DTLS session the request came
 * on; otherwise 0 and WHY says what to answer with 4106. */
static int check_originator(coap_session_t *session, const char *from, char *why, size_t len)
{
    coap_tls_library_t lib;
    SSL *ssl = coap_session_get_tls(session, &lib);
    const char *bound = lib == COAP_TLS_LIBRARY_OPENSSL && ssl != NULL ? m2mtls_ssl_peer_id(ssl) : NULL;
    if (bound == NULL) {
        snprintf(why, len, "no security association: the session carries no TS-0003 identity");
        return 0;
    }
    if (!m2mtls_ssl_check_originator(ssl, from)) {
        snprintf(why, len, "From %s is not %s, the identity bound to the security association", from, bound);
        return 0;
    }
    return 1;
}

/* ---- the request: options or a JSON request primitive ------------------------------- */

typedef struct request {
    char fr[256], rqi[128], rvi[16];
    unsigned ty;
    int primitive; /* the parameters came in a JSON body */
} request;

/* Text that can be echoed inside JSON without escaping. */
static int plain(const char *s)
{
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e || *s == '"' || *s == '\\')
            return 0;
    return 1;
}

/* A CoAP option's value as text; 0 when absent, too long or binary. */
static int option_text(const coap_pdu_t *pdu, uint16_t number, char *out, size_t len)
{
    coap_opt_iterator_t it;
    coap_opt_t *o = coap_check_option(pdu, number, &it);
    if (o == NULL || coap_opt_length(o) >= len)
        return 0;
    memcpy(out, coap_opt_value(o), coap_opt_length(o));
    out[coap_opt_length(o)] = '\0';
    return strlen(out) == coap_opt_length(o); /* no NUL inside */
}

static size_t skip_ws(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
        i++;
    return i;
}

static size_t skip_string(const char *s, size_t n, size_t i) /* s[i] == '"' */
{
    for (i++; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return n;
}

/* Where the value of the top-level member KEY of the JSON object S starts;
 * N when there is none. (A CSE has its own JSON parser; these few lines are
 * enough for the template.) */
static size_t json_find(const char *s, size_t n, const char *key)
{
    size_t klen = strlen(key);
    int depth = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] != '"') {
            depth += (s[i] == '{' || s[i] == '[') - (s[i] == '}' || s[i] == ']');
            i++;
            continue;
        }
        size_t end = skip_string(s, n, i), v = skip_ws(s, n, end);
        if (depth == 1 && v < n && s[v] == ':' && end - i == klen + 2 && memcmp(s + i + 1, key, klen) == 0)
            return skip_ws(s, n, v + 1);
        i = end;
    }
    return n;
}

/* The string (without escapes: they are refused) or number value of the
 * top-level member KEY. 0 when absent, too long or of another form. */
static int json_member(const char *s, size_t n, const char *key, char *out, size_t len)
{
    size_t v = json_find(s, n, key), a = v, b = v;
    if (v < n && s[v] == '"') {
        a = v + 1;
        b = skip_string(s, n, v) - 1;
        if (b >= n || memchr(s + a, '\\', b - a) != NULL)
            return 0;
    } else {
        while (b < n && s[b] >= '0' && s[b] <= '9')
            b++;
    }
    if (b <= a || b - a >= len)
        return 0;
    memcpy(out, s + a, b - a);
    out[b - a] = '\0';
    return 1;
}

/* Fills R from the oneM2M options, else from a JSON request primitive. */
static const char *read_request(const coap_pdu_t *pdu, request *r)
{
    memset(r, 0, sizeof *r);
    coap_opt_iterator_t it;
    coap_opt_t *ty = coap_check_option(pdu, OPT_TY, &it);
    if (ty != NULL)
        r->ty = coap_decode_var_bytes(coap_opt_value(ty), coap_opt_length(ty));
    int has_fr = option_text(pdu, OPT_FR, r->fr, sizeof r->fr);
    option_text(pdu, OPT_RQI, r->rqi, sizeof r->rqi);
    option_text(pdu, OPT_RVI, r->rvi, sizeof r->rvi);
    size_t n = 0;
    const uint8_t *body = NULL;
    coap_get_data(pdu, &n, &body);
    const char *js = (const char *)body;
    if (has_fr && ty == NULL && json_find(js, n, "m2m:ae") < n)
        r->ty = 2; /* the options' form: the body is the resource */
    if (!has_fr && n > 0) {
        char ty_text[8] = "";
        r->primitive = 1;
        has_fr = json_member(js, n, "fr", r->fr, sizeof r->fr);
        json_member(js, n, "rqi", r->rqi, sizeof r->rqi);
        json_member(js, n, "rvi", r->rvi, sizeof r->rvi);
        if (json_member(js, n, "ty", ty_text, sizeof ty_text))
            r->ty = (unsigned)strtoul(ty_text, NULL, 10);
    }
    if (!has_fr || r->fr[0] == '\0')
        return "no From (oneM2M-FR option, or \"fr\" in a JSON request primitive)";
    if (!plain(r->fr) || !plain(r->rqi) || !plain(r->rvi))
        return "From, Request Identifier or Release Version Indicator has characters this CSE does not take";
    if (r->ty != 2)
        return "only an AE (ty 2) can be created here";
    return NULL;
}

/* ---- the response --------------------------------------------------------------------- */

static void respond(coap_pdu_t *resp, const request *r, unsigned rsc, const char *content)
{
    uint8_t buf[4];
    char body[1024];
    coap_pdu_set_code(resp, rsc == RSC_CREATED ? COAP_RESPONSE_CODE_CREATED
                            : rsc == RSC_ORIGINATOR_NOT_AUTHENTICATED ? COAP_RESPONSE_CODE_FORBIDDEN
                                                                      : COAP_RESPONSE_CODE_BAD_REQUEST);
    if (r->primitive) { /* the response primitive carries the parameters */
        coap_add_option(resp, COAP_OPTION_CONTENT_FORMAT, coap_encode_var_safe(buf, sizeof buf, CF_PRSP_JSON), buf);
        snprintf(body, sizeof body, "{\"rsc\":%u,\"rqi\":\"%s\",\"rvi\":\"%s\",\"pc\":%s}", rsc, r->rqi, r->rvi, content);
    } else { /* TS-0008: the parameters in oneM2M options (in number order) */
        coap_add_option(resp, COAP_OPTION_CONTENT_FORMAT, coap_encode_var_safe(buf, sizeof buf, CF_RES_JSON), buf);
        if (r->rqi[0] != '\0')
            coap_add_option(resp, OPT_RQI, strlen(r->rqi), (const uint8_t *)r->rqi);
        coap_add_option(resp, OPT_RSC, coap_encode_var_safe(buf, sizeof buf, rsc), buf);
        snprintf(body, sizeof body, "%s", content);
    }
    coap_add_data(resp, strlen(body), (const uint8_t *)body);
}

static void create_ae(coap_resource_t *res, coap_session_t *session, const coap_pdu_t *req,
                      const coap_string_t *query, coap_pdu_t *resp)
{
    request r;
    char why[512], content[768];
    const char *bad = read_request(req, &r);
    if (bad != NULL) {
        snprintf(content, sizeof content, "{\"m2m:dbg\":\"%s\"}", bad);
        respond(resp, &r, RSC_BAD_REQUEST, content);
    } else if (!check_originator(session, r.fr, why, sizeof why)) {
        snprintf(content, sizeof content, "{\"m2m:dbg\":\"ORIGINATOR_NOT_AUTHENTICATED: %s\"}", why);
        respond(resp, &r, RSC_ORIGINATOR_NOT_AUTHENTICATED, content);
    } else {
        snprintf(content, sizeof content, "{\"m2m:ae\":{\"aei\":\"%s\",\"rr\":false}}", r.fr);
        respond(resp, &r, RSC_CREATED, content);
    }
    printf("CREATE ae From=%s -> %s\n", r.fr[0] ? r.fr : "-", content);
    fflush(stdout);
}

/* ---- the server ----------------------------------------------------------------------- */

static volatile sig_atomic_t quit;

static void on_signal(int sig)
{
    quit = 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: m2mtls-example-cse -c CERT -k KEY [-C CA] [-A ADDRESS] [-p PORT] [-b CSE-BASE]\n"
                    "  run it under libm2mtls-preload.so with M2MTLS_POLICY (see examples/cse/README.md)\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *cert = NULL, *key = NULL, *ca = NULL, *host = "127.0.0.1", *base = "in-cse";
    unsigned port = 5684;
    for (int c; (c = getopt(argc, argv, "c:k:C:A:p:b:")) != -1;) {
        switch (c) {
        case 'c': cert = optarg; break;
        case 'k': key = optarg; break;
        case 'C': ca = optarg; break;
        case 'A': host = optarg; break;
        case 'p': port = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'b': base = optarg; break;
        default: return usage();
        }
    }
    if (cert == NULL || key == NULL || optind != argc || port == 0 || port > 65535)
        return usage();
    coap_startup();
    coap_set_log_level(CSE_LOG_LEVEL);
    coap_context_t *ctx = coap_new_context(NULL);
    /* libcoap asks for a client certificate and runs its checks; under the
     * preload, the policy verifies it (libcoap's checks can only refuse more). */
    coap_dtls_pki_t pki = {
        .version = COAP_DTLS_PKI_SETUP_VERSION,
        .verify_peer_cert = 1,
        .check_common_ca = ca != NULL,
        .cert_chain_validation = 1,
        .cert_chain_verify_depth = 3,
        .pki_key = { .key_type = COAP_PKI_KEY_PEM, .key.pem = { .ca_file = ca, .public_cert = cert, .private_key = key } },
    };
    coap_address_t addr;
    coap_address_init(&addr);
    addr.addr.sin.sin_family = AF_INET;
    addr.addr.sin.sin_port = htons((uint16_t)port);
    addr.size = sizeof addr.addr.sin;
    if (ctx == NULL || inet_pton(AF_INET, host, &addr.addr.sin.sin_addr) != 1 || !coap_context_set_pki(ctx, &pki)
        || coap_new_endpoint(ctx, &addr, COAP_PROTO_DTLS) == NULL) {
        fprintf(stderr, "m2mtls-example-cse: cannot serve CoAP over DTLS on %s:%u with %s and %s\n", host, port, cert, key);
        return 1;
    }
    /* The oneM2M options are critical: libcoap refuses a request with one it
     * was not told about. libcoap 4.3 takes two numbers above 255: From and
     * the Request Identifier; TY and RVI only with a libcoap that takes more. */
    coap_register_option(ctx, OPT_FR);
    coap_register_option(ctx, OPT_RQI);
    coap_register_option(ctx, OPT_TY);
    coap_register_option(ctx, OPT_RVI);
    coap_resource_t *cse = coap_resource_init(coap_new_str_const((const uint8_t *)base, strlen(base)),
                                              COAP_RESOURCE_FLAGS_RELEASE_URI);
    coap_register_handler(cse, COAP_REQUEST_POST, create_ae);
    coap_add_resource(ctx, cse);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    printf("registrar CSE listening on coaps://%s:%u/%s\n", host, port, base);
    fflush(stdout);
    while (!quit)
        coap_io_process(ctx, 500);
    coap_free_context(ctx);
    coap_cleanup();
    return 0;
}
