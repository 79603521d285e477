#!/usr/bin/env bash
# The quick-start example until `m2mtls demo` exists: generates a small oneM2M
# PKI with the openssl command, writes a responder policy, and shows
# `m2mtls inspect` accepting and refusing certificates, with the reasons.
# usage: examples/inspect-demo.sh M2MTLS-BINARY [--keep DIR]
set -euo pipefail
m2mtls=$(realpath "${1:?usage: $0 M2MTLS-BINARY [--keep DIR]}")
if [ "${2:-}" = "--keep" ]; then
  dir=${3:?--keep needs a directory}; mkdir -p "$dir"
else
  dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
fi
cd "$dir"

key()  { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
root() { # root NAME CN
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 3650 -out "$1.pem" \
    -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
leaf() { # leaf NAME CN SAN ISSUER
  key "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr" 2>/dev/null
  printf 'subjectAltName=%s\nkeyUsage=critical,digitalSignature\nbasicConstraints=CA:false\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$4.pem" -CAkey "$4.key" -CAcreateserial -days 365 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}

echo "== Credential Configuration: a root of trust for AEs, and AE certificates"
root ae-root "oneM2M AE Root"
root lookalike "oneM2M AE Root"          # same subject name, another key
leaf sensor7 "Csensor7" "URI://sp.example.com/CSE-1/Csensor7" ae-root
leaf wrongname "Csensor8" "URI://sp.example.com/CSE-1/Csensor8" ae-root
leaf forged "Csensor7" "URI://sp.example.com/CSE-1/Csensor7" lookalike
leaf cnonly '\/\/sp.example.com\/CSE-1\/Csensor7' "DNS:unrelated.example.com" ae-root

echo "== Association Configuration: the responder's policy (IN-CSE, IdB = /CSE-1)"
cat > policy.conf <<POLICY
local-id /CSE-1
anchor   ae-root ae-root.pem
# IdA, CertNameA, RootOfTrustA
peer     //sp.example.com/CSE-1/Csensor7 uri://sp.example.com/CSE-1/Csensor7 ae-root
POLICY
sed 's/^/    /' policy.conf
"$m2mtls" policy check policy.conf

show() { # show TITLE CERT
  echo; echo "== $1"; echo "\$ m2mtls inspect --policy policy.conf $2"
  "$m2mtls" inspect --policy policy.conf "$2" || true
}
show "Security Handshake check: the configured AE" sensor7.pem
show "Refused: a certificate with another name" wrongname.pem
show "Refused: the right name from a look-alike root (same subject, other key)" forged.pem
show "Refused: the identity only in the subject CN" cnonly.pem
