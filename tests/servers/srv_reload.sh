#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Live policy reload in an unmodified server: nginx (master + worker, key in a
# SoftHSM token) under libm2mtls-preload.so with M2MTLS_RELOAD=1. The policy
# file is replaced while nginx runs, never restarted nor signalled:
#   - a peer added: accepted on its next connection, the reload is logged;
#   - a peer removed: its saved session (TLS 1.2 and 1.3 tickets) no longer
#     resumes, and a full handshake is refused;
#   - a file with errors: every FILE:LINE logged, the policy in force stays;
#   - the same master and worker processes throughout;
#   - an M2MTLS_RELOAD that is not a number of seconds: no TLS context at all.
# usage: srv_reload.sh M2MTLS PROVIDER PRELOAD
. "$(dirname "$0")/lib.sh"
srv_init reload "$1" "$2"
PRELOAD=${3:?usage: srv_reload.sh M2MTLS PROVIDER PRELOAD}
srv_need_cmd nginx nginx

srv_token_pki in-cse
sed -e 's/^cert .*/cert stranger.pem/' -e 's/^key .*/key stranger.key/' -e "s|^local-id .*|local-id $SRV_STRANGER|" \
    a.policy >stranger.policy
LOG=$T/nginx/logs/error.log
# a policy change is seen by the first handshake at least 1 s after the last check
settle() { sleep 2.2; }
# ng_has WHAT TEXT: nginx's error log (where the preload's lines go) gets TEXT
ng_has() {
    if srv_wait_log "$LOG" "$2" 5; then srv_ok "nginx: $1"; else srv_fail "nginx: $1: its log lacks '$2'"; srv_show "$LOG"; fi
}

srv_server_policy "$T/in-cse.policy" "$SRV_AE"
SRV_NG_ENV="LD_PRELOAD=$PRELOAD M2MTLS_POLICY=$T/in-cse.policy M2MTLS_RELOAD=1"
srv_nginx_start nginx in-cse.pem "$T/openssl.cnf"
SRV_NG_ENV=""
mpid=$(srv_pid nginx)
workers=$(srv_children "$mpid" | sort | tr '\n' ' ')
srv_log_has nginx "the preload says it re-reads the policy" "m2mtls: policy $T/in-cse.policy is re-read when it changes (checked at most every 1 s)"

srv_connect ae1 --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --send "$GET"
srv_expect ae1 "Cae1, in the policy, is served" 0 "peer id:   $SRV_CSE" "HTTP/1.1 200"
srv_connect stranger --policy stranger.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --tls1.2 --send "$GET"
srv_expect stranger "Cstranger, not in the policy, is refused" 1 "refused by the peer"
for v in tls1_2 tls1_3; do
    srv_s_client "new-$v" "$port" ae1 -$v -sess_out "$T/ae1-$v.sess"
    srv_s_client "resumed-$v" "$port" ae1 -$v -sess_in "$T/ae1-$v.sess"
    srv_expect "resumed-$v" "Cae1's saved session resumes ($v)" 0 "Reused, " "HTTP/1.1 200"
done
ng_has "the preload logs the resumption with Cae1's label" "peer=$SRV_AE local=$SRV_CSE name=uri:$SRV_AE anchor=sp-root protocol=TLSv1.3 resumed=yes"

# ---- a peer added ------------------------------------------------------------------------
srv_server_policy "$T/in-cse.policy" "$SRV_AE" "$SRV_STRANGER"
settle
srv_connect stranger-added --policy stranger.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --send "$GET"
srv_expect stranger-added "Cstranger, added to the live policy, is served" 0 "peer id:   $SRV_CSE" "HTTP/1.1 200"
ng_has "the reload is logged" "m2mtls: policy $T/in-cse.policy reloaded: 2 peers"
ng_has "... and the new peer's connection" "accepted client=127.0.0.1:"

# ---- a peer removed: no resumption, no full handshake -----------------------------------------
srv_server_policy "$T/in-cse.policy" "$SRV_STRANGER"
settle
for v in tls1_2 tls1_3; do
    srv_s_client "removed-$v" "$port" ae1 -$v -sess_in "$T/ae1-$v.sess"
    if grep -q "^Reused, " "$T/removed-$v.out" || grep -q "HTTP/1.1 200" "$T/removed-$v.out"; then
        srv_fail "Cae1, removed from the live policy, still resumes or is served ($v)"; srv_show "$T/removed-$v.out"
    else srv_ok "Cae1, removed from the live policy, cannot resume its session nor connect ($v)"; fi
done
ng_has "the removal is logged" "m2mtls: policy $T/in-cse.policy reloaded: 1 peers"
ng_has "Cae1's attempt is refused with its reason" "no association matches the certificate's names [uri:$SRV_AE]"
srv_connect ae1-removed --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --tls1.2 --send "$GET"
srv_expect ae1-removed "m2mtls connect as Cae1 is refused" 1 "refused by the peer"

# ---- a file with errors: every FILE:LINE logged, the policy in force stays --------------------
{ printf 'local-id %s\nanchor sp-root %s/sp-root.pem\n' "$SRV_CSE" "$T"
  printf 'peer %s uri:%s no-such-anchor\n' "$SRV_AE" "$SRV_AE"
  printf 'peer /x dns:*.sp.example.com sp-root\n'; } >"$T/in-cse.policy.new"
mv "$T/in-cse.policy.new" "$T/in-cse.policy"
settle
srv_connect stranger-kept --policy stranger.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --send "$GET"
srv_expect stranger-kept "a broken file: the policy in force stays (Cstranger still served)" 0 "HTTP/1.1 200"
srv_connect ae1-kept --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --tls1.2 --send "$GET"
srv_expect ae1-kept "a broken file: the policy in force stays (Cae1 still refused)" 1 "refused by the peer"
ng_has "the broken file is logged" "m2mtls: policy $T/in-cse.policy has errors: not reloaded, the policy in force stays"
ng_has "... with its first error's FILE:LINE" "m2mtls: $T/in-cse.policy:3: "
ng_has "... and its second error's FILE:LINE" "m2mtls: $T/in-cse.policy:4: "

# ---- mended: Cae1 back ----------------------------------------------------------------------------
srv_server_policy "$T/in-cse.policy" "$SRV_AE"
settle
srv_connect ae1-back --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --send "$GET"
srv_expect ae1-back "the mended file is loaded: Cae1 served again" 0 "HTTP/1.1 200"
n=$(grep -c "m2mtls: policy $T/in-cse.policy reloaded" "$LOG")
[ "$n" -eq 3 ] && srv_ok "three reloads logged" || { srv_fail "$n reloads logged, expected 3"; srv_show "$LOG"; }

# ---- never restarted --------------------------------------------------------------------------------
now=$(srv_children "$mpid" | sort | tr '\n' ' ')
if srv_alive "$mpid" && [ -n "$workers" ] && [ "$now" = "$workers" ]; then
    srv_ok "the same nginx master ($mpid) and worker(s) ($workers) served throughout"
else srv_fail "nginx was restarted: master $mpid, workers '$workers' then '$now'"; fi
srv_stop nginx

# ---- M2MTLS_RELOAD that is not a number of seconds: no TLS at all (fails closed) ----------------
srv_run bad-reload 10 env LD_PRELOAD="$PRELOAD" M2MTLS_POLICY="$T/in-cse.policy" M2MTLS_RELOAD=soon \
    openssl s_server -accept 127.0.0.1:0 -www -cert ae1.pem -key ae1.key
if grep -q "m2mtls: M2MTLS_RELOAD=soon is not a number of seconds from 0 (off) to 86400: no TLS context will be created" \
        "$T/bad-reload.out" "$T/bad-reload.err" && ! grep -q "^ACCEPT" "$T/bad-reload.out"; then
    srv_ok "M2MTLS_RELOAD=soon: said why, no TLS context"
else srv_fail "M2MTLS_RELOAD=soon: said why, no TLS context"; srv_show "$T/bad-reload.out" "$T/bad-reload.err"; fi

srv_finish
