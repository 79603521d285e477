#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# libcoap's coap-server-openssl (unmodified) as a CoAP-over-DTLS oneM2M CSE
# whose private key stays in a PKCS#11 token; every client must present a
# certificate that chains to the SP root.
#
#     coap-server.sh            (environment: M2MTLS_ETC, COAP_ADDRESS, COAP_PORT)
#
# coap-server-openssl listens on COAP_PORT for CoAP (UDP, TCP) and on
# COAP_PORT+1 for CoAPS (DTLS 1.2; TLS too): 5683 and 5684 by default.
# tests/servers/srv_coap.sh runs this very file.
ETC=${M2MTLS_ETC:-/etc/m2mtls}
# OpenSSL reads this when libcoap initialises it: the m2mtls provider is loaded
OPENSSL_CONF=${OPENSSL_CONF:-$ETC/openssl.cnf}
export OPENSSL_CONF
#   -c  the CSE certificate (PEM; subjectAltName DNS:in-cse.sp.example.com)
#   -j  its private key: the key reference PEM, read by the m2mtls provider.
#       (Not a pkcs11: URI: libcoap hands those to OpenSSL's pkcs11 ENGINE,
#       and then wants every other file in DER.)
#   -C  the CA file: sent to clients as acceptable CAs and trusted for client
#       certificates, whose verification it turns on
#   -v  3 = notices; 6 shows each DTLS session
exec coap-server-openssl -A "${COAP_ADDRESS:-127.0.0.1}" -p "${COAP_PORT:-5683}" \
    -c "$ETC/in-cse.pem" -j "$ETC/in-cse.keyref.pem" -C "$ETC/sp-root.pem" -v "${COAP_VERBOSITY:-6}"
