#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Real clients against our responder: `m2mtls serve` (Entity B, its key in a
# SoftHSM token through the provider) with a policy that knows one AE,
# //sp.example.com/in-cse/Cae1 (uri: name, anchor sp-root).
#   - `openssl s_client -cert -key -CAfile` over TLS 1.2 and TLS 1.3: the AE is
#     accepted (serve logs "accepted peer=<AE-ID>", echoes its data; s_client
#     verifies serve's certificate and name); an AE of the same root that the
#     policy does not know, and a client certificate from a look-alike root,
#     are refused (serve logs "refused reason=...", s_client gets no echo) and
#     serve goes on accepting the next good client.
#   - `coap-client-openssl -c -j -C` against `m2mtls serve --dtls`: the same
#     over DTLS 1.2 (accepted and refused as the policy says, serve keeps going).
# usage: srv_clients.sh PATH-TO-m2mtls PATH-TO-m2mtls.so
. "$(dirname "$0")/lib.sh"
srv_init clients "$@"
srv_need_cmd libcoap3-bin coap-client-openssl

srv_token_pki in-cse
# coap-client-openssl: on OpenSSL >= 3.2 with the TS-0003 DTLS suite enabled (its own copy)
srv_dtls_cnf "$T/openssl-dtls.cnf" "$SOFTHSM" 1234
openssl version | sed 's/^/tested: /'
timeout 5 coap-client-openssl -h </dev/null 2>&1 | sed -n 's/^\(coap-client-openssl v.*\)/tested: \1/p'

cat >b.policy <<EOF
# Entity B: the IN-CSE, key in the token; it knows one AE
local-id $SRV_CSE
cert     in-cse.pem
key      in-cse.keyref.pem
anchor   sp-root sp-root.pem
peer     $SRV_AE uri:$SRV_AE sp-root
EOF

# ---- openssl s_client -> m2mtls serve (TLS) ------------------------------------------------
OPENSSL_CONF=$T/openssl.cnf
export OPENSSL_CONF        # serve reads its key through the provider; s_client does not mind
srv_start_m2mtls_serve tls --policy b.policy || { srv_show "$T/tls.log"; srv_die "m2mtls serve did not start"; }
TPORT=$port
# s_client NAME VERSION CERT: sends "hello NAME", waits a second for the echo
s_client() {
    ( printf 'hello %s\n' "$1"; sleep 1 ) | timeout -k 2 15 openssl s_client -connect "127.0.0.1:$TPORT" "$2" \
        -cert "$3.pem" -key "$3.key" -CAfile sp-root.pem -verify_return_error \
        -verify_hostname "$SRV_FQDN" -servername "$SRV_FQDN" -brief >"$T/$1.out" 2>"$T/$1.err"
    rc=$?
}
lines=0
# serve_logged NAME WHAT TEXT: the next line of serve's log (after the last
# one checked) contains TEXT
serve_logged() {
    srv_wait_port_lines "$1" $((lines + 1))
    lines=$((lines + 1))
    got=$(sed -n "$((lines + 1))p" "$T/$1.log")   # line 1 is "listening on"
    case $got in
        *"$3"*) srv_ok "$1 log: $2" ;;
        *) srv_fail "$1 log: $2: line '$got' lacks '$3'"; srv_show "$T/$1.log" ;;
    esac
}
srv_wait_port_lines() { # NAME N: the log has N lines after the first, 5 s at most
    i=0
    while [ "$(($(wc -l <"$T/$1.log") - 1))" -lt "$2" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
}

for v in -tls1_2 -tls1_3; do
    want=TLSv1.3; [ $v = -tls1_2 ] && want=TLSv1.2
    s_client "good$v" $v ae1
    srv_expect "good$v" "s_client (AE in the policy) is accepted, verifies serve, gets its echo" 0 \
        "Protocol version: $want" "Verification: OK" "hello good$v"
    serve_logged tls "accepted peer=$SRV_AE ($v)" "accepted peer=$SRV_AE local=$SRV_CSE name=uri:$SRV_AE anchor=sp-root $want"
    s_client "stranger$v" $v stranger
    if grep -q "hello stranger$v" "$T/stranger$v.out"; then srv_fail "stranger$v: s_client got an echo"; srv_show "$T/stranger$v.out"
    else srv_ok "stranger$v: an AE the policy does not know gets no data through"; fi
    serve_logged tls "refused an AE the policy does not know ($v)" \
        "refused reason=\"no association matches the certificate's names [uri:$SRV_STRANGER]\""
    s_client "look$v" $v ae1-look
    if grep -q "hello look$v" "$T/look$v.out"; then srv_fail "look$v: s_client got an echo"; srv_show "$T/look$v.out"
    else srv_ok "look$v: a client from a look-alike root gets no data through"; fi
    serve_logged tls "refused a client certificate from a look-alike root ($v)" \
        "refused reason=\"certificate [uri:$SRV_AE] matches peer '$SRV_AE' but fails its Root of Trust: anchor 'sp-root'"
done
s_client again -tls1_3 ae1
srv_expect again "serve still accepts a good client after the refusals" 0 "hello again"
serve_logged tls "accepted peer=$SRV_AE (again)" "accepted peer=$SRV_AE"
if srv_alive "$(srv_pid tls)"; then srv_ok "m2mtls serve (TLS) still running"; else srv_fail "m2mtls serve (TLS) exited"; fi
srv_stop tls
[ "$rc" -eq 0 ] && srv_ok "m2mtls serve exits 0 on SIGTERM" || srv_fail "m2mtls serve: exit $rc after SIGTERM"

# ---- coap-client-openssl -> m2mtls serve --dtls --------------------------------------------
srv_start_m2mtls_serve dtls --policy b.policy --dtls || { srv_show "$T/dtls.log"; srv_die "m2mtls serve --dtls did not start"; }
DPORT=$port
lines=0
# coap NAME CERT: a CoAP GET over DTLS; serve echoes the request back, which
# is no CoAP response: coap-client gives up after -B 2 s; what counts is the
# association serve logs
coap() {
    srv_run "$1" 15 env OPENSSL_CONF="$T/openssl-dtls.cnf" coap-client-openssl -B 2 -c "$2.pem" -j "$2.key" -C sp-root.pem -m get \
        "coaps://127.0.0.1:$DPORT/m2m"
}
coap coap-good ae1
serve_logged dtls "coap-client-openssl (AE in the policy) is accepted over DTLS 1.2" \
    "accepted peer=$SRV_AE local=$SRV_CSE name=uri:$SRV_AE anchor=sp-root DTLSv1.2"
coap coap-stranger stranger
serve_logged dtls "coap-client-openssl with an AE the policy does not know is refused" \
    "refused reason=\"no association matches the certificate's names [uri:$SRV_STRANGER]\""
coap coap-look ae1-look
serve_logged dtls "coap-client-openssl with a certificate from a look-alike root is refused" \
    "refused reason=\"certificate [uri:$SRV_AE] matches peer '$SRV_AE' but fails its Root of Trust"
coap coap-again ae1
serve_logged dtls "serve --dtls still accepts a good client after the refusals" "accepted peer=$SRV_AE"
if srv_alive "$(srv_pid dtls)"; then srv_ok "m2mtls serve --dtls still running"; else srv_fail "m2mtls serve --dtls exited"; fi
srv_stop dtls

srv_finish
