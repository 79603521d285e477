#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# `openssl s_server` with the private key in a PKCS#11 token, client
# certificates required: the smallest way to see a token-held key at work.
#
#     s_server.sh               (environment: M2MTLS_ETC, PORT, KEY)
#
# KEY is the key reference PEM (default) or a pkcs11: URI, which s_server
# takes too: -key 'pkcs11:token=in-cse;object=tls;type=private'.
# tests/servers/srv_openssl.sh runs this very file.
ETC=${M2MTLS_ETC:-/etc/m2mtls}
OPENSSL_CONF=${OPENSSL_CONF:-$ETC/openssl.cnf}
export OPENSSL_CONF
#   -Verify 2 -verify_return_error   a client certificate is required and must verify
#   -www                             answers GET / with a status page (shows the client certificate)
exec openssl s_server -accept "127.0.0.1:${PORT:-4433}" \
    -cert "$ETC/in-cse.pem" -key "${KEY:-$ETC/in-cse.keyref.pem}" \
    -CAfile "$ETC/sp-root.pem" -Verify 2 -verify_return_error -www
