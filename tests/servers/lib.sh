# SPDX-License-Identifier: Apache-2.0
# Shell functions for the tests that run real, unmodified servers (nginx,
# coap-server-openssl, mosquitto, openssl s_server) with keys in a token
# (SoftHSM, or a TPM 2.0 simulator through tpm2-pkcs11), reached by
# `m2mtls connect`, and real clients against `m2mtls serve`.
#
# POSIX sh (run by `sh`, dash on Debian). Source it after setting nothing:
#     . "$(dirname "$0")/lib.sh"
#     srv_init NAME "$@"         # M2MTLS=$1 PROVIDER=$2, temp dir $T, traps
# Everything a test starts goes through srv_start (or srv_swtpm_start) and is
# stopped by the EXIT trap, also on failure; $T is removed (KEEP_T=1 keeps it).
#
# Variables set by srv_init: M2MTLS (the m2mtls command), PROVIDER (m2mtls.so),
# T (temp dir), SRV_EXAMPLES (examples/servers); SOFTHSM (libsofthsm2.so) is set
# by srv_softhsm_init. Results: srv_ok / srv_fail count checks; srv_finish
# prints "N passed, M failed" and exits 0 only if M == 0.
# Other test scripts (test_cli*.sh, test_keyref.sh, tests/preload/*.sh,
# prov_cli_test.sh) source this file for its token and PKI functions alone:
# those need T (and PROVIDER for srv_cnf), and end the test on failure.
# Local variables of these functions start with "_"; $port and $rc are results.
#
# Functions (details above each one):
#   checks      srv_ok srv_fail srv_die srv_finish srv_show srv_expect srv_log_has
#   packages    srv_need_cmd srv_need_file srv_find_lib
#   ports       srv_free_port srv_free_port_pair srv_port_bound srv_wait_port srv_wait_log
#   processes   srv_start srv_start_port srv_start_m2mtls_serve srv_pid srv_children
#               srv_stop srv_alive srv_run srv_connect (cleanup: srv_cleanup, the EXIT trap)
#   tokens      srv_softhsm_init srv_softhsm_keygen srv_softhsm_token srv_swtpm_start
#               srv_tpm2_token srv_keyref srv_cnf srv_provider_cnf
#               srv_dtls_cnf (libcoap on OpenSSL >= 3.2)
#               srv_token_pki (all of a server's key in SoftHSM, and the PKI)
#   PKI         srv_openssl srv_root srv_sign srv_leaf srv_token_csr srv_standard_pki
#   servers     srv_example srv_nginx_start srv_s_server_start ($GET: an HTTP request)
#   preload     srv_server_policy srv_s_client srv_preload_init srv_hello_client
#               srv_hello_served srv_expect_hello_served srv_expect_hello_refused

SRV_PIDS=""         # "name:pid" of every background process started here
srv_passed=0
srv_failed=0

# ---- bookkeeping ---------------------------------------------------------------------
srv_ok() { srv_passed=$((srv_passed + 1)); echo "ok: $*"; }
srv_fail() { srv_failed=$((srv_failed + 1)); echo "FAIL: $*"; }
# srv_die MESSAGE: a setup step failed, nothing after it can run
srv_die() { echo "FAIL: $*"; srv_failed=$((srv_failed + 1)); srv_finish; }
srv_finish() {
    echo "$srv_passed passed, $srv_failed failed"
    [ "$srv_failed" -eq 0 ] && exit 0
    exit 1
}
# srv_show FILE...: print files indented, for a failure
srv_show() {
    for _f in "$@"; do
        [ -f "$_f" ] && sed "s|^|    $(basename "$_f"): |" "$_f" | tail -n 40
    done
    return 0
}

# srv_need_cmd PACKAGE CMD...: each CMD must be on PATH, else the test fails naming PACKAGE
srv_need_cmd() {
    _pkg=$1; shift
    for _c in "$@"; do
        command -v "$_c" >/dev/null 2>&1 || srv_die "'$_c' not found: install the Debian package $_pkg"
    done
}
# srv_need_file PACKAGE FILE...: each FILE must exist, else the test fails naming PACKAGE
srv_need_file() {
    _pkg=$1; shift
    for _f in "$@"; do
        [ -e "$_f" ] || srv_die "$_f not found: install the Debian package $_pkg"
    done
}
# srv_find_lib VAR PACKAGE CANDIDATE...: VAR = the first existing CANDIDATE
srv_find_lib() {
    _var=$1 _pkg=$2; shift 2
    for _f in "$@"; do
        if [ -e "$_f" ]; then eval "$_var=\$_f"; return 0; fi
    done
    srv_die "$1 not found (looked at $*): install the Debian package $_pkg"
}

# srv_alive PID: running (a zombie is not)
srv_alive() {
    _st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
    [ -n "$_st" ] && [ "$_st" != Z ]
}

# srv_init NAME M2MTLS PROVIDER: checks the arguments, makes $T, sets traps
srv_init() {
    _name=$1
    M2MTLS=${2:?usage: $_name.sh PATH-TO-m2mtls PATH-TO-m2mtls.so}
    PROVIDER=${3:?usage: $_name.sh PATH-TO-m2mtls PATH-TO-m2mtls.so}
    case $M2MTLS in /*) ;; *) M2MTLS=$PWD/$M2MTLS ;; esac
    case $PROVIDER in /*) ;; *) PROVIDER=$PWD/$PROVIDER ;; esac
    [ -x "$M2MTLS" ] || srv_die "$M2MTLS is not an executable"
    [ -f "$PROVIDER" ] || srv_die "$PROVIDER does not exist"
    srv_need_cmd openssl openssl
    srv_need_cmd python3 python3
    srv_need_cmd coreutils timeout base64
    T=$(mktemp -d "${TMPDIR:-/tmp}/m2mtls-$_name-XXXXXX") || srv_die "mktemp"
    chmod 755 "$T"
    SRV_EXAMPLES=$(cd "$(dirname "$0")/../../examples/servers" 2>/dev/null && pwd)
    [ -n "$SRV_EXAMPLES" ] || srv_die "examples/servers not found next to $0"
    trap srv_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM HUP
    # the test's own openssl commands (PKI) must not load the provider
    OPENSSL_CONF=/dev/null
    export OPENSSL_CONF
}

# srv_cleanup: TERM to everything started, KILL after 3 s, remove $T (EXIT trap)
srv_cleanup() {
    rc=$?
    for _e in $SRV_PIDS; do kill -TERM "${_e#*:}" 2>/dev/null; done
    _i=0
    while [ $_i -lt 30 ]; do
        _left=""
        for _e in $SRV_PIDS; do srv_alive "${_e#*:}" && _left="$_left $_e"; done
        [ -z "$_left" ] && break
        sleep 0.1; _i=$((_i + 1))
    done
    for _e in $SRV_PIDS; do
        if srv_alive "${_e#*:}"; then
            echo "note: ${_e%%:*} (pid ${_e#*:}) ignored SIGTERM, killed"
            kill -KILL "${_e#*:}" 2>/dev/null
        fi
        wait "${_e#*:}" 2>/dev/null
    done
    SRV_PIDS=""
    if [ -n "${KEEP_T:-}" ]; then echo "files kept in $T"; else rm -rf "$T"; fi
    exit $rc
}

# ---- ports ---------------------------------------------------------------------------
# srv_free_port tcp|udp: a port of 127.0.0.1 free right now
srv_free_port() {
    case $1 in udp) kind=SOCK_DGRAM ;; *) kind=SOCK_STREAM ;; esac
    python3 -c "import socket; s=socket.socket(socket.AF_INET, socket.$kind); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"
}
# srv_free_port_pair: a port P such that P and P+1 are free for both TCP and UDP
# on 127.0.0.1 (coap-server listens on P for coap and P+1 for coaps)
srv_free_port_pair() {
    python3 - <<'EOF'
import socket
for _ in range(200):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]; s.close()
    if p >= 65535: continue
    try:
        held = []
        for port in (p, p + 1):
            for k in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                x = socket.socket(socket.AF_INET, k); x.bind(('127.0.0.1', port)); held.append(x)
        for x in held: x.close()
        print(p); break
    except OSError:
        for x in held: x.close()
EOF
}
# srv_port_bound tcp|udp PORT: something listens on (TCP) / is bound to (UDP) PORT,
# read from /proc/net (no client connection, so no log line in the server)
srv_port_bound() {
    _hex=$(printf '%04X' "$2")
    case $1 in
        udp) awk -v h=":$_hex" 'NR > 1 && substr($2, length($2) - 4) == h { f = 1 } END { exit !f }' \
                 /proc/net/udp /proc/net/udp6 2>/dev/null ;;
        *)   awk -v h=":$_hex" 'NR > 1 && substr($2, length($2) - 4) == h && $4 == "0A" { f = 1 } END { exit !f }' \
                 /proc/net/tcp /proc/net/tcp6 2>/dev/null ;;
    esac
}
# srv_wait_port NAME tcp|udp PORT [SECONDS]: wait until server NAME (started by
# srv_start) listens on PORT; fails (0 = ok, 1 = not) when it exits first or the
# time (default 10 s) runs out
srv_wait_port() {
    _pid=$(srv_pid "$1")
    _lim=$(( ${4:-10} * 10 ))
    _i=0
    while [ $_i -lt $_lim ]; do
        srv_port_bound "$2" "$3" && return 0
        srv_alive "$_pid" || return 1
        sleep 0.1; _i=$((_i + 1))
    done
    return 1
}
# srv_wait_log NAME TEXT [SECONDS]: wait until $T/NAME.log (or a given file with
# a slash) has a line containing TEXT
srv_wait_log() {
    case $1 in */*) _f=$1 ;; *) _f=$T/$1.log ;; esac
    _lim=$(( ${3:-10} * 10 ))
    _i=0
    while [ $_i -lt $_lim ]; do
        grep -F -q -- "$2" "$_f" 2>/dev/null && return 0
        sleep 0.1; _i=$((_i + 1))
    done
    return 1
}

# ---- processes -----------------------------------------------------------------------
# srv_start NAME CMD ARGS...: CMD in the background, stdout+stderr in $T/NAME.log,
# stdin /dev/null; remembered for srv_stop and the EXIT trap
srv_start() {
    _sname=$1; shift
    "$@" >"$T/$_sname.log" 2>&1 </dev/null &
    SRV_PIDS="$SRV_PIDS $_sname:$!"
}
# srv_pid NAME: the pid of NAME
srv_pid() {
    for _e in $SRV_PIDS; do
        [ "${_e%%:*}" = "$1" ] && echo "${_e#*:}"
    done
}
# srv_children PID: the pids of PID's child processes, one a line (from /proc)
srv_children() {
    for _st in /proc/[0-9]*/stat; do
        sed -n 's/^\([0-9]*\) (.*) . \([0-9]*\) .*/\1 \2/p' "$_st" 2>/dev/null
    done | awk -v p="$1" '$2 == p { print $1 }'
}
# srv_stop NAME: TERM (KILL after 5 s), reap, forget it; $rc = its exit status
srv_stop() {
    _pid=$(srv_pid "$1")
    [ -n "$_pid" ] || return 0
    kill -TERM "$_pid" 2>/dev/null
    _i=0
    while srv_alive "$_pid" && [ $_i -lt 50 ]; do sleep 0.1; _i=$((_i + 1)); done
    srv_alive "$_pid" && kill -KILL "$_pid" 2>/dev/null
    wait "$_pid" 2>/dev/null; rc=$?
    _new=""
    for _e in $SRV_PIDS; do [ "${_e%%:*}" = "$1" ] || _new="$_new $_e"; done
    SRV_PIDS=$_new
}
# srv_start_port NAME tcp|udp|coap PREPARE CMD ARGS...: a server on a free
# loopback port. Picks $port (coap: P and P+1 free for TCP and UDP; the wait is
# for UDP P+1, where coap-server-openssl listens for DTLS), calls the shell
# function PREPARE with it (to write a configuration; `:` for none), replaces
# @PORT@ in ARGS, starts CMD as srv_start NAME and waits until it listens.
# Another process may take the port in between: tried up to 5 times.
srv_start_port() {
    _sname=$1 _proto=$2 _prep=$3; shift 3
    _orig=""
    for _a in "$@"; do _orig="$_orig '$(printf '%s' "$_a" | sed "s/'/'\\\\''/g")'"; done
    _tries=0
    while [ $_tries -lt 5 ]; do
        _tries=$((_tries + 1))
        case $_proto in
            coap) port=$(srv_free_port_pair); _wproto=udp; _wport=$((port + 1)) ;;
            *) port=$(srv_free_port "$_proto"); _wproto=$_proto; _wport=$port ;;
        esac
        "$_prep" "$port"
        _n=$#; _k=0
        while [ $_k -lt $_n ]; do
            _a=$1; shift
            case $_a in *@PORT@*) _a="${_a%%@PORT@*}$port${_a#*@PORT@}" ;; esac
            set -- "$@" "$_a"; _k=$((_k + 1))
        done
        srv_start "$_sname" "$@"
        srv_wait_port "$_sname" "$_wproto" "$_wport" 15 && return 0
        srv_stop "$_sname"
        cp "$T/$_sname.log" "$T/$_sname.failed-start.log"
        eval "set -- $_orig"
    done
    srv_show "$T/$_sname.failed-start.log"
    return 1
}

# srv_start_m2mtls_serve NAME ARGS...: `m2mtls serve ARGS --listen 127.0.0.1:0`;
# sets $port from its first line
srv_start_m2mtls_serve() {
    _sname=$1; shift
    srv_start "$_sname" "$M2MTLS" serve "$@" --listen 127.0.0.1:0
    _pid=$(srv_pid "$_sname")
    port=""
    _i=0
    while [ $_i -lt 100 ]; do
        port=$(sed -n '1s/^listening on 127\.0\.0\.1:\([0-9][0-9]*\) .*$/\1/p' "$T/$_sname.log" 2>/dev/null)
        [ -n "$port" ] && return 0
        srv_alive "$_pid" || break
        sleep 0.1; _i=$((_i + 1))
    done
    return 1
}

# srv_run NAME SECONDS CMD ARGS...: a client under timeout; stdout in $T/NAME.out,
# stderr in $T/NAME.err, exit status in $rc
srv_run() {
    _rname=$1 _secs=$2; shift 2
    timeout -k 2 "$_secs" "$@" >"$T/$_rname.out" 2>"$T/$_rname.err" </dev/null
    rc=$?
}
# srv_connect NAME ARGS...: `m2mtls connect ARGS` (20 s at most), as srv_run
srv_connect() {
    _cname=$1; shift
    srv_run "$_cname" 20 "$M2MTLS" connect "$@"
}
# srv_expect NAME WHAT WANT-RC [TEXT...]: the run NAME exited WANT-RC and its
# stdout or stderr contains each TEXT; one check, reported as "NAME: WHAT"
srv_expect() {
    _ename=$1 _what=$2 _want=$3; shift 3
    if [ "$rc" -ne "$_want" ]; then
        srv_fail "$_ename: $_what: exit $rc, expected $_want"; srv_show "$T/$_ename.out" "$T/$_ename.err"; return 1
    fi
    for _t in "$@"; do
        if ! grep -F -q -- "$_t" "$T/$_ename.out" "$T/$_ename.err"; then
            srv_fail "$_ename: $_what: output lacks '$_t'"; srv_show "$T/$_ename.out" "$T/$_ename.err"; return 1
        fi
    done
    srv_ok "$_ename: $_what"
}
# srv_log_has NAME WHAT TEXT [SECONDS]: server NAME's log gets a line with TEXT
srv_log_has() {
    if srv_wait_log "$1" "$3" "${4:-5}"; then srv_ok "$1: $2"; else
        srv_fail "$1: $2: its log lacks '$3'"; srv_show "$T/$1.log"; return 1
    fi
}

# ---- tokens and keys -----------------------------------------------------------------
# srv_softhsm_init DIR LABEL PIN: a fresh SoftHSM token LABEL without keys in
# DIR (SOFTHSM2_CONF is exported, pointing to DIR/softhsm2.conf); SOFTHSM is
# the module (kept when already set)
srv_softhsm_init() {
    srv_need_cmd softhsm2 softhsm2-util
    [ -n "${SOFTHSM:-}" ] \
        || srv_find_lib SOFTHSM softhsm2 /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so
    mkdir -p "$1/tokens"
    printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$1" >"$1/softhsm2.conf"
    SOFTHSM2_CONF=$1/softhsm2.conf
    export SOFTHSM2_CONF
    softhsm2-util --init-token --free --label "$2" --pin "$3" --so-pin 56785678 >"$T/softhsm.log" 2>&1 \
        || { srv_show "$T/softhsm.log"; srv_die "softhsm2-util --init-token"; }
}
# srv_softhsm_keygen TOKEN PIN KEY-TYPE ID LABEL: a key pair generated inside
# the token (KEY-TYPE as pkcs11-tool takes it: EC:prime256v1, rsa:2048)
srv_softhsm_keygen() {
    srv_need_cmd opensc pkcs11-tool
    pkcs11-tool --module "$SOFTHSM" --token-label "$1" --login --pin "$2" --keypairgen \
        --key-type "$3" --id "$4" --label "$5" --usage-sign --sensitive >"$T/softhsm.log" 2>&1 \
        || { srv_show "$T/softhsm.log"; srv_die "pkcs11-tool --keypairgen $3 in SoftHSM"; }
}
# srv_softhsm_token DIR LABEL PIN: srv_softhsm_init with an ECDSA P-256 key
# pair generated inside the token: label "server", id 01.
# URI: pkcs11:token=LABEL;object=server
srv_softhsm_token() {
    srv_softhsm_init "$@"
    srv_softhsm_keygen "$2" "$3" EC:prime256v1 01 server
}

# srv_keyref URI OUT: write the key reference PEM for URI (the pkcs11-provider
# format: SEQUENCE { VisibleString "PKCS#11 Provider URI v1.0", UTF8String URI })
srv_keyref() {
    python3 - "$1" "$2" <<'EOF' || srv_die "writing the key reference $2"
import base64, sys
def tlv(tag, body):
    n = len(body)
    if n < 0x80: l = bytes([n])
    elif n < 0x100: l = bytes([0x81, n])
    else: l = bytes([0x82, n >> 8, n & 0xff])
    return bytes([tag]) + l + body
der = tlv(0x30, tlv(0x1a, b"PKCS#11 Provider URI v1.0") + tlv(0x0c, sys.argv[1].encode()))
b64 = base64.b64encode(der).decode()
with open(sys.argv[2], "w") as f:
    f.write("-----BEGIN PKCS#11 PROVIDER URI-----\n")
    for i in range(0, len(b64), 64): f.write(b64[i:i + 64] + "\n")
    f.write("-----END PKCS#11 PROVIDER URI-----\n")
EOF
}

# srv_example FILE OUT [SED-SCRIPT]: examples/servers/FILE made to run here:
# /etc/m2mtls/ becomes $T/, the provider and PKCS#11 module paths become ours
# (PROVIDER, SRV_P11MODULE), then SED-SCRIPT is applied
srv_example() {
    [ -f "$SRV_EXAMPLES/$1" ] || srv_die "$SRV_EXAMPLES/$1 is missing"
    sed -e "s|^module = .*|module = $PROVIDER|" \
        -e "s|^pkcs11-module-path = .*|pkcs11-module-path = ${SRV_P11MODULE:-/nonexistent}|" \
        -e "s|/etc/m2mtls/|$T/|g" -e "${3:-}" "$SRV_EXAMPLES/$1" >"$2"
}
# srv_cnf OUT PIN [last|first [PKCS11-MODULE [MORE-LINES]]]: a minimal
# openssl.cnf loading the default provider and m2mtls ($PROVIDER), m2mtls
# listed after default (last, the default) or before it, with that PKCS#11
# module (default $SOFTHSM; "" for no module line), the PIN (or file:PATH,
# "" for no PIN line) and MORE-LINES in m2mtls's section
srv_cnf() {
    {
        printf 'openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n[provider_sect]\n'
        if [ "${3:-last}" = first ]; then printf 'm2mtls = m2mtls_sect\ndefault = default_sect\n'
        else printf 'default = default_sect\nm2mtls = m2mtls_sect\n'; fi
        printf '[default_sect]\nactivate = 1\n[m2mtls_sect]\nmodule = %s\n' "$PROVIDER"
        _mod=${4-$SOFTHSM}
        [ -z "$_mod" ] || printf 'pkcs11-module-path = %s\n' "$_mod"
        [ -z "$2" ] || printf 'pkcs11-module-token-pin = %s\n' "$2"
        [ -z "${5:-}" ] || printf '%s\n' "$5"
        printf 'activate = 1\n'
    } >"$1" || srv_die "writing $1"
}
# srv_provider_cnf OUT PKCS11-MODULE PIN: examples/servers/openssl.cnf for
# this test: loads the default provider and m2mtls (after default), with that
# PKCS#11 module; the token PIN is in $T/pin
srv_provider_cnf() {
    SRV_P11MODULE=$2
    printf '%s\n' "$3" >"$T/pin"
    srv_example openssl.cnf "$1"
    grep -q "^module = $PROVIDER\$" "$1" && grep -q "^pkcs11-module-token-pin = file:$T/pin" "$1" \
        || srv_die "examples/servers/openssl.cnf: no module / pkcs11-module-token-pin line to adapt"
}

# srv_openssl_at_least MAJOR MINOR: the openssl command is that version or later
srv_openssl_at_least() {
    _v=$(openssl version | sed -n 's/^OpenSSL \([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
    [ -n "$_v" ] || return 1
    [ "${_v% *}" -gt "$1" ] && return 0
    [ "${_v% *}" -eq "$1" ] && [ "${_v#* }" -ge "$2" ]
}
# srv_dtls_cnf OUT PKCS11-MODULE PIN: as srv_provider_cnf, for a DTLS program
# without m2mtls in it (libcoap): on OpenSSL >= 3.2 with the "#ccm8" lines of
# examples/servers/openssl.cnf uncommented, so it offers TS-0003's CCM8 suite
srv_dtls_cnf() {
    srv_provider_cnf "$@"
    if srv_openssl_at_least 3 2; then
        sed -i 's/^#ccm8 //' "$1"
        grep -q '^CipherString = .*ECDHE-ECDSA-AES128-CCM8' "$1" \
            || srv_die "examples/servers/openssl.cnf: no '#ccm8' lines to enable"
    fi
}

# ---- PKI -----------------------------------------------------------------------------
# srv_openssl ARGS...: the openssl command without the provider, quiet unless it fails
srv_openssl() {
    OPENSSL_CONF=/dev/null openssl "$@" >"$T/openssl.log" 2>&1 \
        || { srv_show "$T/openssl.log"; srv_die "openssl $*"; }
}
# srv_root NAME SUBJECT [REQ-OPTIONS...]: a self-signed CA, $T/NAME.pem +
# $T/NAME.key; its key ECDSA P-256 unless REQ-OPTIONS say otherwise (they
# replace "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes" and may add
# -addext lines, e.g. nameConstraints)
SRV_EC="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
srv_root() {
    _rn=$1 _rs=$2; shift 2
    # shellcheck disable=SC2086
    [ $# -gt 0 ] || set -- $SRV_EC
    srv_openssl req -x509 "$@" -keyout "$T/$_rn.key" -out "$T/$_rn.pem" -subj "$_rs" -days 30 \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
# srv_sign CSR ISSUER SAN OUT [SERIAL]: a leaf certificate for CSR signed by
# $T/ISSUER.key: keyUsage digitalSignature, the subjectAltName SAN (e.g.
# DNS:in-cse.sp.example.com or URI://sp.example.com/CSE-1/Cae), valid 10 days;
# SERIAL by default the next of this run's counter
SRV_SERIAL=$(( $$ * 100 ))
srv_sign() {
    SRV_SERIAL=$((SRV_SERIAL + 1))
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectAltName=%s\n' "$3" >"$4.ext"
    srv_openssl x509 -req -in "$1" -CA "$T/$2.pem" -CAkey "$T/$2.key" -set_serial "${5:-$SRV_SERIAL}" -days 10 \
        -extfile "$4.ext" -out "$4"
}
# srv_leaf NAME ISSUER SAN CN [SERIAL]: a key file $T/NAME.key and its
# certificate $T/NAME.pem (srv_sign); the subject is /O=m2mtls tests/CN=CN,
# or CN itself when it starts with a slash
srv_leaf() {
    case $4 in /*) _subj=$4 ;; *) _subj="/O=m2mtls tests/CN=$4" ;; esac
    # shellcheck disable=SC2086
    srv_openssl req -new $SRV_EC -keyout "$T/$1.key" -out "$T/$1.csr" -subj "$_subj"
    srv_sign "$T/$1.csr" "$2" "$3" "$T/$1.pem" "${5:-}"
}
# srv_token_csr KEY CNF OUT CN: a CSR signed inside the token: KEY is a pkcs11:
# URI or a key reference file, read through the provider configured by CNF
srv_token_csr() {
    OPENSSL_CONF=$2 openssl req -new -key "$1" -subj "/O=m2mtls tests/CN=$4" -out "$3" >"$T/openssl.log" 2>&1 \
        || { srv_show "$T/openssl.log"; srv_die "openssl req -new -key $1 (through the provider)"; }
    OPENSSL_CONF=/dev/null openssl req -in "$3" -verify -noout >"$T/openssl.log" 2>&1 \
        || { srv_show "$T/openssl.log"; srv_die "the CSR signed by the token does not verify"; }
}

# srv_standard_pki CNF KEY: the PKI every server test uses, in $T, named as
# in examples/servers:
#   sp-root.pem/key  "SP Root", the test root (key in a file)
#   look.pem/key     a look-alike root: the same subject, another key
#   in-cse.pem       the server: DNS:in-cse.sp.example.com, keyUsage
#                    digitalSignature, for the key KEY in the token (the CSR is
#                    signed in the token, through the provider configured by CNF)
#   in-cse-look.pem  the same name and token key, signed by the look-alike root
#   ae1.pem/key      Entity A: URI://sp.example.com/in-cse/Cae1, key in a file
#   stranger.pem/key another AE (//sp.example.com/in-cse/Cstranger) of sp-root
#   ae1-look.pem/key Entity A's name, signed by the look-alike root
#   a.policy         examples/servers/entity-a.policy: Entity A, peer /in-cse
#   a-look.policy    the same with ae1-look as own certificate
#   a-other.policy   the same plus a peer /other-cse (dns:other-cse.sp.example.com)
# SRV_FQDN, SRV_CSE, SRV_AE, SRV_STRANGER hold the names.
SRV_FQDN=in-cse.sp.example.com
SRV_CSE=/in-cse
SRV_AE=//sp.example.com/in-cse/Cae1
SRV_STRANGER=//sp.example.com/in-cse/Cstranger
srv_standard_pki() {
    srv_root sp-root "/O=m2mtls tests/CN=SP Root"
    srv_root look "/O=m2mtls tests/CN=SP Root"
    srv_token_csr "$2" "$1" "$T/in-cse.csr" "$SRV_FQDN"
    srv_sign "$T/in-cse.csr" sp-root "DNS:$SRV_FQDN" "$T/in-cse.pem" 10
    srv_sign "$T/in-cse.csr" look "DNS:$SRV_FQDN" "$T/in-cse-look.pem" 11
    srv_leaf ae1 sp-root "URI:$SRV_AE" Cae1
    srv_leaf stranger sp-root "URI:$SRV_STRANGER" Cstranger
    srv_leaf ae1-look look "URI:$SRV_AE" Cae1
    srv_example entity-a.policy "$T/a.policy"
    sed -e 's/^cert .*/cert ae1-look.pem/' -e 's/^key .*/key ae1-look.key/' "$T/a.policy" >"$T/a-look.policy"
    cp "$T/a.policy" "$T/a-other.policy"
    echo "peer /other-cse dns:other-cse.sp.example.com sp-root" >>"$T/a-other.policy"
    for _f in a a-look a-other; do
        "$M2MTLS" policy check "$T/$_f.policy" >"$T/policy-check.log" 2>&1 \
            || { srv_show "$T/policy-check.log"; srv_die "policy $_f.policy does not load"; }
    done
}

# ---- TPM 2.0 simulator ---------------------------------------------------------------
# srv_swtpm_start DIR: a TPM 2.0 simulator and a resource manager, all
# started here and stopped by the EXIT trap:
#   swtpm (state in DIR) on free loopback TCP ports P (commands), P+1 (control);
#   a private D-Bus session bus (dbus-daemon, socket DIR/bus);
#   tpm2-abrmd on that bus, the only client of swtpm. Without a resource
#   manager, transient objects that tpm2_ptool's tools load stay in the TPM
#   and it runs out of object slots ("out of memory for object contexts").
# Exports DBUS_SESSION_BUS_ADDRESS, and TPM2TOOLS_TCTI = TPM2_PKCS11_TCTI =
# tabrmd:bus_type=session (tpm2-tools and tpm2-pkcs11 go through the broker).
srv_swtpm_start() {
    srv_need_cmd swtpm swtpm
    srv_need_cmd tpm2-tools tpm2_getrandom tpm2_flushcontext
    srv_need_cmd tpm2-abrmd tpm2-abrmd
    srv_need_cmd dbus-daemon dbus-daemon
    srv_find_lib SRV_TABRMD_TCTI libtss2-tcti-tabrmd0 /usr/lib/x86_64-linux-gnu/libtss2-tcti-tabrmd.so.0 \
        /usr/lib/libtss2-tcti-tabrmd.so.0 /usr/lib64/libtss2-tcti-tabrmd.so.0
    mkdir -p "$1"
    _n=0
    while :; do
        _n=$((_n + 1))
        [ $_n -le 5 ] || { srv_show "$T/swtpm.log"; srv_die "swtpm did not start"; }
        # the swtpm TCTI reaches the control channel on the next port
        SWTPM_PORT=$(srv_free_port_pair)
        SWTPM_CTRL=$((SWTPM_PORT + 1))
        srv_start swtpm swtpm socket --tpm2 --tpmstate "dir=$1" \
            --server "type=tcp,port=$SWTPM_PORT,bindaddr=127.0.0.1" \
            --ctrl "type=tcp,port=$SWTPM_CTRL,bindaddr=127.0.0.1" \
            --flags not-need-init,startup-clear
        srv_wait_port swtpm tcp "$SWTPM_PORT" 10 && srv_wait_port swtpm tcp "$SWTPM_CTRL" 5 && break
        srv_stop swtpm
    done
    DBUS_SESSION_BUS_ADDRESS=unix:path=$1/bus
    export DBUS_SESSION_BUS_ADDRESS
    srv_start dbus dbus-daemon --session --nofork --nopidfile --address="$DBUS_SESSION_BUS_ADDRESS"
    _i=0
    while [ ! -S "$1/bus" ] && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
    [ -S "$1/bus" ] || { srv_show "$T/dbus.log"; srv_die "dbus-daemon --session did not start"; }
    _root=""; [ "$(id -u)" -eq 0 ] && _root=--allow-root
    srv_start abrmd tpm2-abrmd --session $_root --flush-all \
        --tcti="swtpm:host=127.0.0.1,port=$SWTPM_PORT"
    TPM2TOOLS_TCTI=tabrmd:bus_type=session
    TPM2_PKCS11_TCTI=$TPM2TOOLS_TCTI
    export TPM2TOOLS_TCTI TPM2_PKCS11_TCTI
    _i=0
    until tpm2_getrandom 4 >/dev/null 2>"$T/tpm2_getrandom.log"; do
        _i=$((_i + 1))
        [ $_i -lt 100 ] && srv_alive "$(srv_pid abrmd)" \
            || { srv_show "$T/abrmd.log" "$T/tpm2_getrandom.log" "$T/swtpm.log"; srv_die "tpm2-abrmd does not answer"; }
        sleep 0.1
    done
}
# srv_tpm2_token STOREDIR LABEL PIN: a tpm2-pkcs11 token LABEL (store in
# STOREDIR, exported as TPM2_PKCS11_STORE) with an ECDSA P-256 key generated in
# the TPM: label "server". URI: pkcs11:token=LABEL;object=server
srv_tpm2_token() {
    srv_need_cmd libtpm2-pkcs11-tools tpm2_ptool
    mkdir -p "$1"
    TPM2_PKCS11_STORE=$1
    export TPM2_PKCS11_STORE
    {
        tpm2_ptool init --path "$1" &&
        tpm2_ptool addtoken --path "$1" --pid 1 --label "$2" --userpin "$3" --sopin 56785678 &&
        tpm2_ptool addkey --path "$1" --label "$2" --key-label server --userpin "$3" --algorithm ecc256
    } >"$T/tpm2_ptool.log" 2>&1 || { srv_show "$T/tpm2_ptool.log"; srv_die "tpm2_ptool: making the TPM token"; }
}

# ---- servers from examples/servers -----------------------------------------------------
# These run the shipped configurations with the test's files ($T/in-cse.pem,
# $T/in-cse.keyref.pem, $T/sp-root.pem, openssl.cnf CNF) on a free port ($port).
# The token's environment (SOFTHSM2_CONF, TPM2_PKCS11_*, DBUS_SESSION_BUS_ADDRESS)
# is inherited.

# srv_nginx_start NAME CERT CNF [SED]: nginx (master + 1 worker, daemon off)
# with examples/servers/nginx.conf, prefix $T/NAME/ (logs/error.log, pid,
# temp), the server certificate $T/CERT; SED edits the configuration further;
# SRV_NG_ENV (VAR=value words, e.g. LD_PRELOAD=... M2MTLS_POLICY=...) is added
# to nginx's environment
srv_nginx_conf() { # PORT
    mkdir -p "$T/$SRV_NG_NAME/logs" "$T/$SRV_NG_NAME/temp"
    if [ "$(id -u)" -eq 0 ]; then _who="user $(id -un) $(id -gn);"; else _who=""; fi
    srv_example nginx.conf "$T/$SRV_NG_NAME.conf" \
        "s|^user .*|$_who|; s|listen 127.0.0.1:8443 ssl;|listen 127.0.0.1:$1 ssl;|; s|$T/in-cse.pem;|$T/$SRV_NG_CERT;|"
    [ -z "$SRV_NG_SED" ] || sed -i "$SRV_NG_SED" "$T/$SRV_NG_NAME.conf"
    grep -q "listen 127.0.0.1:$1 ssl;" "$T/$SRV_NG_NAME.conf" \
        || srv_die "examples/servers/nginx.conf: no 'listen 127.0.0.1:8443 ssl;' to adapt"
}
srv_nginx_start() {
    srv_need_cmd nginx nginx
    SRV_NG_NAME=$1 SRV_NG_CERT=$2 SRV_NG_SED=${4:-}
    srv_start_port "$1" tcp srv_nginx_conf env OPENSSL_CONF="$3" ${SRV_NG_ENV:-} \
        nginx -p "$T/$1/" -c "$T/$1.conf" -e "$T/$1/logs/error.log" -g 'daemon off;' \
        || { srv_show "$T/$1/logs/error.log"; srv_die "nginx ($1) did not start"; }
}

# srv_s_server_start NAME KEY CNF: examples/servers/s_server.sh with the files
# of $T/NAME/ (in-cse.pem, sp-root.pem) and KEY (key reference file or pkcs11: URI)
srv_s_server_start() {
    srv_start_port "$1" tcp : env OPENSSL_CONF="$3" M2MTLS_ETC="$T/$1" PORT=@PORT@ KEY="$2" \
        sh "$SRV_EXAMPLES/s_server.sh" || srv_die "openssl s_server ($1) did not start"
}
# srv_http_get: $GET, an HTTP/1.0 request for `m2mtls connect --send`
GET=$(printf 'GET / HTTP/1.0\r\nHost: in-cse.sp.example.com\r\n\r\nx'); GET=${GET%x}   # $(...) drops trailing newlines

# srv_token_pki NAME: the setup of a server with its key in SoftHSM: token NAME in
# $T/hsm (key "server"), $T/openssl.cnf loading the provider, the key reference
# $T/in-cse.keyref.pem, srv_standard_pki with it; then cd $T
srv_token_pki() {
    srv_softhsm_token "$T/hsm" "$1" 1234
    srv_provider_cnf "$T/openssl.cnf" "$SOFTHSM" 1234
    srv_keyref "pkcs11:token=$1;object=server;type=private" "$T/in-cse.keyref.pem"
    srv_standard_pki "$T/openssl.cnf" "$T/in-cse.keyref.pem"
    cd "$T" || srv_die "cd $T"
}

# ---- the preload: policies that change, sessions kept between clients -------------------
# srv_preload_init NAME PROGRAM-NAME PRELOAD.so PROGRAM M2MTLS M2MTLS.so: the
# start of a test of a plain OpenSSL program (PROGRAM, called PROGRAM-NAME in
# the usage line) under libm2mtls-preload.so (PRELOAD.so): srv_init NAME
# M2MTLS M2MTLS.so, PRELOAD and PROGRAM as absolute paths, and in $T the
# roots ae-root and cse-root ("AE Root", "CSE Root") with the leaves server
# (DNS:in-cse.sp.example.com, of cse-root), good (Csensor7) and other (Cother)
# (URI://sp.example.com/in-cse/..., of ae-root)
srv_preload_init() {
    _pn=$1 _pusage="usage: $(basename "$0") PRELOAD.so $2 m2mtls m2mtls.so"
    PRELOAD=${3:?$_pusage}
    PROGRAM=${4:?$_pusage}
    shift 4
    srv_init "$_pn" "$@"
    case $PRELOAD in /*) ;; *) PRELOAD=$PWD/$PRELOAD ;; esac
    case $PROGRAM in /*) ;; *) PROGRAM=$PWD/$PROGRAM ;; esac
    srv_root ae-root "/CN=AE Root"
    srv_root cse-root "/CN=CSE Root"
    srv_leaf server cse-root "DNS:in-cse.sp.example.com" in-cse
    srv_leaf good ae-root "URI://sp.example.com/in-cse/Csensor7" Csensor7
    srv_leaf other ae-root "URI://sp.example.com/in-cse/Cother" Cother
}
# srv_hello_client NAME WHO [s_client options]: openssl s_client to the
# program of srv_preload_init on $port sends "hello NAME" (and keeps its input
# open SRV_HELLO_HOLD seconds more when set); output in $T/NAME.out and
# $T/NAME.err (WHO: a certificate name, or - for none)
srv_hello_client() {
    _c=$1 _who=$2; shift 2
    _id=""
    [ "$_who" != - ] && _id="-cert $T/$_who.pem -key $T/$_who.key"
    # shellcheck disable=SC2086
    (printf 'hello %s\n' "$_c"; [ -z "${SRV_HELLO_HOLD:-}" ] || sleep "$SRV_HELLO_HOLD") \
        | timeout 10 openssl s_client -connect "127.0.0.1:$port" -quiet $_id "$@" >"$T/$_c.out" 2>"$T/$_c.err"
}
# srv_hello_served NAME: the program answered srv_hello_client NAME
srv_hello_served() { grep -q "^served hello $1" "$T/$1.out"; }
# srv_expect_hello_served NAME LOG WHAT / srv_expect_hello_refused NAME LOG WHAT:
# the check WHAT: client NAME served (refused) and the preload's log line of it in $T/LOG.log
srv_expect_hello_served() {
    if srv_hello_served "$1" && srv_wait_log "$2" "accepted client=127.0.0.1:" 5; then srv_ok "$3"; else
        srv_fail "$3"; srv_show "$T/$1.out" "$T/$1.err" "$T/$2.log"; fi
}
srv_expect_hello_refused() {
    if ! srv_hello_served "$1" && srv_wait_log "$2" "refused client=127.0.0.1:" 5; then srv_ok "$3"; else
        srv_fail "$3"; srv_show "$T/$1.out" "$T/$1.err" "$T/$2.log"; fi
}
# srv_server_policy FILE AE-ID...: FILE becomes the responder policy of /in-cse
# (anchor sp-root) with one peer line per AE-ID (its URI subjectAltName), written
# beside FILE and renamed over it, as an operator replaces a live policy
srv_server_policy() {
    _pf=$1; shift
    { printf 'local-id %s\nanchor sp-root %s/sp-root.pem\n' "$SRV_CSE" "$T"
      for _id in "$@"; do printf 'peer %s uri:%s sp-root\n' "$_id" "$_id"; done; } >"$_pf.new"
    mv "$_pf.new" "$_pf"
}
# srv_s_client NAME PORT CERT ARGS...: openssl s_client with $T/CERT.pem/.key
# (e.g. -sess_out FILE, -sess_in FILE, -tls1_2) sends an HTTP GET; its output in
# $T/NAME.out ("New, ..." or "Reused, ...", the HTTP answer), status in $rc
srv_s_client() {
    _sname=$1 _sport=$2 _scert=$3; shift 3
    printf 'GET / HTTP/1.0\r\nHost: %s\r\n\r\n' "$SRV_FQDN" | timeout -k 2 10 openssl s_client \
        -connect "127.0.0.1:$_sport" -cert "$T/$_scert.pem" -key "$T/$_scert.key" -CAfile "$T/sp-root.pem" \
        -ign_eof "$@" >"$T/$_sname.out" 2>&1
    rc=$?
}
