#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The example registrar CSE (m2mtls-example-cse) as it runs in production:
#   - its private key stays in a PKCS#11 token: OPENSSL_CONF loads the m2mtls
#     provider, and -k is a key reference PEM (examples/servers/openssl.cnf,
#     make-keyref.sh);
#   - the TS-0003 policy is put on its DTLS sessions by the preload
#     (LD_PRELOAD, M2MTLS_POLICY; M2MTLS_RELOAD=N re-reads a changed policy);
#   - the CSE itself adds only the 7.2.1 From check (registrar.c).
#
#     run-cse.sh        (environment: M2MTLS_ETC, M2MTLS_PRELOAD, M2MTLS_CSE,
#                        CSE_ADDRESS, CSE_PORT, CSE_BASE; M2MTLS_RELOAD, M2MTLS_LOG)
#
# tests/servers/srv_cse.sh runs this very file.
ETC=${M2MTLS_ETC:-/etc/m2mtls}
OPENSSL_CONF=${OPENSSL_CONF:-$ETC/openssl.cnf}
M2MTLS_POLICY=${M2MTLS_POLICY:-$ETC/in-cse.policy}
LD_PRELOAD=${M2MTLS_PRELOAD-/usr/local/lib/libm2mtls-preload.so}   # empty: none (the CSE then refuses everyone)
export OPENSSL_CONF M2MTLS_POLICY LD_PRELOAD
#   -c  the CSE's certificate (subjectAltName DNS:in-cse.sp.example.com)
#   -k  its private key: the key reference PEM (libcoap reads it with
#       SSL_CTX_use_PrivateKey_file; the provider signs in the token)
#   -C  the CA libcoap names to clients when it asks for their certificate
#       (the policy decides which certificates are accepted)
exec "${M2MTLS_CSE:-m2mtls-example-cse}" -A "${CSE_ADDRESS:-127.0.0.1}" -p "${CSE_PORT:-5684}" -b "${CSE_BASE:-in-cse}" \
    -c "$ETC/in-cse.pem" -k "$ETC/in-cse.keyref.pem" -C "$ETC/sp-root.pem"
