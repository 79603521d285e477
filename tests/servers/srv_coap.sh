#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# libcoap's coap-server-openssl, unmodified, run by examples/servers/coap-server.sh:
# CoAP over DTLS 1.2 with its private key generated inside a SoftHSM token and
# named by a key reference PEM (-j), OPENSSL_CONF loading the m2mtls provider,
# client certificates verified against the CA file (-C). `m2mtls connect
# --dtls` completes the mutual association and reports the server's identity
# /in-cse. Refusals: a server certificate from a look-alike root (m2mtls
# connect exits 1), a peer id whose name the server's certificate lacks
# (exit 1), a client from a look-alike root (coap-server refuses it); the
# server keeps serving. Then coap-client-openssl (a real CoAP client) GETs
# /.well-known/core from it over DTLS with its own certificate.
# usage: srv_coap.sh PATH-TO-m2mtls PATH-TO-m2mtls.so
. "$(dirname "$0")/lib.sh"
srv_init coap "$@"
srv_need_cmd libcoap3-bin coap-server-openssl coap-client-openssl

srv_token_pki in-cse
# libcoap itself: on OpenSSL >= 3.2 with the TS-0003 DTLS suite enabled (its own copy)
srv_dtls_cnf "$T/openssl-dtls.cnf" "$SOFTHSM" 1234
timeout 5 coap-server-openssl -h </dev/null 2>&1 | sed -n 's/^\(coap-server-openssl v.*\)/tested: \1/p; s/^\(TLS Library: .*\)/tested: \1/p'

# the server's files, as examples/servers/coap-server.sh expects them in M2MTLS_ETC
mkdir good look
cp in-cse.pem in-cse.keyref.pem sp-root.pem good/
cp in-cse.keyref.pem sp-root.pem look/; cp in-cse-look.pem look/in-cse.pem
coap_start() { # NAME ETC: coaps on $port + 1 (UDP)
    srv_start_port "$1" coap : env OPENSSL_CONF="$T/openssl-dtls.cnf" SOFTHSM2_CONF="$SOFTHSM2_CONF" \
        M2MTLS_ETC="$T/$2" COAP_PORT=@PORT@ sh "$SRV_EXAMPLES/coap-server.sh" \
        || srv_die "coap-server-openssl ($1) did not start"
    dport=$((port + 1))
}

coap_start coap good
srv_connect dtls --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$dport" --dtls
srv_expect dtls "mutual DTLS association with coap-server-openssl, key in the token" 0 \
    "association established with $SRV_CSE (127.0.0.1:$dport)" "protocol:  DTLSv1.2" "peer id:   $SRV_CSE" \
    "name:      dns:$SRV_FQDN" "anchor:    sp-root"
srv_log_has coap "coap-server verified Entity A's certificate" "CN 'Cae1' presented by client (Certificate)"
srv_connect json --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$dport" --dtls --json
srv_expect json "--json reports the server's identity" 0 '"verdict": "established"' "\"peer_id\": \"$SRV_CSE\""
srv_connect other --policy a-other.policy --peer /other-cse --to "127.0.0.1:$dport" --dtls
srv_expect other "the server's certificate lacks the name of peer /other-cse: refused" 1 \
    "refused: certificate does not carry dns:other-cse.sp.example.com"
srv_connect client-look --policy a-look.policy --peer "$SRV_CSE" --to "127.0.0.1:$dport" --dtls
srv_expect client-look "coap-server refuses a client certificate from a look-alike root" 1 "refused by the peer"
# (libcoap 4.3.1 logs OpenSSL's "certificate verify failed", 4.3.5 the X.509 reason)
if srv_wait_log coap "unable to get local issuer certificate: 'Cae1'" 1; then srv_ok "coap: coap-server logs the refusal"
else srv_log_has coap "coap-server logs the refusal" "certificate verify failed"; fi
srv_connect again --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$dport" --dtls
srv_expect again "coap-server still serves a good client" 0 "peer id:   $SRV_CSE"

# a real CoAP request over the same DTLS server, by libcoap's client with Entity A's certificate
srv_run coap-client 20 env OPENSSL_CONF="$T/openssl-dtls.cnf" coap-client-openssl -B 10 -c ae1.pem -j ae1.key -C sp-root.pem -m get \
    "coaps://127.0.0.1:$dport/.well-known/core"
srv_expect coap-client "coap-client-openssl GETs /.well-known/core over DTLS (key in the token)" 0 "</>"
srv_stop coap

coap_start coap-look look
srv_connect look --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$dport" --dtls
srv_expect look "coap-server with a certificate from a look-alike root is refused" 1 "refused: " "anchor 'sp-root'"
srv_stop coap-look

srv_finish
