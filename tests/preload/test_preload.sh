#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# libm2mtls-preload.so in unmodified servers: openssl s_server, nginx and
# mosquitto, started by this test on free loopback ports with
#   LD_PRELOAD=libm2mtls-preload.so M2MTLS_POLICY=server.policy
# An authorized client gets through (log: "m2mtls: accepted ... peer=ID"),
# an unauthorized one is refused with its reason, the server keeps running
# and accepts the next good client; the server's own verify callback still
# runs (s_server prints its "depth=" lines); without a valid policy the
# server does not serve TLS at all.
# usage: test_preload.sh PATH-TO-libm2mtls-preload.so
set -u
PRELOAD=${1:?usage: test_preload.sh PATH-TO-libm2mtls-preload.so}
case $PRELOAD in /*) ;; *) PRELOAD=$PWD/$PRELOAD ;; esac
PATH=$PATH:/usr/sbin:/sbin
for c in openssl nginx mosquitto python3 timeout; do
    command -v "$c" >/dev/null 2>&1 || { echo "FAIL: '$c' not found (Debian packages: openssl nginx mosquitto python3)"; echo "0 passed, 1 failed"; exit 1; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/m2mtls-preload-XXXXXX") || exit 1
. "$(dirname "$0")/../servers/lib.sh"   # the test PKI (srv_root, srv_leaf), free ports
chmod 755 "$T"
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    sleep 0.3
    for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
    if [ -n "${KEEP_T:-}" ]; then echo "files kept in $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
passed=0 failed=0
ok() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; for f in "$T"/*.log "$T"/nginx/error.log; do [ -f "$f" ] && sed "s|^|    $(basename "$f"): |" "$f" | tail -n 15; done; }
OPENSSL_CONF=/dev/null   # the test's own openssl commands: plain OpenSSL
export OPENSSL_CONF
cd "$T" || exit 1

# ---- PKI: a CSE root for the server, an AE root for clients, a look-alike ---------------
srv_root cse-root "/CN=CSE Root"; srv_root ae-root "/CN=AE Root"; srv_root fake-root "/CN=AE Root"
srv_leaf server cse-root "DNS:in-cse.sp.example.com" /CN=in-cse
srv_leaf good ae-root "URI://sp.example.com/in-cse/Csensor7" /CN=Csensor7
srv_leaf other ae-root "URI://sp.example.com/in-cse/Cother" /CN=Cother
srv_leaf forged fake-root "URI://sp.example.com/in-cse/Csensor7" /CN=Csensor7
chmod 644 ./*
printf 'local-id /in-cse\nanchor ae-root %s/ae-root.pem\npeer //sp.example.com/in-cse/Csensor7 uri://sp.example.com/in-cse/Csensor7 ae-root\n' "$T" >server.policy
printf 'anchor ae-root %s/ae-root.pem\npeer /x dns:*.example.com ae-root\n' "$T" >broken.policy

wait_port() { # PORT: up to 10 s
    i=0
    while [ $i -lt 100 ]; do
        python3 -c "import socket,sys;s=socket.socket();s.settimeout(0.2);sys.exit(s.connect_ex(('127.0.0.1',$1)))" && return 0
        sleep 0.1; i=$((i + 1))
    done
    return 1
}
# client NAME PORT: a TLS handshake presenting NAME's certificate
client() {
    timeout 10 openssl s_client -connect "127.0.0.1:$2" -cert "$1.pem" -key "$1.key" -CAfile cse-root.pem \
        </dev/null >"client-$1.out" 2>&1
}
# until_log LOG TEXT: wait up to 5 s for TEXT in LOG
until_log() {
    i=0
    while [ $i -lt 50 ]; do grep -qF -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; i=$((i + 1)); done
    return 1
}
count() { grep -c "$2" "$1" 2>/dev/null || true; }
check_server() { # NAME LOG PORT
    client good "$3"
    if until_log "$2" "m2mtls: accepted client=127.0.0.1:" && grep -q "peer=//sp.example.com/in-cse/Csensor7 local=/in-cse" "$2"; then ok; else fail "$1: the authorized client is accepted and logged"; fi
    client other "$3"
    if until_log "$2" "reason=\"no association matches the certificate's names [uri://sp.example.com/in-cse/Cother]\""; then ok; else fail "$1: an unknown name is refused with its reason"; fi
    client forged "$3"
    if until_log "$2" "fails its Root of Trust: anchor 'ae-root'"; then ok; else fail "$1: a look-alike root is refused with its reason"; fi
    n=$(count "$2" "m2mtls: accepted")
    client good "$3"
    i=0; while [ $i -lt 50 ] && [ "$(count "$2" "m2mtls: accepted")" -le "$n" ]; do sleep 0.1; i=$((i + 1)); done
    if [ "$(count "$2" "m2mtls: accepted")" -gt "$n" ]; then ok; else fail "$1: still serves after the refusals"; fi
    # (the test's own port probe is a connection too, and is logged as a refusal
    # without a certificate: only the two certificate refusals are counted here)
    refusals=$(count "$2" 'm2mtls: refused client=127\.0\.0\.1:[0-9]* reason="\(no association\|certificate \[\)')
    if [ "$refusals" -eq 2 ]; then ok; else fail "$1: one line per refused connection (got $refusals)"; fi
}

# ---- openssl s_server -------------------------------------------------------------------
P=$(srv_free_port tcp)
# -www: s_server answers by itself and never reads its standard input
LD_PRELOAD=$PRELOAD M2MTLS_POLICY=$T/server.policy openssl s_server -accept "127.0.0.1:$P" -www \
    -cert server.pem -key server.key -verify 1 </dev/null >s_server.log 2>&1 &
PIDS="$PIDS $!"
if wait_port "$P"; then ok; else fail "s_server starts with the preload"; fi
check_server s_server s_server.log "$P"
# (s_server prints "CN = x" on OpenSSL 3.0, "CN=x" from 3.2 on)
if grep -Eq "^depth=0 CN ?= ?Csensor7" s_server.log; then ok; else fail "s_server's own verify callback still runs"; fi
if grep -qF "m2mtls: policy $T/server.policy loaded: 1 peers" s_server.log; then ok; else fail "the policy load is logged"; fi

# ---- DTLS 1.2 with TS-0003's suite ECDHE-ECDSA-AES128-CCM8 -----------------------------------
# OpenSSL >= 3.2 allows CCM8 only at security level 0; under the preload the
# server keeps its level (2 on Debian) and still negotiates that one suite.
# (The test's client is plain s_client: it lowers its own level to offer it.)
P=$(srv_free_port tcp)
# (s_server -dtls stops at the end of its input: a FIFO this shell holds open
# until the exchange is over gives it none)
mkfifo dtls.in
LD_PRELOAD=$PRELOAD M2MTLS_POLICY=$T/server.policy openssl s_server -dtls -accept "127.0.0.1:$P" \
    -cert server.pem -key server.key -cipher ECDHE-ECDSA-AES128-CCM8 -verify 1 -naccept 1 <dtls.in >s_dtls.log 2>&1 &
PIDS="$PIDS $!"
exec 7>dtls.in
until_log s_dtls.log ACCEPT
timeout 10 openssl s_client -dtls -connect "127.0.0.1:$P" -cert good.pem -key good.key -CAfile cse-root.pem \
    -cipher 'ECDHE-ECDSA-AES128-CCM8:@SECLEVEL=0' </dev/null >client-dtls.out 2>&1
if until_log s_dtls.log "m2mtls: accepted client=" && grep -q "peer=//sp.example.com/in-cse/Csensor7 .*protocol=DTLSv1.2" s_dtls.log \
   && grep -q "ECDHE-ECDSA-AES128-CCM8" client-dtls.out; then ok; else fail "s_server -dtls: TS-0003's CCM8 suite at the server's own security level"; cat client-dtls.out; fi
exec 7>&-

# no policy, or a broken one: no TLS at all (fails closed)
P2=$(srv_free_port tcp)
LD_PRELOAD=$PRELOAD M2MTLS_POLICY=$T/broken.policy timeout 10 openssl s_server -accept "127.0.0.1:$P2" -www \
    -cert server.pem -key server.key </dev/null >broken.log 2>&1
if grep -qF "broken.policy:2: certificate name 'dns:*.example.com' contains '*'" broken.log \
   && grep -q "no TLS context will be created" broken.log && ! grep -q "^ACCEPT" broken.log; then ok; else fail "a broken policy: FILE:LINE logged, no TLS context"; fi
env -u M2MTLS_POLICY LD_PRELOAD="$PRELOAD" timeout 10 openssl s_server -accept "127.0.0.1:$P2" -www \
    -cert server.pem -key server.key </dev/null >nopolicy.log 2>&1
if grep -q "M2MTLS_POLICY is not set" nopolicy.log && ! grep -q "^ACCEPT" nopolicy.log; then ok; else fail "no M2MTLS_POLICY: logged, no TLS context"; fi

# ---- M2MTLS_LOG=syslog -------------------------------------------------------------------------
# syslog(3) writes to /dev/log: in a private mount namespace, /dev is replaced by
# a copy whose "log" is a socket of this test, so what the server sends to
# syslog can be read (needs root: CI runs as root).
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null; then
    P=$(srv_free_port tcp)
    cat >syslog-recv.py <<'PY'
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(float(sys.argv[3]))
with open(sys.argv[2], "ab") as out:
    try:
        while True:
            out.write(s.recv(65536) + b"\n")
            out.flush()
    except socket.timeout:
        pass
PY
    unshare -m sh -c "
        set -e
        mkdir -p '$T/olddev' '$T/newdev'
        mount --rbind /dev '$T/olddev'
        mount -t tmpfs tmpfs '$T/newdev'
        for n in null zero random urandom; do touch '$T/newdev/'\$n; mount --bind '$T/olddev/'\$n '$T/newdev/'\$n; done
        python3 '$T/syslog-recv.py' '$T/newdev/log' '$T/syslog.txt' 30 &
        rcv=\$!
        # wait for readiness, not a fixed time: the machine may be loaded
        i=0; while [ ! -S '$T/newdev/log' ] && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i + 1)); done
        mount --bind '$T/newdev' /dev
        LD_PRELOAD='$PRELOAD' M2MTLS_POLICY='$T/server.policy' M2MTLS_LOG=syslog openssl s_server \
            -accept 127.0.0.1:$P -www -cert '$T/server.pem' -key '$T/server.key' </dev/null >'$T/s_syslog.log' 2>&1 &
        srv=\$!
        i=0; while ! grep -q '^ACCEPT' '$T/s_syslog.log' && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i + 1)); done
        timeout 5 openssl s_client -connect 127.0.0.1:$P -cert '$T/good.pem' -key '$T/good.key' </dev/null >/dev/null 2>&1 || true
        timeout 5 openssl s_client -connect 127.0.0.1:$P -cert '$T/other.pem' -key '$T/other.key' </dev/null >/dev/null 2>&1 || true
        i=0; while ! grep -q 'reason=\"no association' '$T/syslog.txt' 2>/dev/null && [ \$i -lt 50 ]; do sleep 0.1; i=\$((i + 1)); done
        kill \$srv \$rcv || true
        wait
    " >syslog-ns.log 2>&1
    if grep -q "m2mtls\[[0-9]*\]: accepted client=127.0.0.1:[0-9]* peer=//sp.example.com/in-cse/Csensor7" syslog.txt 2>/dev/null \
       && grep -q "m2mtls\[[0-9]*\]: refused client=127.0.0.1:[0-9]* reason=\"no association" syslog.txt \
       && ! grep -q "m2mtls: accepted" s_syslog.log; then ok; else fail "M2MTLS_LOG=syslog: the lines go to syslog, not stderr"; cat syslog-ns.log syslog.txt 2>/dev/null; fi
else
    echo "SKIP: M2MTLS_LOG=syslog check (needs root for a private mount namespace)"
fi

# ---- nginx ----------------------------------------------------------------------------------
P=$(srv_free_port tcp)
mkdir -p nginx/tmp
user=""; [ "$(id -u)" -eq 0 ] && user="user root;"
cat >nginx/nginx.conf <<NGINX
$user
daemon off;
worker_processes 1;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log info;
events { worker_connections 64; }
http {
    access_log $T/nginx/access.log;
    client_body_temp_path $T/nginx/tmp; proxy_temp_path $T/nginx/tmp; fastcgi_temp_path $T/nginx/tmp;
    uwsgi_temp_path $T/nginx/tmp; scgi_temp_path $T/nginx/tmp;
    server {
        listen 127.0.0.1:$P ssl;
        ssl_certificate     $T/server.pem;
        ssl_certificate_key $T/server.key;
        ssl_verify_client   optional_no_ca;   # nginx asks for a certificate; m2mtls decides
        location / { return 200 "hello \$ssl_client_s_dn\n"; }
    }
}
NGINX
LD_PRELOAD=$PRELOAD M2MTLS_POLICY=$T/server.policy nginx -p "$T/nginx" -c "$T/nginx/nginx.conf" >nginx.log 2>&1 &
PIDS="$PIDS $!"
if wait_port "$P"; then ok; else fail "nginx starts with the preload"; fi
# nginx sends its stderr, and so the m2mtls lines, to its error log
check_server nginx nginx/error.log "$P"
reply=$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client -connect "127.0.0.1:$P" -cert good.pem -key good.key -quiet 2>/dev/null)
if echo "$reply" | grep -q "hello CN=Csensor7"; then ok; else fail "nginx serves the authorized client (got: $reply)"; fi

# ---- mosquitto ------------------------------------------------------------------------------
P=$(srv_free_port tcp)
muser=""; [ "$(id -u)" -eq 0 ] && muser="user root"
printf '%s\nper_listener_settings true\nlistener %s 127.0.0.1\ncafile %s/ae-root.pem\ncertfile %s/server.pem\nkeyfile %s/server.key\nrequire_certificate true\nallow_anonymous true\nlog_dest stderr\n' \
    "$muser" "$P" "$T" "$T" "$T" >mosquitto.conf
LD_PRELOAD=$PRELOAD M2MTLS_POLICY=$T/server.policy mosquitto -c "$T/mosquitto.conf" >mosquitto.log 2>&1 &
PIDS="$PIDS $!"
if wait_port "$P"; then ok; else fail "mosquitto starts with the preload"; fi
check_server mosquitto mosquitto.log "$P"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
