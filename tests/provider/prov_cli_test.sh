#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Unmodified openssl commands driven by an openssl.cnf that loads the provider:
# pkeyutl -sign, req -new -key pkcs11:..., req -x509 with a key reference file,
# storeutl, dgst -sign, pkey -text_pub/-pubcheck, cms -sign, x509 -req -CAkey,
# x509 -new (3.4+), s_server with key and certificate in the token against
# s_client (TLS 1.2 and 1.3), a wrong PIN; with the provider listed after and
# before default. Runs on Debian 12 (OpenSSL 3.0) and Debian 13 (3.5).
# usage: prov_cli_test.sh MODULE SOFTHSM SOFTHSM2_UTIL PKCS11_TOOL OPENSSL
set -euo pipefail
module=$1 softhsm=$2 util=$3 p11tool=$4 openssl=$5
dir=$(mktemp -d /tmp/m2p-cli-XXXXXX)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# the token, the openssl.cnf files and the key reference: tests/servers/lib.sh
T=$dir PROVIDER=$module SOFTHSM=$softhsm
PATH=$(dirname "$util"):$(dirname "$p11tool"):$PATH   # softhsm2-util and pkcs11-tool as CMake found them
. "$(dirname "$0")/../servers/lib.sh"
srv_softhsm_init "$dir" cli 1234
srv_softhsm_keygen cli 1234 EC:prime256v1 01 ec
srv_softhsm_keygen cli 1234 rsa:2048 02 rsa
echo 1234 > "$dir/pin"
srv_cnf "$dir/last.cnf" "file:$dir/pin" last
srv_cnf "$dir/first.cnf" 1234 first
srv_cnf "$dir/wrong.cnf" 0000 last
srv_keyref 'pkcs11:token=cli;object=ec;type=private' "$dir/ec-ref.pem"
grep -q 'PKCS#11 Provider URI v1.0' <(OPENSSL_CONF=/dev/null "$openssl" asn1parse -in "$dir/ec-ref.pem") \
  || fail "key reference DER"

EC='pkcs11:token=cli;object=ec'
RSA='pkcs11:token=cli;object=rsa'
echo "data to sign" > "$dir/data"
OPENSSL_CONF=/dev/null "$openssl" dgst -sha256 -binary -out "$dir/hash" "$dir/data"

for order in last first; do
  export OPENSSL_CONF=$dir/$order.cnf
  echo "== provider listed $order"
  "$openssl" pkey -in "$EC;type=public" -pubin -pubout -out "$dir/ec.pub"
  "$openssl" pkey -in "$RSA;type=public" -pubin -pubout -out "$dir/rsa.pub"
  "$openssl" pkeyutl -sign -inkey "$EC;type=private" -rawin -digest sha256 -in "$dir/data" -out "$dir/ec.sig"
  OPENSSL_CONF=/dev/null "$openssl" pkeyutl -verify -pubin -inkey "$dir/ec.pub" -rawin -digest sha256 \
    -in "$dir/data" -sigfile "$dir/ec.sig" | grep -q 'Verified Successfully' || fail "ECDSA pkeyutl ($order)"
  "$openssl" pkeyutl -sign -inkey "$RSA" -pkeyopt digest:sha256 -in "$dir/hash" -out "$dir/rsa.sig"
  OPENSSL_CONF=/dev/null "$openssl" pkeyutl -verify -pubin -inkey "$dir/rsa.pub" -pkeyopt digest:sha256 \
    -in "$dir/hash" -sigfile "$dir/rsa.sig" | grep -q 'Verified Successfully' || fail "RSA pkeyutl ($order)"
  "$openssl" pkeyutl -sign -inkey "$RSA" -pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pss \
    -pkeyopt rsa_pss_saltlen:digest -in "$dir/hash" -out "$dir/pss.sig"
  OPENSSL_CONF=/dev/null "$openssl" pkeyutl -verify -pubin -inkey "$dir/rsa.pub" -pkeyopt digest:sha256 \
    -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:digest -in "$dir/hash" -sigfile "$dir/pss.sig" \
    | grep -q 'Verified Successfully' || fail "RSA-PSS pkeyutl ($order)"
  "$openssl" req -new -key "$EC" -subj "/CN=ec.cli.example" -out "$dir/ec.csr"
  OPENSSL_CONF=/dev/null "$openssl" req -in "$dir/ec.csr" -verify -noout 2>&1 | grep -q 'verify OK' \
    || fail "req -new ECDSA ($order)"
  "$openssl" req -new -key "$RSA" -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 \
    -subj "/CN=rsa.cli.example" -out "$dir/rsa.csr"
  OPENSSL_CONF=/dev/null "$openssl" req -in "$dir/rsa.csr" -verify -noout 2>&1 | grep -q 'verify OK' \
    || fail "req -new RSA-PSS ($order)"
  "$openssl" req -x509 -new -key "$dir/ec-ref.pem" -subj "/CN=localhost" -days 2 -out "$dir/ec-$order.crt"
  OPENSSL_CONF=/dev/null "$openssl" verify -CAfile "$dir/ec-$order.crt" "$dir/ec-$order.crt" | grep -q OK \
    || fail "req -x509 with key reference ($order)"
  # more of what the openssl commands ask of a token key (the same on 3.0 and 3.5)
  "$openssl" dgst -sha256 -sign "$EC" -out "$dir/dgst.sig" "$dir/data"
  OPENSSL_CONF=/dev/null "$openssl" dgst -sha256 -verify "$dir/ec.pub" -signature "$dir/dgst.sig" "$dir/data" \
    | grep -q 'Verified OK' || fail "dgst -sign ($order)"
  "$openssl" pkey -in "$EC;type=private" -text_pub -noout | grep -q 'NIST CURVE: P-256' \
    || fail "pkey -text_pub of a token key ($order)"
  "$openssl" pkey -in "$EC;type=private" -pubcheck -noout >/dev/null || fail "pkey -pubcheck ($order)"
  "$openssl" storeutl -keys "$EC" | grep -q 'Total found: 1' || fail "storeutl -keys ($order)"
  "$openssl" cms -sign -nodetach -in "$dir/data" -signer "$dir/ec-$order.crt" -inkey "$EC" -out "$dir/cms.pem" \
    -outform PEM
  OPENSSL_CONF=/dev/null "$openssl" cms -verify -in "$dir/cms.pem" -inform PEM -CAfile "$dir/ec-$order.crt" \
    -out /dev/null 2>&1 | grep -q 'Verification successful' || fail "cms -sign ($order)"
  # a CA whose key is the token's RSA key issues a certificate for the token's EC key
  "$openssl" req -x509 -new -key "$RSA" -subj "/CN=token CA" -days 2 -out "$dir/ca-$order.crt" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
  "$openssl" x509 -req -in "$dir/ec.csr" -CA "$dir/ca-$order.crt" -CAkey "$RSA" -days 1 -out "$dir/issued.crt"
  OPENSSL_CONF=/dev/null "$openssl" verify -CAfile "$dir/ca-$order.crt" "$dir/issued.crt" \
    | grep -q OK || fail "x509 -req -CAkey in the token ($order)"
  # x509 -new: OpenSSL 3.4 and later
  if [ "$("$openssl" version | awk '{ split($2, v, "."); print (v[1] > 3 || (v[1] == 3 && v[2] >= 4)) }')" = 1 ]; then
    "$openssl" x509 -new -key "$EC" -subj "/CN=x509-new" -days 1 -out "$dir/new.crt"
    OPENSSL_CONF=/dev/null "$openssl" verify -CAfile "$dir/new.crt" "$dir/new.crt" | grep -q OK \
      || fail "x509 -new with a token key ($order)"
  fi

  # the certificate goes into the token too: s_server -key pkcs11:... -cert pkcs11:...
  if [ "$order" = last ]; then
    cp "$dir/ec-$order.crt" "$dir/ec.crt"
    OPENSSL_CONF=/dev/null "$openssl" x509 -in "$dir/ec.crt" -outform DER -out "$dir/ec.der"
    "$p11tool" --module "$softhsm" --token-label cli --login --pin 1234 --write-object "$dir/ec.der" \
      --type cert --id 01 --label ec >/dev/null 2>&1 || fail "storing the certificate in the token"
  fi
  "$openssl" storeutl -certs "$EC;type=cert" | grep -q 'BEGIN CERTIFICATE' || fail "storeutl -certs ($order)"
  # a free port: retry when s_server cannot bind; the readiness probe is the
  # first of the three connections it accepts
  for attempt in 1 2 3 4 5; do
    port=$(( 20000 + RANDOM % 30000 ))
    "$openssl" s_server -accept "127.0.0.1:$port" -key "$EC" -cert "$EC;type=cert" -naccept 3 -www \
      > "$dir/server.log" 2>&1 &
    server_pid=$!
    up=
    for _ in $(seq 50); do
      kill -0 "$server_pid" 2>/dev/null || break
      if (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null; then up=1; break; fi
      sleep 0.1
    done
    [ -n "$up" ] && break
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  done
  [ -n "$server_pid" ] || { cat "$dir/server.log"; fail "s_server did not start ($order)"; }
  for v in -tls1_2 -tls1_3; do
    echo | OPENSSL_CONF=/dev/null "$openssl" s_client -connect "127.0.0.1:$port" $v -groups P-256 \
      -CAfile "$dir/ec.crt" -verify_return_error -brief > "$dir/client.log" 2>&1 \
      || { cat "$dir/client.log" "$dir/server.log"; fail "s_client $v ($order)"; }
    grep -q 'Verification: OK' "$dir/client.log" || { cat "$dir/client.log"; fail "verify $v ($order)"; }
  done
  wait "$server_pid" || true
  server_pid=
done

export OPENSSL_CONF=$dir/wrong.cnf
if "$openssl" pkeyutl -sign -inkey "$EC" -rawin -digest sha256 -in "$dir/data" -out "$dir/x" 2> "$dir/err"; then
  fail "signing with a wrong PIN succeeded"
fi
grep -q 'C_Login: CKR_PIN_INCORRECT' "$dir/err" || { cat "$dir/err"; fail "no clear wrong-PIN error"; }
echo "all openssl command tests passed"
