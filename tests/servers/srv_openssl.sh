#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# `openssl s_server`, unmodified, with its private key generated inside a
# SoftHSM token and named by a key reference PEM (-key ref.pem) or by a pkcs11:
# URI (-key pkcs11:...), OPENSSL_CONF loading the m2mtls provider; client
# certificates required (-Verify). `m2mtls connect` (Entity A) completes the
# mutual association over TLS 1.2 and TLS 1.3 and reports the server's identity
# /in-cse; refusals: a server certificate from a look-alike root (refused by
# m2mtls connect), a client certificate from a look-alike root (refused by
# s_server), a peer id whose name the server does not carry.
# usage: srv_openssl.sh PATH-TO-m2mtls PATH-TO-m2mtls.so
. "$(dirname "$0")/lib.sh"
srv_init openssl "$@"

srv_token_pki in-cse
URI='pkcs11:token=in-cse;object=server;type=private'
# the shipped helper writes the same file as srv_keyref
sh "$SRV_EXAMPLES/make-keyref.sh" "$URI" "$T/helper.keyref.pem" 2>"$T/helper.err"
if cmp -s "$T/in-cse.keyref.pem" "$T/helper.keyref.pem"; then srv_ok "make-keyref.sh writes the key reference PEM"
else srv_fail "make-keyref.sh: output differs"; srv_show "$T/in-cse.keyref.pem" "$T/helper.keyref.pem" "$T/helper.err"; fi
# m2mtls csr signs the TS-0003 request in the token too (the other way to get the CSE certificate)
srv_run csr 20 env OPENSSL_CONF="$T/openssl.cnf" "$M2MTLS" csr --key "$T/in-cse.keyref.pem" --cse-fqdn "$SRV_FQDN" --out csr.pem
srv_expect csr "m2mtls csr --key <key reference> --cse-fqdn: request signed in the token" 0
srv_run csr-check 10 openssl req -in csr.pem -verify -noout -text
srv_expect csr-check "the request verifies and carries DNS:$SRV_FQDN" 0 "verify OK" "DNS:$SRV_FQDN" "Digital Signature"

# examples/servers/s_server.sh, as a user would run it: only OPENSSL_CONF
# tells openssl about the provider; TLS 1.2/1.3, client certificate required
mkdir ref uri look
for d in ref uri look; do cp sp-root.pem "$d/"; done
cp in-cse.pem ref/; cp in-cse.pem uri/; cp in-cse-look.pem look/in-cse.pem


# ---- the key reference PEM ---------------------------------------------------------------
srv_s_server_start ref "$T/in-cse.keyref.pem" "$T/openssl.cnf"
for v in tls1.2 tls1.3; do
    srv_connect "ref-$v" --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --$v --send "$GET"
    want=TLSv1.3; [ $v = tls1.2 ] && want=TLSv1.2
    srv_expect "ref-$v" "association with s_server (key reference)" 0 \
        "association established with $SRV_CSE (127.0.0.1:$port)" "peer id:   $SRV_CSE" \
        "name:      dns:$SRV_FQDN" "anchor:    sp-root" "protocol:  $want" "HTTP/1.0 200 ok"
done
# the server saw and verified Entity A's certificate (s_server -www prints the client's)
# a client from a look-alike root: s_server refuses it (-Verify, -verify_return_error)
srv_connect ref-client-look --policy a-look.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --tls1.2
srv_expect "ref-client-look" "s_server refuses a client certificate from a look-alike root" 1 "refused by the peer"
srv_connect ref-client-look13 --policy a-look.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --tls1.3
srv_expect "ref-client-look13" "the same in TLS 1.3" 1 "refused by the peer"
# an association whose name the server's certificate does not carry
srv_connect ref-other --policy a-other.policy --peer /other-cse --to "127.0.0.1:$port"
srv_expect "ref-other" "a peer id whose certificate name the server lacks is refused by m2mtls" 1 \
    "refused: " "other-cse.sp.example.com"
# a good client still gets through
srv_connect ref-again --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$port"
srv_expect "ref-again" "s_server still serves after the refusals" 0 "peer id:   $SRV_CSE"
srv_stop ref

# ---- the pkcs11: URI ---------------------------------------------------------------------
srv_s_server_start uri "$URI" "$T/openssl.cnf"
for v in tls1.2 tls1.3; do
    srv_connect "uri-$v" --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --$v --json
    srv_expect "uri-$v" "association with s_server (pkcs11: URI)" 0 '"verdict": "established"' "\"peer_id\": \"$SRV_CSE\""
done
srv_stop uri

# ---- a server certificate from a look-alike root (same subject, another key) -------------
srv_s_server_start look "$T/in-cse.keyref.pem" "$T/openssl.cnf"
for v in tls1.2 tls1.3; do
    srv_connect "look-$v" --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --$v
    srv_expect "look-$v" "a server certificate from a look-alike root is refused by m2mtls connect" 1 \
        "refused: " "anchor 'sp-root'"
done
srv_stop look

srv_finish
