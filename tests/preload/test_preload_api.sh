#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# One label for a program that links libm2mtls.so and runs under
# libm2mtls-preload.so (tests/preload/label_program.c): the preload exports
# libm2mtls's API, so the program's getters, its 7.2.1 From check and its
# m2mtls_ssl_set_peer reach the preload's copy and read the label the
# preload's verifier bound; a policy the program installs itself is not used
# (M2MTLS_POLICY governs, the preload says so). Also: the peer's address in
# the log lines of a DTLS server that serves every peer from one unconnected
# socket (the address is known to the SSL's BIO only).
# usage: test_preload_api.sh M2MTLS PROVIDER PRELOAD LABEL-PROGRAM LIBM2MTLS
. "$(dirname "$0")/../servers/lib.sh"
srv_init preload-api "$1" "$2"
PRELOAD=${3:?usage: test_preload_api.sh M2MTLS PROVIDER PRELOAD LABEL-PROGRAM LIBM2MTLS}
PROG=${4:?missing LABEL-PROGRAM}
LIBM2MTLS=${5:?missing LIBM2MTLS}
srv_need_cmd binutils nm

# ---- the exports: libm2mtls's whole API, the same names --------------------------------
nm -D --defined-only "$LIBM2MTLS" | awk '$3 ~ /^m2mtls_/ { sub(/@.*/, "", $3); print $3 }' | sort >"$T/lib.syms"
nm -D --defined-only "$PRELOAD" | awk '$3 ~ /^m2mtls_/ { sub(/@.*/, "", $3); print $3 }' | sort >"$T/preload.syms"
missing=$(comm -23 "$T/lib.syms" "$T/preload.syms" | tr '\n' ' ')
if [ -s "$T/lib.syms" ] && [ -z "$missing" ]; then srv_ok "the preload exports every m2mtls_* function of libm2mtls ($(wc -l <"$T/lib.syms"))"
else srv_fail "the preload does not export: ${missing:-(libm2mtls exports nothing?)} (preload/exports.map)"; fi

# ---- files: the server's key in SoftHSM (key reference), the test PKI --------------------
srv_token_pki in-cse
OPENSSL_CONF=$T/openssl.cnf   # the servers read their key through the provider
export OPENSSL_CONF
# M2MTLS_POLICY: the registrar //sp.example.com/in-cse (absolute: its SP-ID and
# CSE-ID complete a relative From) knows one AE
printf 'local-id //sp.example.com%s\nanchor sp-root sp-root.pem\npeer %s uri:%s sp-root\n' "$SRV_CSE" "$SRV_AE" "$SRV_AE" \
    >in-cse.policy
# the program's own policy would take any AE of the SP (Cstranger too)
printf 'local-id //sp.example.com%s\nanchor sp-root sp-root.pem\npeers-from-cert sp-root uri-prefix://sp.example.com/in-cse/\n' "$SRV_CSE" >own.policy
sed -e 's/^cert .*/cert stranger.pem/' -e 's/^key .*/key stranger.key/' -e "s|^local-id .*|local-id $SRV_STRANGER|" \
    a.policy >stranger.policy

# prog_start NAME ARGS...: label_program ARGS in the background; $port from its first line
prog_start() {
    _pname=$1; shift
    srv_start "$_pname" "$@"
    srv_wait_log "$_pname" "listening on 127.0.0.1:" 20 || { srv_show "$T/$_pname.log"; srv_die "$_pname did not start"; }
    port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$T/$_pname.log")
}

# ---- TLS: the label the preload bound, read by the program's libm2mtls calls ----------------
prog_start tls env LD_PRELOAD="$PRELOAD" M2MTLS_POLICY="$T/in-cse.policy" \
    "$PROG" serve tls in-cse.pem in-cse.keyref.pem own.policy
srv_log_has tls "the program's m2mtls_ssl_peer_id binds to the preload" "m2mtls_ssl_peer_id from $PRELOAD"
srv_log_has tls "the program's own policy is not used, and the preload says so" \
    "m2mtls: the program installs its own policy for //sp.example.com$SRV_CSE: not used, M2MTLS_POLICY governs every TLS context"
srv_connect rel --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --send "FROM Cae1"
srv_expect rel "the program reads the preload's label; a CSE-relative From of the bound AE is accepted" 0 \
    "reply:     peer=$SRV_AE from=Cae1 accepted"
srv_log_has tls "the preload logs the connection with the client's address" \
    "m2mtls: accepted client=127.0.0.1:"
srv_connect abs --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --send "FROM $SRV_AE"
srv_expect abs "an absolute From of the bound AE is accepted" 0 "reply:     peer=$SRV_AE from=$SRV_AE accepted"
srv_connect other-from --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --send "FROM Cstranger"
srv_expect other-from "the bound AE claiming another From: ORIGINATOR_NOT_AUTHENTICATED" 0 \
    "reply:     peer=$SRV_AE from=Cstranger ORIGINATOR_NOT_AUTHENTICATED"
srv_connect stranger --policy stranger.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --send "FROM Cstranger"
srv_expect stranger "an AE only the program's own policy would take is refused (M2MTLS_POLICY governs)" 1 \
    "refused by the peer"
srv_log_has tls "the refusal is logged with the client's address and reason" \
    "m2mtls: refused client=127.0.0.1:"
srv_stop tls

# the same program without the preload: its own policy is in force (libm2mtls.so)
prog_start plain "$PROG" serve tls in-cse.pem in-cse.keyref.pem own.policy
srv_log_has plain "without the preload, m2mtls_ssl_peer_id is libm2mtls.so's" "m2mtls_ssl_peer_id from $(dirname "$LIBM2MTLS")/libm2mtls.so"
srv_connect plain-stranger --policy stranger.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --send "FROM Cstranger"
srv_expect plain-stranger "without the preload the program's own policy takes Cstranger" 0 \
    "reply:     peer=$SRV_STRANGER from=Cstranger accepted"
srv_stop plain

# ---- DTLS from one unconnected socket: the address comes from the SSL's BIO ---------------
prog_start dtls env LD_PRELOAD="$PRELOAD" M2MTLS_POLICY="$T/in-cse.policy" "$PROG" serve dtls in-cse.pem in-cse.keyref.pem
srv_connect dtls-good --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --dtls --send "FROM Cae1"
srv_expect dtls-good "DTLS: the program reads the label" 0 "reply:     peer=$SRV_AE from=Cae1 accepted"
srv_log_has dtls "DTLS (unconnected socket): the accepted line has the client's address" \
    "m2mtls: accepted client=127.0.0.1:"
srv_connect dtls-stranger --policy stranger.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --dtls
srv_expect dtls-stranger "DTLS: an AE the policy does not know is refused" 1 "refused by the peer"
srv_log_has dtls "DTLS (unconnected socket): the refused line has the client's address" \
    "m2mtls: refused client=127.0.0.1:"
if grep -q "m2mtls: \(accepted\|refused\) client=-" "$T/dtls.log"; then
    srv_fail "a DTLS log line without the client's address"; srv_show "$T/dtls.log"
else srv_ok "no DTLS log line without the client's address"; fi
srv_stop dtls

# ---- the program as an initiator: m2mtls_ssl_set_peer reaches the preload's verifier -------
printf 'local-id %s\ncert in-cse.pem\nkey in-cse.keyref.pem\nanchor sp-root sp-root.pem\npeer %s uri:%s sp-root\n' \
    "$SRV_CSE" "$SRV_AE" "$SRV_AE" >serve.policy
srv_start_m2mtls_serve serve --policy serve.policy || { srv_show "$T/serve.log"; srv_die "m2mtls serve did not start"; }
srv_run init 20 env LD_PRELOAD="$PRELOAD" M2MTLS_POLICY="$T/a.policy" "$PROG" connect "127.0.0.1:$port" "$SRV_CSE" ae1.pem ae1.key
srv_expect init "the program's m2mtls_ssl_set_peer is the preload's: the association is established" 0 \
    "connected peer=$SRV_CSE"
srv_run init-other 20 env LD_PRELOAD="$PRELOAD" M2MTLS_POLICY="$T/a-other.policy" "$PROG" connect "127.0.0.1:$port" \
    /other-cse ae1.pem ae1.key
srv_expect init-other "the association the program asked for is the one verified: another CSE's name is refused" 1 \
    "refused: certificate does not carry dns:other-cse.sp.example.com"
srv_stop serve

srv_finish
