#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# mosquitto, unmodified, runs examples/servers/mosquitto.conf: an MQTT over
# TLS listener whose private key was generated inside a SoftHSM token and is
# named by a key reference PEM (keyfile), OPENSSL_CONF loading the m2mtls
# provider, client certificates required (require_certificate true).
# `m2mtls connect` completes the mutual association over TLS 1.2 and 1.3 and
# reports the server's identity /in-cse (no MQTT is spoken: the association
# is the handshake; a CONNECT cannot be passed to --send, it has NUL bytes).
# Refusals: a mosquitto whose certificate is from a look-alike root
# (m2mtls connect exits 1), a peer id whose name mosquitto's certificate lacks
# (exit 1), a client from a look-alike root (mosquitto refuses the handshake);
# mosquitto keeps serving.
# usage: srv_mosquitto.sh PATH-TO-m2mtls PATH-TO-m2mtls.so
. "$(dirname "$0")/lib.sh"
srv_init mosquitto "$@"
srv_need_cmd mosquitto mosquitto

srv_token_pki in-cse
mosquitto -h 2>&1 | sed -n '1s/^/tested: /p'

mq_conf() { # PORT ($MQ_NAME, $MQ_CERT)
    srv_example mosquitto.conf "$T/$MQ_NAME.conf" \
        "s|^user .*|user $(id -un)|; s|^listener 8883 127.0.0.1\$|listener $1 127.0.0.1|; s|^certfile .*|certfile $T/$MQ_CERT|"
    grep -q "^listener $1 127.0.0.1\$" "$T/$MQ_NAME.conf" || srv_die "examples/servers/mosquitto.conf: no 'listener 8883 127.0.0.1'"
}
mq_start() { # NAME CERT
    MQ_NAME=$1 MQ_CERT=$2
    srv_start_port "$1" tcp mq_conf env OPENSSL_CONF="$T/openssl.cnf" SOFTHSM2_CONF="$SOFTHSM2_CONF" \
        mosquitto -c "$T/$1.conf" || srv_die "mosquitto ($1) did not start"
}
mq_start mq in-cse.pem
for v in tls1.2 tls1.3; do
    want=TLSv1.3; [ $v = tls1.2 ] && want=TLSv1.2
    srv_connect "$v" --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --$v
    srv_expect "$v" "mutual association with mosquitto, key in the token" 0 \
        "association established with $SRV_CSE (127.0.0.1:$port)" "protocol:  $want" "peer id:   $SRV_CSE" \
        "name:      dns:$SRV_FQDN" "anchor:    sp-root"
done
srv_log_has mq "mosquitto logs the TLS connections" "New connection from 127.0.0.1" 5
srv_connect json --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --json
srv_expect json "--json reports the server's identity" 0 '"verdict": "established"' "\"peer_id\": \"$SRV_CSE\""

srv_connect other --policy a-other.policy --peer /other-cse --to "127.0.0.1:$port"
srv_expect other "mosquitto's certificate lacks the name of peer /other-cse: refused" 1 \
    "refused: certificate does not carry dns:other-cse.sp.example.com"
for v in tls1.2 tls1.3; do
    srv_connect "client-look-$v" --policy a-look.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --$v
    srv_expect "client-look-$v" "mosquitto refuses a client certificate from a look-alike root" 1 "refused by the peer"
done
srv_log_has mq "mosquitto logs the refused client certificate" "certificate verify failed" 5
srv_connect again --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$port"
srv_expect again "mosquitto still serves a good client" 0 "peer id:   $SRV_CSE"
srv_stop mq

mq_start mq-look in-cse-look.pem
for v in tls1.2 tls1.3; do
    srv_connect "look-$v" --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --$v
    srv_expect "look-$v" "mosquitto with a certificate from a look-alike root is refused" 1 \
        "refused: " "anchor 'sp-root'"
done
srv_stop mq-look

srv_finish
