#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# A server key held by a TPM 2.0: the test starts the swtpm simulator (with
# tpm2-abrmd as resource manager on a private D-Bus session bus), makes a
# tpm2-pkcs11 token in a temporary store (tpm2_ptool) and generates an ECDSA
# P-256 key inside the TPM; the m2mtls provider's pkcs11-module-path is
# libtpm2_pkcs11.so. The CSR is signed in the TPM, the root signs the CSE
# certificate. Then `openssl s_server` (key reference PEM, and pkcs11: URI)
# and nginx (key reference PEM, a worker forked from the master signs) serve
# with the TPM key, and `m2mtls connect` completes the mutual association over
# TLS 1.2 and 1.3 and reports the server's identity; a look-alike server
# certificate on the same TPM key is refused. Everything is stopped at the end.
# usage: srv_tpm.sh PATH-TO-m2mtls PATH-TO-m2mtls.so
. "$(dirname "$0")/lib.sh"
srv_init tpm "$@"
srv_find_lib TPM2_PKCS11_MODULE libtpm2-pkcs11-1 /usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so \
    /usr/lib/x86_64-linux-gnu/libtpm2_pkcs11.so.1 /usr/lib/pkcs11/libtpm2_pkcs11.so

srv_swtpm_start "$T/tpm"
srv_tpm2_token "$T/tpm2-store" in-cse 1234
srv_provider_cnf "$T/openssl.cnf" "$TPM2_PKCS11_MODULE" 1234
URI='pkcs11:token=in-cse;object=server;type=private'
srv_keyref "$URI" "$T/in-cse.keyref.pem"
swtpm --version 2>&1 | sed -n '1s/^/tested: /p'
dpkg-query -W -f 'tested: ${Package} ${Version}\n' libtpm2-pkcs11-1 tpm2-abrmd tpm2-tools 2>/dev/null

# the public key comes out of the TPM; the CSR is signed by the TPM
OPENSSL_CONF=$T/openssl.cnf openssl pkey -in 'pkcs11:token=in-cse;object=server;type=public' -pubin \
    -text -noout >"$T/pub.out" 2>&1
if grep -q 'NIST CURVE: P-256' "$T/pub.out"; then srv_ok "the TPM key is an ECDSA P-256 key, read through the provider"
else srv_fail "public key of the TPM key"; srv_show "$T/pub.out"; fi
srv_standard_pki "$T/openssl.cnf" "$T/in-cse.keyref.pem"
srv_ok "a CSR signed inside the TPM verifies; the CSE certificate is issued for the TPM key"
cd "$T" || exit 1
mkdir ref uri look
for d in ref uri look; do cp sp-root.pem "$d/"; done
cp in-cse.pem ref/; cp in-cse.pem uri/; cp in-cse-look.pem look/in-cse.pem

# ---- openssl s_server ------------------------------------------------------------------
srv_s_server_start ref "$T/in-cse.keyref.pem" "$T/openssl.cnf"
for v in tls1.2 tls1.3; do
    want=TLSv1.3; [ $v = tls1.2 ] && want=TLSv1.2
    srv_connect "s_server-ref-$v" --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --$v --send "$GET"
    srv_expect "s_server-ref-$v" "mutual association with s_server, key in the TPM (key reference)" 0 \
        "association established with $SRV_CSE (127.0.0.1:$port)" "protocol:  $want" "peer id:   $SRV_CSE" \
        "name:      dns:$SRV_FQDN" "anchor:    sp-root" "HTTP/1.0 200 ok"
done
srv_connect s_server-client-look --policy a-look.policy --peer "$SRV_CSE" --to "127.0.0.1:$port"
srv_expect s_server-client-look "s_server refuses a client from a look-alike root" 1 "refused by the peer"
srv_stop ref
srv_s_server_start uri "$URI" "$T/openssl.cnf"
srv_connect s_server-uri --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --json
srv_expect s_server-uri "mutual association with s_server, key in the TPM (pkcs11: URI)" 0 \
    '"verdict": "established"' "\"peer_id\": \"$SRV_CSE\""
srv_stop uri
srv_s_server_start look "$T/in-cse.keyref.pem" "$T/openssl.cnf"
srv_connect s_server-look --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$port"
srv_expect s_server-look "a certificate from a look-alike root on the TPM key is refused" 1 "refused: " "anchor 'sp-root'"
srv_stop look

# ---- nginx -----------------------------------------------------------------------------
# One process (master_process off): here the TPM is reached through tpm2-abrmd
# on D-Bus, and a worker forked from a master that already talked to D-Bus
# (GLib) cannot connect again ("failed to allocate dbus proxy object: Timeout
# was reached"). With the kernel's resource manager (TCTI device:/dev/tpmrm0)
# there is no D-Bus and the usual master + workers apply (examples/servers/README.md).
srv_nginx_start nginx in-cse.pem "$T/openssl.cnf" 's|^worker_processes 1;|master_process off;|'
for v in tls1.2 tls1.3; do
    want=TLSv1.3; [ $v = tls1.2 ] && want=TLSv1.2
    srv_connect "nginx-$v" --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --$v --send "$GET"
    srv_expect "nginx-$v" "mutual association with nginx, key in the TPM" 0 \
        "association established with $SRV_CSE (127.0.0.1:$port)" "protocol:  $want" "peer id:   $SRV_CSE" \
        "HTTP/1.1 200" "client verify=SUCCESS subject=CN=Cae1,O=m2mtls tests"
done
srv_connect nginx-client-look --policy a-look.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --send "$GET"
srv_expect nginx-client-look "nginx refuses a client from a look-alike root (400)" 0 "HTTP/1.1 400"
srv_stop nginx

srv_finish
