#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# `m2mtls keyref` and `m2mtls csr` with keys in a real SoftHSM token, as a
# user runs them: generate, list, write and show key references (reachable,
# wrong PIN, missing token, cached in session or not and why), a CSR signed
# inside the token, bad arguments.
# usage: test_keyref.sh PATH-TO-m2mtls PATH-TO-m2mtls.so [PATH-TO-fault_pkcs11.so]
set -u
M2MTLS=${1:?usage: test_keyref.sh PATH-TO-m2mtls PATH-TO-provider}
PROVIDER=${2:?usage: test_keyref.sh PATH-TO-m2mtls PATH-TO-provider}
FAULTS=${3:-}
MODULE=/usr/lib/softhsm/libsofthsm2.so
[ -r "$MODULE" ] || { echo "SoftHSM is not installed ($MODULE): apt-get install softhsm2"; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/m2mtls-keyref-XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT INT TERM
passed=0 failed=0
ok() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; sed 's/^/    out: /' "$T/out" "$T/err" 2>/dev/null | head -20; }
run() { "$M2MTLS" "$@" >"$T/out" 2>"$T/err"; rc=$?; }
expect() { # DESCRIPTION WANT-RC [TEXT-IN-OUTPUT]
    if [ "$rc" -ne "$2" ]; then fail "$1: exit $rc, expected $2"; return; fi
    if [ -n "${3:-}" ] && ! grep -qF -- "$3" "$T/out" "$T/err"; then fail "$1: no '$3' in the output"; return; fi
    ok
}

# the token and the openssl.cnf files: tests/servers/lib.sh
. "$(dirname "$0")/servers/lib.sh"
SOFTHSM=$MODULE
srv_softhsm_init "$T" kr 1234
srv_cnf "$T/good.cnf" 1234
srv_cnf "$T/badpin.cnf" 9999

run keyref --generate --token kr --label cse-b --id 0b --pin 1234
expect "generate a key in the token" 0 "pkcs11:token=kr;object=cse-b;id=%0B;type=private"
run keyref --generate --token nosuch --label x --pin 1234
expect "generate in a missing token" 2 "no token labelled 'nosuch'"
run keyref --generate --token kr --label y --pin 0000
expect "generate with a wrong PIN" 2 "C_Login: CKR_PIN_INCORRECT"
run keyref --list
expect "list without PIN shows the public key" 0 "pkcs11:token=kr;object=cse-b;id=%0B;type=public"
if grep -q "type=private" "$T/out"; then fail "list without PIN must not show private keys"; else ok; fi
echo 1234 >"$T/pin"
run keyref --list --pin "file:$T/pin"
expect "list with PIN (from a file) shows the private key" 0 "pkcs11:token=kr;object=cse-b;id=%0B;type=private"
run keyref --list --pin 1234 --json
if [ "$rc" -eq 0 ] && python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["tokens"][0]["token"]=="kr"; assert any(o["type"]=="private" for o in d["tokens"][0]["objects"])' <"$T/out"; then ok; else fail "list --json"; fi
run keyref --list --module /nonexistent/module.so
expect "list with a missing module" 2 "cannot load the PKCS#11 module /nonexistent/module.so"

run keyref --uri 'pkcs11:token=kr;object=cse-b;type=private' --out "$T/cse-b.pem"
expect "write a key reference" 0 "wrote"
if grep -q "BEGIN PKCS#11 PROVIDER URI" "$T/cse-b.pem"; then ok; else fail "key reference PEM label"; fi
OPENSSL_CONF=$T/good.cnf run keyref --show "$T/cse-b.pem"
expect "show: reachable through the provider" 0 "reachable: yes, EC prime256v1, 256 bits"
if grep -qx "  cached in session: yes" "$T/out"; then ok; else fail "show: the provider signs with a session copy (default)"; fi
OPENSSL_CONF=$T/good.cnf run keyref --show "$T/cse-b.pem" --json
if [ "$rc" -eq 0 ] && python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["reachable"] is True and d["uri"].startswith("pkcs11:"); assert d["cached_in_session"] is True and d["cache_why"] is None' <"$T/out"; then ok; else fail "show --json"; fi
srv_cnf "$T/nocache.cnf" 1234 last "$SOFTHSM" "pkcs11-module-cache-keys = false"
OPENSSL_CONF=$T/nocache.cnf run keyref --show "$T/cse-b.pem"
expect "show with the cache off" 0 "cached in session: no (pkcs11-module-cache-keys = false)"
OPENSSL_CONF=$T/nocache.cnf run keyref --show "$T/cse-b.pem" --json
if [ "$rc" -eq 0 ] && python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["cached_in_session"] is False and d["cache_why"]=="pkcs11-module-cache-keys = false"' <"$T/out"; then ok; else fail "show --json with the cache off"; fi
srv_cnf "$T/badcache.cnf" 1234 last "$SOFTHSM" "pkcs11-module-cache-keys = maybe"
OPENSSL_CONF=$T/badcache.cnf run keyref --show "$T/cse-b.pem"
expect "a bad pkcs11-module-cache-keys is a configuration error" 1 "pkcs11-module-cache-keys = maybe: expected true or false"
if [ -n "$FAULTS" ]; then
    # a token that refuses C_CopyObject: the key works, from the token object
    srv_cnf "$T/refuse.cnf" 1234 last "$FAULTS"
    echo "C_CopyObject CKR_ACTION_PROHIBITED" >"$T/faults"
    M2MTLS_FAULTS=$T/faults M2MTLS_FAULTS_MODULE=$MODULE OPENSSL_CONF=$T/refuse.cnf run keyref --show "$T/cse-b.pem"
    expect "show when the token refuses to copy" 0 "cached in session: no (C_CopyObject: CKR_ACTION_PROHIBITED)"
fi
OPENSSL_CONF=$T/badpin.cnf run keyref --show "$T/cse-b.pem"
expect "show with a wrong PIN: not reachable, and why" 1 "CKR_PIN_INCORRECT"
run keyref --uri 'pkcs11:token=gone;object=cse-b;type=private' --out "$T/gone.pem"
OPENSSL_CONF=$T/good.cnf run keyref --show "$T/gone.pem"
expect "show a reference to a missing token" 1 "reachable: no"
printf 'not a pem\n' >"$T/junk.pem"
run keyref --show "$T/junk.pem"
expect "show a file that is not a key reference" 2 "not a PEM file"
run keyref --show "$T/good.cnf"
expect "show a missing-label file" 2 "not a PEM file"
run keyref --uri 'http://x' --out "$T/x.pem"
expect "--uri must be pkcs11:" 2 "pkcs11:"
run keyref --list --show "$T/cse-b.pem"
expect "two modes at once" 2 "exactly one of"
run keyref --generate --token kr --label z --id 0g --pin 1234
expect "bad --id" 2 "hex digits"
run keyref --help
expect "keyref --help" 0 "--generate"

OPENSSL_CONF=$T/good.cnf run csr --key "$T/cse-b.pem" --cse-fqdn in-cse.sp.example.com --out "$T/b.csr"
expect "csr signed inside the token" 0
if openssl req -in "$T/b.csr" -noout -verify 2>&1 | grep -q "verify OK" && openssl req -in "$T/b.csr" -noout -text | grep -q "DNS:in-cse.sp.example.com"; then ok; else fail "the CSR verifies and carries the dNSName"; fi
# The RFC 6920 key id --show prints is the SHA-256 of the token key's
# SubjectPublicKeyInfo (here read from the CSR made in the token), base64url.
want_id=$(openssl req -in "$T/b.csr" -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary \
          | base64 | tr '+/' '-_' | tr -d '=\n')
OPENSSL_CONF=$T/good.cnf run keyref --show "$T/cse-b.pem"
expect "show: the token key's RFC 6920 id" 0 "  key id:    key:sha-256;$want_id"
OPENSSL_CONF=$T/good.cnf run keyref --show "$T/cse-b.pem" --json
if [ "$rc" -eq 0 ] && python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["key_id"]==sys.argv[1], d' "key:sha-256;$want_id" <"$T/out"; then ok; else fail "show --json: key_id"; fi
OPENSSL_CONF=$T/badpin.cnf run keyref --show "$T/cse-b.pem" --json
if [ "$rc" -eq 1 ] && python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["key_id"] is None, d' <"$T/out"; then ok; else fail "show --json: no key_id when unreachable"; fi
OPENSSL_CONF=$T/good.cnf run csr --key 'pkcs11:token=kr;object=cse-b;type=private' --ae-id //sp.example.com/in-cse/Cx
expect "csr with a pkcs11: URI" 0 "BEGIN CERTIFICATE REQUEST"
OPENSSL_CONF=$T/badpin.cnf run csr --key "$T/cse-b.pem" --cse-fqdn a.example.com
expect "csr with a wrong PIN" 2 "CKR_PIN_INCORRECT"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
