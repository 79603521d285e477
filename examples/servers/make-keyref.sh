#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# make-keyref.sh URI OUT: writes OUT, a key reference PEM for the token key URI
# (e.g. 'pkcs11:token=in-cse;object=tls;type=private'). A server configured
# with OUT as its private key file signs inside the token through the m2mtls
# provider; OUT holds no key material. Format (the pkcs11-provider project's):
#     -----BEGIN PKCS#11 PROVIDER URI-----
#     base64 of DER SEQUENCE { VisibleString "PKCS#11 Provider URI v1.0", UTF8String URI }
set -eu
[ $# -eq 2 ] || { echo "usage: make-keyref.sh pkcs11:URI OUT.pem" >&2; exit 2; }
case $1 in pkcs11:*) ;; *) echo "make-keyref.sh: '$1' is not a pkcs11: URI" >&2; exit 2 ;; esac
case $1 in *'
'*|*'$'*|*'#'*) echo "make-keyref.sh: the URI has a character this helper does not write (newline, \$, #)" >&2; exit 2 ;; esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'asn1=SEQUENCE:ref\n[ref]\ndesc=VISIBLESTRING:PKCS\\#11 Provider URI v1.0\nuri=UTF8String:%s\n' "$1" >"$tmp/ref.cnf"
OPENSSL_CONF=/dev/null openssl asn1parse -genconf "$tmp/ref.cnf" -out "$tmp/ref.der" -noout
{
    echo "-----BEGIN PKCS#11 PROVIDER URI-----"
    openssl base64 -e -in "$tmp/ref.der"
    echo "-----END PKCS#11 PROVIDER URI-----"
} >"$2"
