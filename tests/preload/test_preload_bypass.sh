#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# libm2mtls-preload.so under a program that does what loosens a naive policy
# layer (preload_server.c, plain OpenSSL): a verify mode with
# SSL_VERIFY_POST_HANDSHAKE, its own info callbacks (of the SSL and of the
# SSL_CTX), its own session ticket callbacks with its own ticket data, an SNI
# switch to a second SSL_CTX that asks for no certificate. Real
# `openssl s_client` clients on loopback, TLS 1.2 and 1.3; every connection
# is logged by the preload and only authorized peers are served.
# usage: test_preload_bypass.sh PRELOAD.so preload_server m2mtls m2mtls.so
set -u
. "$(dirname "$0")/../servers/lib.sh"
srv_preload_init preload-bypass preload_server "$@"
printf 'local-id /in-cse\nanchor ae-root %s/ae-root.pem\npeer //sp.example.com/in-cse/Csensor7 uri://sp.example.com/in-cse/Csensor7 ae-root\n' \
    "$T" >"$T/server.policy"

# program NAME OPTIONS...: the program under the preload; $port from its first line
program() {
    _n=$1; shift
    srv_start "$_n" env LD_PRELOAD="$PRELOAD" M2MTLS_POLICY="$T/server.policy" "$PROGRAM" \
        --cert "$T/server.pem" --key "$T/server.key" "$@"
    srv_wait_log "$_n" "listening " 10 || { srv_show "$T/$_n.log"; srv_die "$_n does not start"; }
    port=$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$T/$_n.log")
}
count() { grep -c "$2" "$T/$1.log" 2>/dev/null || true; }

# ---- a verify mode with post-handshake authentication ------------------------------
program pha --pha
srv_hello_client pha-anon - -tls1_3 -enable_pha
srv_expect_hello_refused pha-anon pha "SSL_VERIFY_POST_HANDSHAKE: a TLS 1.3 client without a certificate is refused, not served"
srv_hello_client pha-good good -tls1_3 -enable_pha
srv_expect_hello_served pha-good pha "SSL_VERIFY_POST_HANDSHAKE: the authorized client is served"
srv_stop pha

# ---- the program's own info callbacks ------------------------------------------------
for where in ssl ctx; do
    program "info-$where" "--info-$where"
    srv_hello_client "info-$where-good" good
    srv_expect_hello_served "info-$where-good" "info-$where" "its own info callback on the $where: the accepted client is logged"
    srv_hello_client "info-$where-other" other
    if ! srv_hello_served "info-$where-other" && srv_wait_log "info-$where" 'reason="no association matches' 5; then
        srv_ok "its own info callback on the $where: the refusal is logged with its reason"
    else
        srv_fail "its own info callback on the $where: the refusal is logged"; srv_show "$T/info-$where.log"
    fi
    srv_hello_client "info-$where-anon" - -tls1_2
    if ! srv_hello_served "info-$where-anon" && [ "$(count "info-$where" 'refused client=127.0.0.1:')" -ge 2 ]; then
        srv_ok "its own info callback on the $where: a client without a certificate is logged"
    else
        srv_fail "its own info callback on the $where: a client without a certificate is logged"; srv_show "$T/info-$where.log"
    fi
    srv_stop "info-$where"
done

# ---- the program's own session ticket callbacks, with its own ticket data ----------
for v in tls1_2 tls1_3; do
    program "tickets-$v" --tickets
    srv_hello_client "tickets-$v-1" good "-$v" -sess_out "$T/tickets-$v.sess"
    srv_expect_hello_served "tickets-$v-1" "tickets-$v" "$v: its own ticket callbacks: a full handshake is accepted"
    srv_hello_client "tickets-$v-2" good "-$v" -sess_in "$T/tickets-$v.sess"
    if grep -q "^served hello tickets-$v-2 resumed=yes" "$T/tickets-$v.log" \
       && srv_wait_log "tickets-$v" "peer=//sp.example.com/in-cse/Csensor7 local=/in-cse name=uri://sp.example.com/in-cse/Csensor7 anchor=ae-root protocol=" 5 \
       && grep -q "resumed=yes" "$T/tickets-$v.log" && grep -q "^ticket-data ok" "$T/tickets-$v.log" \
       && ! grep -q "refused client" "$T/tickets-$v.log"; then
        srv_ok "$v: its own ticket callbacks: the resumed session keeps its label, and the program its ticket data"
    else
        srv_fail "$v: its own ticket callbacks: the resumed session keeps its label and the program its data"
        srv_show "$T/tickets-$v.log" "$T/tickets-$v-2.err"
    fi
    # a client without a certificate, with the session of another: no label, no service
    srv_hello_client "tickets-$v-thief" - "-$v" -sess_in "$T/tickets-$v.sess"
    if grep -q "^served hello tickets-$v-thief resumed=no" "$T/tickets-$v.log"; then
        srv_fail "$v: a client without a certificate was served a full handshake"; srv_show "$T/tickets-$v.log"
    else
        srv_ok "$v: a session replayed by a client without its key is not served a full handshake"
    fi
    srv_stop "tickets-$v"
done

# ---- an SNI switch to a context that asks for no certificate --------------------------
program sni --sni vhost.example.com
srv_hello_client sni-anon - -servername vhost.example.com
if grep -q "^switched to vhost.example.com" "$T/sni.log" && ! srv_hello_served sni-anon \
   && srv_wait_log sni "refused client=127.0.0.1:" 5; then
    srv_ok "SNI switch: the second context still requires and verifies the certificate"
else
    srv_fail "SNI switch: the second context still requires the certificate"; srv_show "$T/sni.log" "$T/sni-anon.out"
fi
srv_hello_client sni-good good -servername vhost.example.com
srv_expect_hello_served sni-good sni "SNI switch: the authorized client is served and logged"
srv_stop sni

srv_finish
