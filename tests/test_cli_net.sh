#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The networked m2mtls subcommands, run as a user would, as separate
# processes: `m2mtls serve` (Entity B) and `m2mtls connect` (Entity A) over
# TLS 1.2, TLS 1.3 and DTLS 1.2 (accepted, resumed, refused by either side,
# --json, bad arguments, network errors, concurrent clients, SIGTERM/SIGINT,
# --once), and `m2mtls csr`. The PKI is made with the openssl command.
# Servers listen on 127.0.0.1:0; the port is read from their first line.
# Every server and background client is killed on exit, also on failure.
# usage: test_cli_net.sh PATH-TO-m2mtls
set -u
M2MTLS=${1:?usage: test_cli_net.sh PATH-TO-m2mtls}
case $M2MTLS in /*) ;; *) M2MTLS=$PWD/$M2MTLS ;; esac
[ -x "$M2MTLS" ] || { echo "$M2MTLS is not an executable"; exit 1; }
for c in openssl python3 timeout; do
    command -v $c >/dev/null || { echo "$c not found"; exit 1; }
done

T=$(mktemp -d "${TMPDIR:-/tmp}/m2mtls-clinet-XXXXXX") || exit 1
PIDS=""       # every background process we started
failures=0
checks=0

# A process that has exited but is not reaped yet is not alive.
alive() {
    if [ -d /proc/self ]; then   # Linux: a zombie still answers kill -0
        st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
        [ -n "$st" ] && [ "$st" != Z ]
    else
        kill -0 "$1" 2>/dev/null
    fi
}
cleanup() {
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
    i=0
    while [ $i -lt 30 ]; do
        left=""
        for p in $PIDS; do alive "$p" && left="$left $p"; done
        [ -z "$left" ] && break
        sleep 0.1; i=$((i + 1))
    done
    for p in $PIDS; do kill -KILL "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
    PIDS=""
    [ -n "${KEEP_T:-}" ] && echo "files kept in $T" || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { checks=$((checks + 1)); }
show() { # NAME: the output of a run, for a failure
    [ -f "$T/$1.out" ] && sed 's/^/    stdout: /' "$T/$1.out"
    [ -f "$T/$1.err" ] && sed 's/^/    stderr: /' "$T/$1.err"
    return 0
}

# run NAME ARGS...: runs m2mtls (at most 20 s), keeps stdout/stderr in $T/NAME.out/.err, sets $rc
run() { name=$1; shift; run_t 20 "$name" "$@"; }
run_t() { # SECONDS NAME ARGS...
    secs=$1; name=$2; shift 2
    timeout -k 2 "$secs" "$M2MTLS" "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null
    rc=$?
}
expect_rc() { # NAME WANT
    if [ "$rc" -eq "$2" ]; then ok; else
        fail "$1: exit $rc, expected $2"; show "$1"
    fi
}
has() { # NAME TEXT: stdout of NAME contains TEXT
    if grep -F -q -- "$2" "$T/$1.out"; then ok; else fail "$1: stdout lacks '$2'"; show "$1"; fi
}
hasnt() { # NAME TEXT
    if grep -F -q -- "$2" "$T/$1.out"; then fail "$1: stdout has '$2'"; show "$1"; else ok; fi
}
err_has() { # NAME TEXT: stderr of NAME contains TEXT
    if grep -F -q -- "$2" "$T/$1.err"; then ok; else fail "$1: stderr lacks '$2'"; show "$1"; fi
}
err_nonempty() { # NAME
    if [ -s "$T/$1.err" ]; then ok; else fail "$1: no message on stderr"; show "$1"; fi
}
count() { # NAME TEXT WANT: stdout of NAME has WANT lines with TEXT
    n=$(grep -F -c -- "$2" "$T/$1.out")
    if [ "$n" -eq "$3" ]; then ok; else fail "$1: $n lines with '$2', expected $3"; show "$1"; fi
}

# ---- servers ------------------------------------------------------------------------
# start_server NAME ARGS...: `m2mtls serve ARGS --listen 127.0.0.1:0` in the
# background, log in $T/NAME.log; waits (at most 5 s) for its first line and
# sets $port from it. Should the tool refuse port 0, that is one failure, and
# the servers get a free port picked here instead, so that the rest still runs.
PORT0=untested
free_port() { # ARGS of serve: a free TCP (or UDP, with --dtls) port of 127.0.0.1
    case " $* " in *" --dtls "*) kind=SOCK_DGRAM ;; *) kind=SOCK_STREAM ;; esac
    python3 -c "import socket; s=socket.socket(socket.AF_INET, socket.$kind); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"
}
launch() { # NAME PORT ARGS...
    lname=$1; lport=$2; shift 2
    "$M2MTLS" serve "$@" --listen "127.0.0.1:$lport" >"$T/$lname.log" 2>"$T/$lname.err" </dev/null &
    spid=$!
    PIDS="$PIDS $spid"
    echo "$spid" >"$T/$lname.pid"
    port=""
    i=0
    while [ $i -lt 50 ]; do
        port=$(sed -n -e '1s/^listening on 127\.0\.0\.1:\([0-9][0-9]*\) (.*)$/\1/p' \
                      -e '1s/^{"listening": "127\.0\.0\.1:\([0-9][0-9]*\)".*}$/\1/p' "$T/$lname.log" 2>/dev/null)
        [ -n "$port" ] && break
        alive "$spid" || break
        sleep 0.1; i=$((i + 1))
    done
    [ -n "$port" ] && [ "$port" -gt 0 ]
}
start_server() {
    sname=$1; shift
    if [ "$PORT0" != no ]; then
        if launch "$sname" 0 "$@"; then
            if [ "$PORT0" = untested ]; then ok; PORT0=yes; fi
            return 0
        fi
        if [ "$PORT0" = untested ] && grep -q '127\.0\.0\.1:0' "$T/$sname.err"; then
            fail "serve --listen 127.0.0.1:0 (port 0) refused, expected to listen on a free port"
            sed 's/^/    stderr: /' "$T/$sname.err"
            PORT0=no
        fi
    fi
    if [ "$PORT0" = no ] && launch "$sname" "$(free_port "$@")" "$@"; then return 0; fi
    fail "serve $sname: no 'listening on 127.0.0.1:PORT' line within 5 s"
    sed 's/^/    log: /' "$T/$sname.log"; sed 's/^/    stderr: /' "$T/$sname.err"
    return 1
}
# wait_pid PID: waits (at most 5 s) for a background process to exit, sets $rc
# (-1: it did not, and was killed); wait_exit NAME: the same for server NAME
wait_pid() {
    i=0
    while alive "$1" && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    if alive "$1"; then
        kill -KILL "$1" 2>/dev/null; wait "$1" 2>/dev/null; rc=-1
    else
        wait "$1"; rc=$?
    fi
}
wait_exit() { wait_pid "$(cat "$T/$1.pid")"; }
# stop_server NAME SIGNAL: the server must exit with status 0 within 5 s
stop_server() {
    kill -"$2" "$(cat "$T/$1.pid")" 2>/dev/null
    wait_exit "$1"
    if [ "$rc" -eq -1 ]; then fail "serve $1: still running 5 s after SIG$2"
    elif [ "$rc" -ne 0 ]; then fail "serve $1: exit $rc after SIG$2, expected 0"; sed 's/^/    stderr: /' "$T/$1.err"
    else ok; fi
}
# mark NAME: remember how long the log is; new_lines NAME N: wait (at most 5 s)
# until N lines came after the mark, put them into $T/NAME.new (a "run" name)
mark() { eval "mark_$1=\$(wc -l <\"\$T/\$1.log\")"; }
new_lines() {
    eval "m=\$mark_$1"
    i=0
    while [ $i -lt 50 ]; do
        [ "$(wc -l <"$T/$1.log")" -ge $((m + $2)) ] && break
        sleep 0.1; i=$((i + 1))
    done
    sleep 0.1   # a line too many would show up now
    tail -n +$((m + 1)) "$T/$1.log" >"$T/$1.new.out"
    : >"$T/$1.new.err"
    got=$(wc -l <"$T/$1.new.out")
    if [ "$got" -eq "$2" ]; then ok; else fail "serve $1: $got log lines, expected $2"; show "$1.new"; fi
}

# JSON: every line of a file parses; json_field FILE LINE KEY prints the value
# (strings raw, others as JSON, <missing> when absent)
json_lines() {
    if python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin]' <"$T/$1.out" 2>"$T/$1.jerr" \
        && [ -s "$T/$1.out" ]; then ok; else
        fail "$1: stdout is not JSON lines"; show "$1"; sed 's/^/    python: /' "$T/$1.jerr"
    fi
}
json_field() {
    python3 - "$T/$1.out" "$2" "$3" <<'EOF' 2>/dev/null
import json, sys
lines = open(sys.argv[1]).read().splitlines()
o = json.loads(lines[int(sys.argv[2]) - 1])
k = sys.argv[3]
v = o[k] if k in o else "<missing>"
print(v if isinstance(v, str) else json.dumps(v))
EOF
}
json_is() { # NAME LINE KEY WANT
    v=$(json_field "$1" "$2" "$3")
    if [ "$v" = "$4" ]; then ok; else fail "$1: line $2: $3 is '$v', expected '$4'"; show "$1"; fi
}
json_has() { # NAME LINE KEY TEXT: the value contains TEXT
    v=$(json_field "$1" "$2" "$3")
    case $v in *"$4"*) ok ;; *) fail "$1: line $2: $3 is '$v', expected it to contain '$4'"; show "$1" ;; esac
}

# ---- PKI (tests/servers/lib.sh: srv_openssl, srv_root, srv_leaf) ----------------------
. "$(dirname "$0")/servers/lib.sh"
cd "$T" || exit 1
srv_root root "/O=m2mtls tests/CN=Net Root"
# a look-alike root: same subject, another key
srv_root look "/O=m2mtls tests/CN=Net Root"
SRV_NAME=in-cse.sp.example.com
AE=//sp.example.com/CSE-1/Cclient
STRANGER=//sp.example.com/CSE-1/Cstranger
srv_leaf server root "DNS:$SRV_NAME" in-cse 10
srv_leaf client root "URI:$AE" Cclient 11
srv_leaf stranger root "URI:$STRANGER" Cstranger 12
srv_leaf fake look "DNS:$SRV_NAME" in-cse 13
srv_openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out csr-ec.key
srv_openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out csr-rsa.key

# An idle TLS client: holds an association open without a word and says how it ended.
cat >idle.py <<'EOF'
import socket, ssl, sys
host, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.load_cert_chain(cert, key)
s = ctx.wrap_socket(socket.create_connection((host, port), timeout=30), suppress_ragged_eofs=False)
print("connected", s.version(), flush=True)
try:
    d = s.recv(100)
    print("close_notify" if d == b"" else "data %r" % d, flush=True)
except ssl.SSLEOFError:
    print("eof without close_notify", flush=True)
except Exception as e:
    print("error %s: %s" % (type(e).__name__, e), flush=True)
EOF

srv_policy() { # CERT-NAME: a responder that knows one AE, $AE
    cat <<EOF
# Entity B
local-id /in-cse
cert $1.pem
key  $1.key
anchor ROOT root.pem
peer $AE uri:$AE ROOT
EOF
}
srv_policy server >server.policy
srv_policy fake >fake.policy
cat >bad.policy <<'EOF'
local-id /in-cse
anchor ROOT root.pem
frobnicate this line
EOF
P="$T/server.policy"
cd / || exit 1   # relative names in the policies resolve against their directory

# ---- the servers (TLS, DTLS, look-alike) -----------------------------------------------
start_server tls --policy "$P" || exit 1
TPORT=$port
start_server dtls --policy "$P" --dtls || exit 1
DPORT=$port
start_server look --policy "$T/fake.policy" || exit 1
LPORT=$port
grep -q '(DTLS 1.2' "$T/dtls.log" && ok || { fail "serve --dtls: first line '$(head -n 1 "$T/dtls.log")'"; }

# Entity A's policies, now that the ports are known: the address comes from at=.
cat >"$T/client.policy" <<EOF
local-id $AE
cert client.pem
key  client.key
anchor ROOT root.pem
peer /in-cse dns:$SRV_NAME ROOT at=tls://127.0.0.1:$TPORT
peer /in-cse-udp dns:$SRV_NAME ROOT at=dtls://127.0.0.1:$DPORT
peer /other dns:other.sp.example.com ROOT at=tls://127.0.0.1:$TPORT
peer /noat dns:$SRV_NAME ROOT
EOF
cat >"$T/stranger.policy" <<EOF
local-id $STRANGER
cert stranger.pem
key  stranger.key
anchor ROOT root.pem
peer /in-cse dns:$SRV_NAME ROOT at=tls://127.0.0.1:$TPORT
peer /in-cse-udp dns:$SRV_NAME ROOT at=dtls://127.0.0.1:$DPORT
EOF
C="$T/client.policy"
S="$T/stranger.policy"
ACCEPT_LOG="accepted peer=$AE local=/in-cse name=uri:$AE anchor=ROOT"

# ---- accepted: TLS 1.2, TLS 1.3, DTLS 1.2 -------------------------------------------------
established() { # NAME PEER-ID PORT PROTOCOL-TEXT
    has "$1" "association established with $2 (127.0.0.1:$3)"
    has "$1" "  protocol:  $4"
    has "$1" "  peer id:   $2"
    has "$1" "  local id:  $AE"
    has "$1" "  name:      dns:$SRV_NAME"
    has "$1" "  anchor:    ROOT"
}
mark tls
run t12 connect --policy "$C" --peer /in-cse --tls1.2 --send hello
expect_rc t12 0
established t12 /in-cse "$TPORT" "TLSv1.2, ECDHE-ECDSA-AES128-SHA256"
has t12 "  resumed:   no"
has t12 "  reply:     hello"
new_lines tls 1
count tls.new "$ACCEPT_LOG TLSv1.2 ECDHE-ECDSA-AES128-SHA256 resumed=no" 1

mark tls
run t13 connect --policy "$C" --peer /in-cse --tls1.3 --send hello
expect_rc t13 0
established t13 /in-cse "$TPORT" "TLSv1.3, TLS_"
has t13 "  reply:     hello"
new_lines tls 1
count tls.new "$ACCEPT_LOG TLSv1.3 TLS_" 1

mark dtls
run d12 connect --policy "$C" --peer /in-cse-udp --send hello
expect_rc d12 0
established d12 /in-cse-udp "$DPORT" "DTLSv1.2, ECDHE-ECDSA-AES128-CCM8"
has d12 "  reply:     hello"
new_lines dtls 1
count dtls.new "$ACCEPT_LOG DTLSv1.2 ECDHE-ECDSA-AES128-CCM8 resumed=no" 1

# no version option: the best one, TLS 1.3
run tany connect --policy "$C" --peer /in-cse
expect_rc tany 0
has tany "  protocol:  TLSv1.3,"

# ---- resumption: --resume 2 ------------------------------------------------------------------
resumed() { # NAME SERVER LOG-PROTOCOL
    expect_rc "$1" 0
    count "$1" "association established with" 3
    count "$1" "  resumed:   yes" 2
    count "$1" "  resumed:   no" 1
    count "$1" "  peer id:   " 3
    new_lines "$2" 3
    count "$2.new" "$ACCEPT_LOG $3" 3
    count "$2.new" "resumed=yes" 2
}
mark tls
run r13 connect --policy "$C" --peer /in-cse --tls1.3 --resume 2
resumed r13 tls "TLSv1.3 TLS_"
mark tls
run r12 connect --policy "$C" --peer /in-cse --tls1.2 --resume 2
resumed r12 tls "TLSv1.2 ECDHE-ECDSA-AES128-SHA256"
mark dtls
run rd connect --policy "$C" --peer /in-cse-udp --resume 2
resumed rd dtls "DTLSv1.2 ECDHE-ECDSA-AES128-CCM8"

# ---- refused by the server: the client's name is not in its policy ----------------------------
refused_by_server() { # NAME SERVER
    expect_rc "$1" 1
    has "$1" "refused by the peer: "
    hasnt "$1" "association established"
    new_lines "$2" 1
    count "$2.new" 'refused reason="no association' 1
}
mark tls
run sref12 connect --policy "$S" --peer /in-cse --tls1.2
refused_by_server sref12 tls
mark tls
run sref13 connect --policy "$S" --peer /in-cse --tls1.3 --send hello
refused_by_server sref13 tls
hasnt sref13 "reply:"
mark dtls
run srefd connect --policy "$S" --peer /in-cse-udp
refused_by_server srefd dtls

# ---- refused by the client ---------------------------------------------------------------------
# a server certificate with the right name from a look-alike root (same subject, other key);
# --to overrides the peer line's at=
run lookalike connect --policy "$C" --peer /in-cse --to "127.0.0.1:$LPORT" --tls1.3
expect_rc lookalike 1
has lookalike "refused: "
has lookalike "anchor 'ROOT'"
hasnt lookalike "association established"
run lookalike12 connect --policy "$C" --peer /in-cse --to "127.0.0.1:$LPORT" --tls1.2
expect_rc lookalike12 1
has lookalike12 "refused: "
has lookalike12 "anchor 'ROOT'"
# a peer whose name the server certificate does not carry
run wrongname connect --policy "$C" --peer /other
expect_rc wrongname 1
has wrongname "refused: "
has wrongname "dns:other.sp.example.com"
hasnt wrongname "association established"
run wrongname_d connect --policy "$C" --peer /other --dtls --to "127.0.0.1:$DPORT"
expect_rc wrongname_d 1
has wrongname_d "refused: "
has wrongname_d "dns:other.sp.example.com"

# ---- --json --------------------------------------------------------------------------------------
run cj connect --policy "$C" --peer /in-cse --tls1.3 --send hello --resume 1 --json
expect_rc cj 0
json_lines cj
count cj "" 2
json_is cj 1 verdict established
json_is cj 1 peer_id /in-cse
json_is cj 1 local_id "$AE"
json_is cj 1 cert_name "dns:$SRV_NAME"
json_is cj 1 anchor ROOT
json_is cj 1 resumed false
json_is cj 1 reply hello
json_is cj 2 resumed true
json_is cj 2 peer_id /in-cse
run cjd connect --policy "$C" --peer /in-cse-udp --json
expect_rc cjd 0
json_lines cjd
json_is cjd 1 protocol DTLSv1.2
json_is cjd 1 peer_id /in-cse-udp
run cj_ref connect --policy "$S" --peer /in-cse --tls1.3 --json
expect_rc cj_ref 1
json_lines cj_ref
json_is cj_ref 1 verdict refused
json_is cj_ref 1 peer_id null
json_is cj_ref 1 by peer
run cj_us connect --policy "$C" --peer /other --json
expect_rc cj_us 1
json_lines cj_us
json_is cj_us 1 verdict refused
json_is cj_us 1 peer_id null
json_has cj_us 1 reason other.sp.example.com

start_server json --policy "$P" --json && {
    JPORT=$port
    run sj_ok connect --policy "$C" --peer /in-cse --to "127.0.0.1:$JPORT"
    expect_rc sj_ok 0
    run sj_ref connect --policy "$S" --peer /in-cse --to "127.0.0.1:$JPORT"
    expect_rc sj_ref 1
    mark_json=1   # the lines after the first one
    new_lines json 2
    cp "$T/json.log" "$T/sj.out"
    json_lines sj
    json_is sj 1 listening "127.0.0.1:$JPORT"
    json_is sj 2 verdict accepted
    json_is sj 2 peer_id "$AE"
    json_is sj 2 local_id /in-cse
    json_is sj 2 anchor ROOT
    json_is sj 3 verdict refused
    json_is sj 3 peer_id null
    json_has sj 3 reason "no association"
    stop_server json TERM
}

# ---- bad arguments, policy and network errors: exit 2 ---------------------------------------------
usage_err() { # NAME ARGS...: exit 2, a message on stderr, nothing established
    uname=$1; shift
    run "$uname" "$@"
    expect_rc "$uname" 2
    err_nonempty "$uname"
}
usage_err u_nopolicy connect --peer /in-cse
usage_err u_nopeer connect --policy "$C"
usage_err u_resume connect --policy "$C" --peer /in-cse --resume -1
usage_err u_resume_x connect --policy "$C" --peer /in-cse --resume two
usage_err u_to connect --policy "$C" --peer /in-cse --to 127.0.0.1
usage_err u_to_port0 connect --policy "$C" --peer /in-cse --to 127.0.0.1:0
usage_err u_unknown connect --policy "$C" --peer /in-cse --bogus
usage_err u_extra connect --policy "$C" --peer /in-cse extra-argument
usage_err u_13dtls connect --policy "$C" --peer /in-cse --tls1.3 --dtls
usage_err u_timeout connect --policy "$C" --peer /in-cse --timeout 0
usage_err u_noat connect --policy "$C" --peer /noat
err_has u_noat "/noat"
usage_err u_nosuchpeer connect --policy "$C" --peer /nobody --to "127.0.0.1:$TPORT"
usage_err s_nopolicy serve --listen 127.0.0.1:1
usage_err s_unknown serve --policy "$P" --bogus
usage_err s_listen serve --policy "$P" --listen 127.0.0.1
run c_help connect --help
expect_rc c_help 0
has c_help "--peer"
run s_help serve --help
expect_rc s_help 0
has s_help "--listen"
run csr_help csr --help
expect_rc csr_help 0
has csr_help "--cse-fqdn"

usage_err c_missing connect --policy "$T/no-such.policy" --peer /in-cse
err_has c_missing "$T/no-such.policy"
usage_err s_missing serve --policy "$T/no-such.policy" --listen 127.0.0.1:1
err_has s_missing "$T/no-such.policy"
usage_err c_badpol connect --policy "$T/bad.policy" --peer /in-cse
err_has c_badpol "$T/bad.policy:3:"
usage_err s_badpol serve --policy "$T/bad.policy" --listen 127.0.0.1:1
err_has s_badpol "$T/bad.policy:3:"

# a port already in use (bounded: a server that starts anyway is stopped after 5 s)
run_t 5 s_inuse serve --policy "$P" --listen "127.0.0.1:$TPORT"
expect_rc s_inuse 2
err_has s_inuse "$TPORT"
run_t 5 s_inuse_d serve --policy "$P" --listen "127.0.0.1:$DPORT" --dtls
expect_rc s_inuse_d 2
err_has s_inuse_d "$DPORT"

# ---- several clients at once ----------------------------------------------------------------------
# One client holds an association open without a word; five connects in
# parallel must still be served.
mark tls
timeout -k 1 30 python3 "$T/idle.py" 127.0.0.1 "$TPORT" "$T/client.pem" "$T/client.key" >"$T/idle.out" 2>&1 &
IDLE=$!
PIDS="$PIDS $IDLE"
new_lines tls 1
count tls.new "$ACCEPT_LOG" 1
mark tls
PAR=""
for i in 1 2 3 4 5; do
    timeout -k 2 20 "$M2MTLS" connect --policy "$C" --peer /in-cse --send "hello $i" \
        >"$T/par$i.out" 2>"$T/par$i.err" </dev/null &
    PAR="$PAR $!"
done
PIDS="$PIDS $PAR"
i=1
for p in $PAR; do
    wait "$p"; rc=$?
    expect_rc "par$i" 0
    has "par$i" "  reply:     hello $i"
    i=$((i + 1))
done
new_lines tls 5
count tls.new "$ACCEPT_LOG" 5

# ---- SIGTERM (with that idle association still open) and SIGINT ----------------------------------------
alive "$IDLE" && ok || { fail "the idle association ended before SIGTERM"; cat "$T/idle.out"; }
stop_server tls TERM
# stopping cleanly: the open association is closed with a close_notify
wait_pid "$IDLE"
if grep -q '^close_notify$' "$T/idle.out"; then ok; else
    fail "serve, SIGTERM with an association open: the client saw no close_notify"
    sed 's/^/    idle client: /' "$T/idle.out"
fi
stop_server dtls INT
stop_server look TERM

# ---- an unreachable peer: the ports just closed ---------------------------------------------------
usage_err unreach connect --policy "$C" --peer /in-cse
err_has unreach "$TPORT"
usage_err unreach_d connect --policy "$C" --peer /in-cse-udp --timeout 3

# ---- serve --once ----------------------------------------------------------------------------------
start_server once_ok --policy "$P" --once && {
    run o_ok connect --policy "$C" --peer /in-cse --to "127.0.0.1:$port" --send hello
    expect_rc o_ok 0
    has o_ok "  reply:     hello"
    wait_exit once_ok
    [ "$rc" -eq 0 ] && ok || { fail "serve --once after an accepted connection: exit $rc, expected 0"; cat "$T/once_ok.log"; }
    grep -q "$ACCEPT_LOG" "$T/once_ok.log" && ok || { fail "serve --once: no accepted line"; cat "$T/once_ok.log"; }
}
start_server once_ref --policy "$P" --once && {
    run o_ref connect --policy "$S" --peer /in-cse --to "127.0.0.1:$port"
    expect_rc o_ref 1
    wait_exit once_ref
    [ "$rc" -eq 1 ] && ok || { fail "serve --once after a refused connection: exit $rc, expected 1"; cat "$T/once_ref.log"; }
    grep -q 'refused reason="no association' "$T/once_ref.log" && ok \
        || { fail "serve --once: no refused line"; cat "$T/once_ref.log"; }
}
start_server once_d --policy "$P" --once --dtls && {
    run o_d connect --policy "$C" --peer /in-cse --to "127.0.0.1:$port" --dtls --send hello
    expect_rc o_d 0
    wait_exit once_d
    [ "$rc" -eq 0 ] && ok || { fail "serve --once --dtls after an accepted connection: exit $rc, expected 0"; cat "$T/once_d.log"; }
}

# ---- csr -------------------------------------------------------------------------------------------
K="$T/csr-ec.key"
req_text() { openssl req -in "$T/$1.pem" -noout -text >"$T/$1.out" 2>&1; }
run csr_cse csr --key "$K" --cse-fqdn in-cse.sp.example.com --out "$T/csr_cse.pem"
expect_rc csr_cse 0
openssl req -in "$T/csr_cse.pem" -noout -verify >/dev/null 2>&1 && ok || fail "csr --cse-fqdn: openssl req -verify fails"
req_text csr_cse
has csr_cse "DNS:in-cse.sp.example.com"
has csr_cse "Digital Signature"
has csr_cse "ecdsa-with-SHA256"
has csr_cse "P-256"
# the request carries the key's public key
openssl pkey -in "$K" -pubout >"$T/csr-ec.pub" 2>/dev/null
openssl req -in "$T/csr_cse.pem" -noout -pubkey >"$T/csr_cse.pub" 2>/dev/null
cmp -s "$T/csr-ec.pub" "$T/csr_cse.pub" && ok || fail "csr: the request's public key is not the key's"

run csr_ae csr --key "$K" --ae-id //sp.example.com/CSE-1/Csensor7 --out "$T/csr_ae.pem"
expect_rc csr_ae 0
openssl req -in "$T/csr_ae.pem" -noout -verify >/dev/null 2>&1 && ok || fail "csr --ae-id: openssl req -verify fails"
req_text csr_ae
has csr_ae "URI://sp.example.com/CSE-1/Csensor7"
has csr_ae "Digital Signature"
# to standard output
run csr_stdout csr --key "$K" --ae-id //sp.example.com/CSE-1/Csensor7
expect_rc csr_stdout 0
openssl req -in "$T/csr_stdout.out" -noout -verify >/dev/null 2>&1 && ok || { fail "csr to stdout: not a valid request"; show csr_stdout; }

usage_err csr_wild csr --key "$K" --cse-fqdn "*.sp.example.com" --out "$T/csr_wild.pem"
usage_err csr_badae csr --key "$K" --ae-id sp.example.com/CSE-1/Csensor7 --out "$T/csr_badae.pem"
usage_err csr_both csr --key "$K" --cse-fqdn in-cse.sp.example.com --ae-id //sp.example.com/CSE-1/Csensor7
usage_err csr_neither csr --key "$K" --out "$T/csr_neither.pem"
usage_err csr_nokey csr --cse-fqdn in-cse.sp.example.com
usage_err csr_missing csr --key "$T/no-such.key" --cse-fqdn in-cse.sp.example.com --out "$T/csr_missing.pem"
err_has csr_missing "No such file"
usage_err csr_rsa csr --key "$T/csr-rsa.key" --cse-fqdn in-cse.sp.example.com --out "$T/csr_rsa.pem"
err_has csr_rsa "P-256"
for f in csr_wild csr_badae csr_rsa csr_missing; do
    [ -s "$T/$f.pem" ] && fail "$f: a request was written anyway" || ok
done

# ---- nothing left running ---------------------------------------------------------------------------
left=""
for p in $PIDS; do alive "$p" && left="$left $p"; done
[ -z "$left" ] && ok || fail "still running at the end:$left"

# ---- no sanitizer report from any process (builds with -DM2MTLS_SANITIZE) ---------------------------------
if grep -l -E 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|WARNING: ThreadSanitizer' \
        "$T"/*.err "$T"/*.log >"$T/sanitizer.list" 2>/dev/null; then
    fail "sanitizer reports in: $(tr '\n' ' ' <"$T/sanitizer.list")"
    while read -r f; do sed 's/^/    /' "$f"; done <"$T/sanitizer.list"
else
    ok
fi

echo "$checks passed, $failures failed"
[ "$failures" -eq 0 ]
