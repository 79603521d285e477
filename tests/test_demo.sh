#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# `m2mtls demo`, run as a user would: every phase shows, it exits 0, it cleans
# up after itself, and --keep leaves the templates.
# usage: test_demo.sh PATH-TO-m2mtls
set -u
M2MTLS=${1:?usage: test_demo.sh PATH-TO-m2mtls}
T=$(mktemp -d "${TMPDIR:-/tmp}/m2mtls-demo-test-XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT INT TERM
passed=0 failed=0
check() { # DESCRIPTION COMMAND...
    d=$1; shift
    if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $d"; fi
}
has() { grep -qF -- "$1" "$T/out"; }
count() { [ "$(grep -cF -- "$1" "$T/out")" -ge "$2" ]; }

TMPDIR=$T timeout 120 "$M2MTLS" demo >"$T/out" 2>&1
rc=$?
check "exit status 0 (got $rc)" [ "$rc" -eq 0 ]
check "credential phase" has "== Credential Configuration"
check "keys generated inside the token" has "generated INSIDE the token"
check "association phase with both policies" has "entity-a.policy:"
check "TLS 1.2 with the TS-0003 suite" has "TLSv1.2, ECDHE-ECDSA-AES128-SHA256"
check "TLS 1.3" has "protocol:  TLSv1.3"
check "DTLS 1.2 with CCM8" has "DTLSv1.2, ECDHE-ECDSA-AES128-CCM8"
check "A bound IdB three times (and a resumption)" count "peer id:   /in-cse" 4
check "resumption keeps the label" has "resumed:   yes"
check "B bound IdA" count "accepted peer=//sp.example.com/in-cse/Csensor7" 4
check "wrong name refused by B" has "refused reason=\"no association matches the certificate's names [uri://sp.example.com/in-cse/Cmallory]; nor is its key key:sha-256;"
check "look-alike root refused by A" has "fails its Root of Trust: anchor 'cse-root'"
check "Entity C, known by its key" has "== Entity C by its key"
check "B bound IdC by its key (TLS 1.3 and DTLS 1.2)" count "accepted peer=//sp.example.com/in-cse/Cmeter3 local=/in-cse name=key:sha-256;" 2
check "C bound IdB by B's key" count "C |   name:      key:sha-256;" 2
if openssl version | grep -Eq '^OpenSSL (3\.([2-9]|[1-9][0-9])|[4-9])\.'; then
    check "RFC 7250 raw public keys (OpenSSL >= 3.2)" count "C |   presented: raw public key (RFC 7250)" 2
else
    check "the keys in certificates (OpenSSL 3.0)" count "C |   presented: certificate" 2
fi
check "final verdict" has "Done: every association went as the policies say"
check "the temporary directory is removed" [ -z "$(ls "$T" | grep m2mtls-demo-)" ]

timeout 120 "$M2MTLS" demo --keep "$T/kept" >"$T/out2" 2>&1
rc=$?
check "--keep exit status 0 (got $rc)" [ "$rc" -eq 0 ]
for f in softhsm2.conf openssl.cnf pin entity-a.policy entity-b.policy entity-a.key.pem entity-b.key.pem \
         entity-a.cert.pem entity-b.cert.pem cse-root.pem ae-root.pem entity-c.policy entity-c.key.pem \
         entity-c.cert.pem; do
    check "--keep left $f" [ -s "$T/kept/$f" ]
done
check "the key reference is not a private key" grep -q "BEGIN PKCS#11 PROVIDER URI" "$T/kept/entity-b.key.pem"
check "the kept policy loads" "$M2MTLS" policy check "$T/kept/entity-b.policy"
check "the kept policy of C loads" "$M2MTLS" policy check "$T/kept/entity-c.policy"
check "demo --help" "$M2MTLS" demo --help
"$M2MTLS" demo --bogus >/dev/null 2>&1
check "bad option exits 2" [ $? -eq 2 ]
[ "$failed" -eq 0 ] || { echo "--- demo output:"; cat "$T/out"; }
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
