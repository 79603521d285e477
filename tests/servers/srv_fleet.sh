#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# A fleet shares sessions: two nginx instances (keys in one SoftHSM token)
# under libm2mtls-preload.so with the same policy and the same
# ssl_session_ticket_key file. A session made with instance A resumes on
# instance B (TLS 1.2 and 1.3): B never saw the certificate, it re-checks the
# label the ticket carries against its own policy and logs the peer. Then B
# reloads a policy without that peer (M2MTLS_RELOAD): the session no longer
# resumes there and the peer is refused (fails closed), while A, whose policy
# did not change, still resumes it.
# usage: srv_fleet.sh M2MTLS PROVIDER PRELOAD
. "$(dirname "$0")/lib.sh"
srv_init fleet "$1" "$2"
PRELOAD=${3:?usage: srv_fleet.sh M2MTLS PROVIDER PRELOAD}
srv_need_cmd nginx nginx

srv_token_pki in-cse
openssl rand 80 >"$T/ticket.key"   # nginx: 80 bytes, AES-256 tickets
chmod 600 "$T/ticket.key"
# one policy, a copy per instance (only B will change)
srv_server_policy "$T/fleet-a.policy" "$SRV_AE" "$SRV_STRANGER"
srv_server_policy "$T/fleet-b.policy" "$SRV_AE" "$SRV_STRANGER"
TICKETS="s|ssl_verify_depth 2;|ssl_verify_depth 2; ssl_session_ticket_key $T/ticket.key;|"

SRV_NG_ENV="LD_PRELOAD=$PRELOAD M2MTLS_POLICY=$T/fleet-a.policy"
srv_nginx_start nginx-a in-cse.pem "$T/openssl.cnf" "$TICKETS"
port_a=$port
SRV_NG_ENV="LD_PRELOAD=$PRELOAD M2MTLS_POLICY=$T/fleet-b.policy M2MTLS_RELOAD=1"
srv_nginx_start nginx-b in-cse.pem "$T/openssl.cnf" "$TICKETS"
port_b=$port
SRV_NG_ENV=""
grep -q "ssl_session_ticket_key $T/ticket.key;" "$T/nginx-b.conf" && srv_ok "both instances share $T/ticket.key" \
    || srv_die "nginx.conf: no ssl_session_ticket_key added"
# nb_has WHAT TEXT: instance B's error log (the preload's lines) gets TEXT
nb_has() {
    if srv_wait_log "$T/nginx-b/logs/error.log" "$2" 5; then srv_ok "nginx-b: $1"
    else srv_fail "nginx-b: $1: its log lacks '$2'"; srv_show "$T/nginx-b/logs/error.log"; fi
}

for v in tls1_2 tls1_3; do
    want=TLSv1.3; [ $v = tls1_2 ] && want=TLSv1.2
    srv_s_client "a-$v" "$port_a" ae1 -$v -sess_out "$T/ae1-$v.sess"
    srv_expect "a-$v" "Cae1 makes a session with instance A ($v)" 0 "New, " "HTTP/1.1 200"
    srv_s_client "b-$v" "$port_b" ae1 -$v -sess_in "$T/ae1-$v.sess"
    srv_expect "b-$v" "the session made with A resumes on B ($v)" 0 "Reused, " "HTTP/1.1 200"
    nb_has "B re-checked the ticket's label and logs the peer ($v)" \
        "peer=$SRV_AE local=$SRV_CSE name=uri:$SRV_AE anchor=sp-root protocol=$want resumed=yes"
done
if grep -q "peer=$SRV_AE .*resumed=no" "$T/nginx-b/logs/error.log"; then
    srv_fail "B made a full handshake with Cae1 (no resumption)"; srv_show "$T/nginx-b/logs/error.log"
else srv_ok "B never made a full handshake with Cae1: its label came with the ticket"; fi

# B reloads a policy without Cae1
srv_server_policy "$T/fleet-b.policy" "$SRV_STRANGER"
sleep 2.2
for v in tls1_2 tls1_3; do
    srv_s_client "b-removed-$v" "$port_b" ae1 -$v -sess_in "$T/ae1-$v.sess"
    if grep -q "^Reused, " "$T/b-removed-$v.out" || grep -q "HTTP/1.1 200" "$T/b-removed-$v.out"; then
        srv_fail "after B's reload, Cae1's session still resumes or is served on B ($v)"; srv_show "$T/b-removed-$v.out"
    else srv_ok "after B's reload without Cae1, its session does not resume on B and it is refused ($v)"; fi
    srv_s_client "a-still-$v" "$port_a" ae1 -$v -sess_in "$T/ae1-$v.sess"
    srv_expect "a-still-$v" "A, whose policy did not change, still resumes it ($v)" 0 "Reused, " "HTTP/1.1 200"
done
nb_has "B logged the reload" "m2mtls: policy $T/fleet-b.policy reloaded: 1 peers"
nb_has "B refused Cae1 with the reason" "no association matches the certificate's names [uri:$SRV_AE]"
srv_stop nginx-a
srv_stop nginx-b

srv_finish
