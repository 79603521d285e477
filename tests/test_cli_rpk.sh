#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Key identities (TS-0003 raw public keys, `peer ID key:sha-256;...`) from
# the command line, as a user runs them: `m2mtls inspect` (the RFC 6920 ids of
# a certificate's or a bare public key's key, --key-id, --json; a key peer
# accepts or refuses a carrier certificate or a PUBLIC KEY), `m2mtls policy
# check`, and `m2mtls serve` / `m2mtls connect` over TLS 1.2, TLS 1.3 and
# DTLS 1.2: a device's self-signed certificate as the carrier on every
# OpenSSL, RFC 7250 raw public keys both ways on OpenSSL >= 3.2 when each
# side knows the other by its key, resumption, another key refused.
# The PKI is made with the openssl command; servers listen on 127.0.0.1:0.
# usage: test_cli_rpk.sh PATH-TO-m2mtls
set -u
. "$(dirname "$0")/servers/lib.sh"
M2MTLS=${1:?usage: test_cli_rpk.sh PATH-TO-m2mtls}
case $M2MTLS in /*) ;; *) M2MTLS=$PWD/$M2MTLS ;; esac
[ -x "$M2MTLS" ] || srv_die "$M2MTLS is not an executable"
srv_need_cmd openssl openssl
srv_need_cmd python3 python3
T=$(mktemp -d "${TMPDIR:-/tmp}/m2mtls-clirpk-XXXXXX") || srv_die "mktemp"
trap srv_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP
OPENSSL_CONF=/dev/null
export OPENSSL_CONF

run() { # NAME ARGS...: m2mtls ARGS, as srv_run
    _n=$1; shift
    srv_run "$_n" 20 "$M2MTLS" "$@"
}
# The RFC 6920 id of a public key (PEM), computed here with the openssl
# command: base64url of the first BYTES of SHA-256(SubjectPublicKeyInfo).
id_of_pub() { # FILE BYTES
    openssl pkey -pubin -in "$1" -outform DER | openssl dgst -sha256 -binary | head -c "$2" \
        | base64 | tr '+/' '-_' | tr -d '=\n'
}
# a self-signed certificate for a new P-256 key: a device's carrier; NAME.pem,
# NAME.key, NAME.pub (its public key) and $id (its sha-256 id)
device() { # NAME
    srv_openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$1.key" \
        -out "$T/$1.pem" -subj "/CN=$1" -days 10 -addext keyUsage=critical,digitalSignature
    srv_openssl pkey -in "$T/$1.key" -pubout -out "$T/$1.pub"
}

# ---- PKI and policies ------------------------------------------------------------------
FQDN=in-cse.sp.example.com
DEV=//sp.example.com/in-cse/Cdev
DEV2=//sp.example.com/in-cse/Cdev2
srv_root root "/O=m2mtls tests/CN=RPK Root"
srv_leaf server root "DNS:$FQDN" in-cse
srv_openssl x509 -in "$T/server.pem" -pubkey -noout -out "$T/server.pub"
device dev
device dev2
device intruder
DEV_ID=$(id_of_pub "$T/dev.pub" 32)
DEV2_ID128=$(id_of_pub "$T/dev2.pub" 16)
INTRUDER_ID=$(id_of_pub "$T/intruder.pub" 32)
SRV_ID=$(id_of_pub "$T/server.pub" 32)
cat >"$T/srv.policy" <<EOF
# Entity B: one certificate association, two key identities
local-id /in-cse
sp-id    //sp.example.com
cert     server.pem
key      server.key
anchor   ROOT root.pem
peer //sp.example.com/in-cse/Ccert uri://sp.example.com/in-cse/Ccert ROOT
peer $DEV key:sha-256;$DEV_ID
peer $DEV2 key:sha-256-128;$DEV2_ID128
EOF

# ---- inspect: RFC 6920 ids ------------------------------------------------------------
run kid inspect --key-id "$T/dev.pem"
srv_expect kid "--key-id of a certificate" 0 "key:sha-256;$DEV_ID" \
    "key:sha-256-128;$(id_of_pub "$T/dev.pub" 16)" "key:sha-256-120;$(id_of_pub "$T/dev.pub" 15)"
run kid_pub inspect --key-id --json "$T/dev.pub"
if [ "$rc" -eq 0 ] && python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["key_ids"]["sha-256"] == "key:sha-256;" + sys.argv[2], d
assert d["key_ids"]["sha-256-120"].startswith("key:sha-256-120;" + sys.argv[2][:19]), d
assert d["key"].startswith("EC"), d' "$T/kid_pub.out" "$DEV_ID"; then srv_ok "--key-id --json of a PUBLIC KEY"
else srv_fail "--key-id --json of a PUBLIC KEY"; srv_show "$T/kid_pub.out" "$T/kid_pub.err"; fi
run kid_usage inspect --key-id --policy "$T/srv.policy" "$T/dev.pem"
srv_expect kid_usage "--key-id takes no policy" 2 "only --json"
run kid_garbage inspect --key-id "$T/srv.policy"
srv_expect kid_garbage "--key-id of a file without a key" 2 "no certificate"

# ---- inspect: a key peer accepts or refuses ---------------------------------------------
run acc inspect --policy "$T/srv.policy" "$T/dev.pem"
srv_expect acc "a carrier certificate with the key" 0 "accepted: $DEV" "matched:  key:sha-256;$DEV_ID" \
    "key ids:  key:sha-256;$DEV_ID"
run acc128 inspect --policy "$T/srv.policy" "$T/dev2.pem"
srv_expect acc128 "a sha-256-128 id" 0 "accepted: $DEV2"
run acc_pub inspect --policy "$T/srv.policy" "$T/dev.pub"
srv_expect acc_pub "a bare PUBLIC KEY (a raw public key)" 0 "accepted: $DEV" "raw public key, EC"
run rej inspect --policy "$T/srv.policy" "$T/intruder.pem"
srv_expect rej "another key" 1 "rejected: " "nor is its key key:sha-256;$INTRUDER_ID configured"
run rej_pub inspect --policy "$T/srv.policy" "$T/intruder.pub"
srv_expect rej_pub "another bare key" 1 "rejected: no association matches the peer's raw public key key:sha-256;$INTRUDER_ID"
run rej_peer inspect --policy "$T/srv.policy" --peer "$DEV" "$T/intruder.pem"
srv_expect rej_peer "--peer: not the configured key" 1 \
    "the peer's key is key:sha-256;$INTRUDER_ID, not key:sha-256;$DEV_ID, the key configured for peer '$DEV'"
run json inspect --policy "$T/srv.policy" --json "$T/dev.pem"
if [ "$rc" -eq 0 ] && python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["verdict"] == "accepted" and d["peer_id"] == sys.argv[2], d
assert d["identified_by"] == "key" and d["anchor"] is None and d["chain_verified"] is False, d
assert d["cert_name"] == "key:sha-256;" + sys.argv[3] == d["key_ids"]["sha-256"], d' "$T/json.out" "$DEV" "$DEV_ID"
then srv_ok "inspect --json of a key identity"; else srv_fail "inspect --json of a key identity"; srv_show "$T/json.out"; fi
run json_rej inspect --policy "$T/srv.policy" --json "$T/intruder.pub"
if [ "$rc" -eq 1 ] && python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["verdict"] == "rejected" and d["reason_code"] == "name" and d["peer_id"] is None, d' "$T/json_rej.out"
then srv_ok "inspect --json of a refused key"; else srv_fail "inspect --json of a refused key"; srv_show "$T/json_rej.out"; fi

# ---- policy check ------------------------------------------------------------------------
run pc policy check "$T/srv.policy"
srv_expect pc "policy check counts key identities" 0 "3 peers (2 by key)"
printf 'peer A key:sha-256;%s\npeer B key:sha-256-120;%s\npeer C key:sha-256;%s ROOT\npeer D key:sha-512;%s\n' \
    "$DEV_ID" "$(id_of_pub "$T/dev.pub" 15)" "$INTRUDER_ID" "$INTRUDER_ID" >"$T/bad.policy"
run pc_bad policy check "$T/bad.policy"
srv_expect pc_bad "policy check: key id mistakes" 2 "$T/bad.policy:2: peer 'B': duplicate key" \
    "$T/bad.policy:3: peer 'C': a key identity has no anchor" "$T/bad.policy:4: peer 'D': key:sha-512;" \
    "unknown hash algorithm 'sha-512'"

# ---- serve and connect -------------------------------------------------------------------
srv_start_m2mtls_serve tls --policy "$T/srv.policy" || srv_die "serve (TLS) did not start"
TPORT=$port
srv_start_m2mtls_serve dtls --policy "$T/srv.policy" --dtls || srv_die "serve (DTLS) did not start"
DPORT=$port
client_policy() { # ENTITY SERVER-NAME: the device, knowing the server by SERVER-NAME
    # (one key is one identity: DTLS goes to the same peer, with --dtls --to)
    cat <<EOF
local-id $DEV
cert $1.pem
key  $1.key
anchor ROOT root.pem
peer /in-cse $2 at=tls://127.0.0.1:$TPORT
EOF
}
client_policy dev "dns:$FQDN ROOT" >"$T/dev-c.policy"          # the server by its certificate
client_policy dev "key:sha-256;$SRV_ID" >"$T/dev-k.policy"      # the server by its key
client_policy intruder "key:sha-256;$SRV_ID" >"$T/intruder-k.policy"
if srv_openssl_at_least 3 2; then RAW="raw public key (RFC 7250)"; else RAW="certificate"; fi
LOG="accepted peer=$DEV local=/in-cse name=key:sha-256;$DEV_ID anchor=-"

run c12 connect --policy "$T/dev-c.policy" --peer /in-cse --tls1.2 --send hello
srv_expect c12 "TLS 1.2, the device's self-signed carrier" 0 "peer id:   /in-cse" "name:      dns:$FQDN" \
    "anchor:    ROOT" "presented: certificate" "reply:     hello"
srv_log_has tls "the server labels the device by its key (TLS 1.2)" "$LOG TLSv1.2"
run c13 connect --policy "$T/dev-c.policy" --peer /in-cse --tls1.3
srv_expect c13 "TLS 1.3, the device's self-signed carrier" 0 "peer id:   /in-cse" "protocol:  TLSv1.3"
srv_log_has tls "the server labels the device by its key (TLS 1.3)" "$LOG TLSv1.3"
run cd connect --policy "$T/dev-c.policy" --peer /in-cse --dtls --to "127.0.0.1:$DPORT" --send hello
srv_expect cd "DTLS 1.2, the device's self-signed carrier" 0 "protocol:  DTLSv1.2, ECDHE-ECDSA-AES128-CCM8" \
    "reply:     hello"
srv_log_has dtls "the server labels the device by its key (DTLS 1.2)" "$LOG DTLSv1.2"

for v in --tls1.2 --tls1.3; do
    run k$v connect --policy "$T/dev-k.policy" --peer /in-cse $v --send hi
    srv_expect k$v "both by key ($v): $RAW" 0 "peer id:   /in-cse" "name:      key:sha-256;$SRV_ID" \
        "anchor:    -" "presented: $RAW" "reply:     hi"
done
run kd connect --policy "$T/dev-k.policy" --peer /in-cse --dtls --to "127.0.0.1:$DPORT" --send hi
srv_expect kd "both by key (DTLS 1.2): $RAW" 0 "name:      key:sha-256;$SRV_ID" "presented: $RAW" "reply:     hi"
run kjson connect --policy "$T/dev-k.policy" --peer /in-cse --json
if [ "$rc" -eq 0 ] && python3 -c '
import json, sys
d = json.loads(open(sys.argv[1]).readline())
assert d["peer_id"] == "/in-cse" and d["anchor"] is None and d["cert_name"] == "key:sha-256;" + sys.argv[2], d
assert d["presented"] == sys.argv[3], d' "$T/kjson.out" "$SRV_ID" "$( [ "$RAW" = certificate ] && echo certificate || echo raw-public-key)"
then srv_ok "connect --json of a key identity"; else srv_fail "connect --json of a key identity"; srv_show "$T/kjson.out" "$T/kjson.err"; fi

run kres connect --policy "$T/dev-k.policy" --peer /in-cse --tls1.3 --resume 2
if [ "$rc" -eq 0 ] && [ "$(grep -c '  resumed:   yes' "$T/kres.out")" -eq 2 ] \
   && [ "$(grep -c "  name:      key:sha-256;$SRV_ID" "$T/kres.out")" -eq 3 ]; then srv_ok "resumption keeps the key label"
else srv_fail "resumption keeps the key label"; srv_show "$T/kres.out" "$T/kres.err"; fi
if grep -F -- "$LOG TLSv1.3" "$T/tls.log" | grep -q "resumed=yes\$"; then srv_ok "the server's resumed label"
else srv_fail "the server's resumed label"; srv_show "$T/tls.log"; fi

run intr connect --policy "$T/intruder-k.policy" --peer /in-cse --tls1.2
srv_expect intr "another key is refused by the server" 1 "refused by the peer"
srv_log_has tls "the server says which key it refused" "key:sha-256;$INTRUDER_ID"

srv_finish
