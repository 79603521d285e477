#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The policy owns its verification parameters, also under the preload: an
# unmodified `openssl s_server -no_check_time` still refuses an expired client
# certificate, and `-purpose any` a certificate made for TLS servers only
# (extendedKeyUsage serverAuth) presented by a client; a good client gets
# through both. Without m2mtls, s_server itself accepts both (checked too, so
# the test proves the options really loosen OpenSSL's own verification).
# usage: test_preload_params.sh PATH-TO-m2mtls PATH-TO-m2mtls.so PATH-TO-libm2mtls-preload.so
. "$(dirname "$0")/../servers/lib.sh"
. "$(dirname "$0")/../dated_cert.sh"
srv_init test_preload_params "$1" "$2"
PRELOAD=${3:?usage: test_preload_params.sh m2mtls m2mtls.so libm2mtls-preload.so}
case $PRELOAD in /*) ;; *) PRELOAD=$PWD/$PRELOAD ;; esac
[ -f "$PRELOAD" ] || srv_die "$PRELOAD does not exist"

# ---- PKI: the server under a CSE root; AEs under an AE root -----------------------
srv_root cse-root "/O=m2mtls tests/CN=CSE Root"
srv_root ae-root "/O=m2mtls tests/CN=AE Root"
srv_leaf server cse-root "DNS:in-cse.sp.example.com" in-cse
srv_leaf good ae-root "URI://sp.example.com/in-cse/Cgood" Cgood
# ae_leaf NAME FROM TO EXTRA-EXTENSION: an AE certificate of ae-root, valid
# from FROM to TO days from now (-2 -1: it expired yesterday)
ae_leaf() {
    srv_openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$T/$1.key" -out "$T/$1.csr" -subj "/O=m2mtls tests/CN=C$1"
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectAltName=URI://sp.example.com/in-cse/C%s\n%s\n' \
        "$1" "$4" >"$T/$1.ext"
    dated_cert srv_openssl "$T/$1.csr" "$T/ae-root.pem" "$T/ae-root.key" "$T/$1.ext" "$$" "$2" "$3" "$T/$1.pem"
}
ae_leaf expired -2 -1 ""
ae_leaf srvonly -1 10 "extendedKeyUsage=serverAuth"
printf 'local-id /in-cse\nanchor ae-root %s/ae-root.pem\npeers-from-cert ae-root uri-prefix://sp.example.com/in-cse/\n' \
    "$T" >"$T/server.policy"

# client NAME RUN-NAME: openssl s_client presenting NAME's certificate to $port
client() {
    srv_run "$2" 10 openssl s_client -connect "127.0.0.1:$port" -cert "$T/$1.pem" -key "$T/$1.key" \
        -CAfile "$T/cse-root.pem"
}
# s_server_opts NAME preload|plain OPTION...: an unmodified openssl s_server on a
# free port asking for client certificates, with OPTIONs, under the preload or not
s_server_opts() {
    _n=$1 _mode=$2; shift 2
    set -- openssl s_server -accept 127.0.0.1:@PORT@ -www -cert "$T/server.pem" -key "$T/server.key" \
        -CAfile "$T/ae-root.pem" -verify 1 -verify_return_error "$@"
    [ "$_mode" = preload ] && set -- env LD_PRELOAD="$PRELOAD" M2MTLS_POLICY="$T/server.policy" "$@"
    srv_start_port "$_n" tcp : "$@" || srv_die "$_n: s_server did not start"
}

# ---- without m2mtls, the options really loosen s_server's verification ------------
s_server_opts plain-time plain -no_check_time
client expired plain-time-expired
# (s_server's own verify callback prints the subject: "CN = Cexpired", "CN=Cexpired" on 3.2+)
srv_log_has plain-time "plain s_server -no_check_time accepts the expired certificate" "Cexpired"
grep -q "verify error" "$T/plain-time.log" && srv_fail "plain s_server -no_check_time: a verify error was logged" \
    || srv_ok "plain s_server -no_check_time: no verify error"
srv_stop plain-time
s_server_opts plain-purpose plain -purpose any
client srvonly plain-purpose-srvonly
srv_log_has plain-purpose "plain s_server -purpose any accepts the serverAuth-only client" "Csrvonly"
grep -q "verify error" "$T/plain-purpose.log" && srv_fail "plain s_server -purpose any: a verify error was logged" \
    || srv_ok "plain s_server -purpose any: no verify error"
srv_stop plain-purpose

# ---- with the preload: the policy's time and purpose --------------------------------
s_server_opts time preload -no_check_time
client expired time-expired
srv_log_has time "-no_check_time: the expired client is refused" \
    'm2mtls: refused client=127.0.0.1:'
srv_log_has time "-no_check_time: the refusal says why" "anchor 'ae-root': certificate has expired (depth 0"
client good time-good
srv_log_has time "-no_check_time: a valid client is accepted" "m2mtls: accepted client=127.0.0.1:"
grep -F "m2mtls: accepted" "$T/time.log" | grep -q Cexpired \
    && srv_fail "-no_check_time: the expired client was accepted" || srv_ok "-no_check_time: Cexpired never accepted"
srv_stop time

s_server_opts purpose preload -purpose any
client srvonly purpose-srvonly
srv_log_has purpose "-purpose any: the serverAuth-only client is refused" \
    "anchor 'ae-root': unsuitable certificate purpose (depth 0"
client good purpose-good
srv_log_has purpose "-purpose any: a valid client is accepted" "peer=//sp.example.com/in-cse/Cgood"
grep -F "m2mtls: accepted" "$T/purpose.log" | grep -q Csrvonly \
    && srv_fail "-purpose any: the serverAuth-only client was accepted" || srv_ok "-purpose any: Csrvonly never accepted"
srv_stop purpose

srv_finish
