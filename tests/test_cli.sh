#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The m2mtls command line: `m2mtls inspect` (exit 0 accepted / 1 rejected /
# 2 usage, policy or file error, --json, --peer, --chain, --at) and
# `m2mtls policy check`. The PKI is made with the openssl command.
# usage: test_cli.sh PATH-TO-m2mtls
set -u
M2MTLS=${1:?usage: test_cli.sh PATH-TO-m2mtls}
case $M2MTLS in /*) ;; *) M2MTLS=$PWD/$M2MTLS ;; esac
[ -x "$M2MTLS" ] || { echo "$M2MTLS is not an executable"; exit 1; }
command -v openssl >/dev/null || { echo "openssl command not found"; exit 1; }
command -v python3 >/dev/null || { echo "python3 not found (needed to check --json)"; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/m2mtls-cli-XXXXXX") || exit 1
[ -n "${KEEP_T:-}" ] || trap 'rm -rf "$T"' EXIT INT TERM
failures=0
checks=0

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { checks=$((checks + 1)); }

# run NAME ARGS...: runs m2mtls, keeps stdout/stderr in $T/NAME.out/.err, sets $rc
run() {
    name=$1; shift
    "$M2MTLS" "$@" >"$T/$name.out" 2>"$T/$name.err"
    rc=$?
}
expect_rc() { # NAME WANT
    if [ "$rc" -eq "$2" ]; then ok; else
        fail "$1: exit $rc, expected $2"; sed 's/^/    stdout: /' "$T/$1.out"; sed 's/^/    stderr: /' "$T/$1.err"
    fi
}
first_line() { head -n 1 "$T/$1.out"; }

# ---- PKI ------------------------------------------------------------------------
gen() { # openssl, quiet unless it fails
    if ! openssl "$@" >"$T/openssl.log" 2>&1; then cat "$T/openssl.log"; echo "openssl $* failed"; exit 1; fi
}
cd "$T" || exit 1
EC="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
gen req -x509 $EC -keyout root.key -out root.pem -subj "/O=m2mtls tests/CN=CLI Root" -days 30 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
cat >ca.ext <<'EOF'
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
leaf_ext() { # SAN
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectAltName=%s\n' "$1"
}
issue() { # NAME CN SAN ISSUER SERIAL
    gen req -new $EC -keyout "$1.key" -out "$1.csr" -subj "/O=m2mtls tests/CN=$2"
    leaf_ext "$3" >"$1.ext"
    gen x509 -req -in "$1.csr" -CA "$4.pem" -CAkey "$4.key" -set_serial "$5" -days 10 \
        -extfile "$1.ext" -out "$1.pem"
}
gen req -new $EC -keyout inter.key -out inter.csr -subj "/O=m2mtls tests/CN=CLI Intermediate"
gen x509 -req -in inter.csr -CA root.pem -CAkey root.key -set_serial 2 -days 20 -extfile ca.ext -out inter.pem
issue cse1 cse1 "DNS:cse1.example.com" root 10
issue other other "DNS:other.example.com" root 11
issue cse2 cse2 "DNS:cse2.example.com" inter 12
issue ae Csensor7 "URI://sp.example.com/CSE-1/Csensor7" root 13
# a look-alike root: same subject, another key
gen req -x509 $EC -keyout look.key -out look.pem -subj "/O=m2mtls tests/CN=CLI Root" -days 30 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
issue fake1 cse1 "DNS:cse1.example.com" look 14

cat >good.policy <<'EOF'
# three peers
local-id /CSE-IN
anchor ROOT root.pem
peer /CSE-1 dns:cse1.example.com ROOT
peer /CSE-2 dns:cse2.example.com ROOT as=/CSE-IN-2
peer //sp.example.com/CSE-1/Csensor7 uri://sp.example.com/CSE-1/Csensor7 ROOT
EOF
cat >bad.policy <<'EOF'
anchor ROOT root.pem
peer /CSE-1 dns:cse1.example.com ROOT
frobnicate this line
peer /CSE-2 dns:*.example.com ROOT
EOF
P="$T/good.policy"
cd / || exit 1   # relative names in the policy resolve against its directory

# ---- inspect: accepted ------------------------------------------------------------
run acc inspect --policy "$P" "$T/cse1.pem"
expect_rc acc 0
[ "$(first_line acc)" = "accepted: /CSE-1" ] && ok || fail "accepted: first line is '$(first_line acc)'"

run acc_uri inspect --policy "$P" "$T/ae.pem"
expect_rc acc_uri 0
[ "$(first_line acc_uri)" = "accepted: //sp.example.com/CSE-1/Csensor7" ] && ok \
    || fail "URI peer: first line is '$(first_line acc_uri)'"

# ---- inspect: rejected ------------------------------------------------------------
run rej inspect --policy "$P" "$T/other.pem"
expect_rc rej 1
case "$(first_line rej)" in "rejected: "?*) ok ;; *) fail "rejected: first line is '$(first_line rej)'" ;; esac

run rej_look inspect --policy "$P" "$T/fake1.pem"
expect_rc rej_look 1
case "$(first_line rej_look)" in "rejected: "*ROOT*) ok ;; *) fail "look-alike root: first line is '$(first_line rej_look)'" ;; esac

# ---- --peer (initiator) -------------------------------------------------------------
run peer_ok inspect --policy "$P" --peer /CSE-1 "$T/cse1.pem"
expect_rc peer_ok 0
[ "$(first_line peer_ok)" = "accepted: /CSE-1" ] && ok || fail "--peer: first line is '$(first_line peer_ok)'"
run peer_rej inspect --policy "$P" --peer //sp.example.com/CSE-1/Csensor7 "$T/cse1.pem"
expect_rc peer_rej 1
case "$(first_line peer_rej)" in "rejected: "?*) ok ;; *) fail "--peer other: first line is '$(first_line peer_rej)'" ;; esac

# ---- --chain ------------------------------------------------------------------------
run chain_ok inspect --policy "$P" --chain "$T/inter.pem" "$T/cse2.pem"
expect_rc chain_ok 0
[ "$(first_line chain_ok)" = "accepted: /CSE-2" ] && ok || fail "--chain: first line is '$(first_line chain_ok)'"
run chain_missing inspect --policy "$P" "$T/cse2.pem"
expect_rc chain_missing 1

# ---- --at -----------------------------------------------------------------------------
run at_past inspect --policy "$P" --at 2000-01-01T00:00:00Z "$T/cse1.pem"
expect_rc at_past 1
case "$(first_line at_past)" in "rejected: "?*) ok ;; *) fail "--at: first line is '$(first_line at_past)'" ;; esac
in5days=$(date -u -d '@'$(( $(date +%s) + 5 * 86400 )) +%Y-%m-%dT%H:%M:%SZ 2>/dev/null)
if [ -n "$in5days" ]; then
    run at_ok inspect --policy "$P" --at "$in5days" "$T/cse1.pem"
    expect_rc at_ok 0
fi
run at_bad inspect --policy "$P" --at yesterday "$T/cse1.pem"
expect_rc at_bad 2

# ---- --json ---------------------------------------------------------------------------
json_check() { # NAME VERDICT-WORD PEER-ID-OR-EMPTY
    python3 - "$T/$1.out" "$2" "$3" <<'EOF'
import json, sys
path, verdict, peer = sys.argv[1], sys.argv[2], sys.argv[3]
with open(path) as f:
    o = json.load(f)
missing = [k for k in ("verdict", "peer_id", "reason", "names", "chain") if k not in o]
if missing:
    sys.exit("missing keys: %s in %s" % (missing, o))
if verdict not in str(o["verdict"]):
    sys.exit("verdict %r, expected %r" % (o["verdict"], verdict))
if peer and o["peer_id"] != peer:
    sys.exit("peer_id %r, expected %r" % (o["peer_id"], peer))
if not peer and o["peer_id"] is not None:
    sys.exit("peer_id %r on a rejection" % o["peer_id"])
if peer and o["reason"] is not None:
    sys.exit("reason %r on an acceptance" % o["reason"])
if not peer and not o["reason"]:
    sys.exit("no reason on a rejection")
if peer and o["reason_code"] is not None:
    sys.exit("reason_code %r on an acceptance" % o["reason_code"])
if not peer and o["reason_code"] != "name":
    sys.exit("reason_code %r, expected 'name' (no association matches)" % o["reason_code"])
if not isinstance(o["names"], list) or "dns:" not in json.dumps(o["names"]) and "uri:" not in json.dumps(o["names"]):
    sys.exit("names %r" % (o["names"],))
if not isinstance(o["chain"], list):
    sys.exit("chain %r" % (o["chain"],))
if peer and len(o["chain"]) < 2:
    sys.exit("chain of an accepted leaf under a root has %d entries" % len(o["chain"]))
EOF
}
run json_acc inspect --policy "$P" --json "$T/cse1.pem"
expect_rc json_acc 0
python3 -c 'import json,sys; json.load(sys.stdin)' <"$T/json_acc.out" && ok || fail "--json output does not parse"
json_check json_acc accept /CSE-1 && ok || { fail "--json accepted"; cat "$T/json_acc.out"; }
run json_rej inspect --policy "$P" --json "$T/other.pem"
expect_rc json_rej 1
json_check json_rej reject "" && ok || { fail "--json rejected"; cat "$T/json_rej.out"; }

# ---- --version: m2mtls's version, the OpenSSL built against and the one running ----------
run version --version
expect_rc version 0
grep -qx "m2mtls [0-9]*\.[0-9]*\.[0-9]*" "$T/version.out" && ok || { fail "--version: no 'm2mtls X.Y.Z' line"; cat "$T/version.out"; }
grep -q "^built with: *OpenSSL 3\." "$T/version.out" && ok || { fail "--version: no 'built with: OpenSSL' line"; cat "$T/version.out"; }
running=$(openssl version | cut -d' ' -f1-2)
grep -q "^running with: *$running" "$T/version.out" && ok || { fail "--version: no 'running with: $running' line"; cat "$T/version.out"; }

# ---- errors: exit 2 -------------------------------------------------------------------
run badpol inspect --policy "$T/bad.policy" "$T/cse1.pem"
expect_rc badpol 2
grep -q "$T/bad.policy:3:" "$T/badpol.err" && ok || { fail "bad policy: no FILE:LINE on stderr"; cat "$T/badpol.err"; }
run nocert inspect --policy "$P" "$T/no-such-cert.pem"
expect_rc nocert 2
run nopolicy inspect --policy "$T/no-such.policy" "$T/cse1.pem"
expect_rc nopolicy 2
run usage1 inspect "$T/cse1.pem"
expect_rc usage1 2
run usage2 inspect --policy "$P"
expect_rc usage2 2
run usage3 inspect --policy "$P" --bogus "$T/cse1.pem"
expect_rc usage3 2
run garbage inspect --policy "$P" "$T/good.policy"
expect_rc garbage 2

# ---- policy check -----------------------------------------------------------------------
run pc_good policy check "$P"
expect_rc pc_good 0
grep -Eq '(^|[^0-9])3([^0-9]|$)' "$T/pc_good.out" && ok || { fail "policy check: no peer count 3 in output"; cat "$T/pc_good.out"; }
run pc_bad policy check "$T/bad.policy"
expect_rc pc_bad 2
cat "$T/pc_bad.out" "$T/pc_bad.err" >"$T/pc_bad.all"
grep -q "$T/bad.policy:3:" "$T/pc_bad.all" && ok || { fail "policy check: no FILE:LINE for line 3"; cat "$T/pc_bad.all"; }
grep -q "$T/bad.policy:4:" "$T/pc_bad.all" && ok || { fail "policy check: no FILE:LINE for line 4"; cat "$T/pc_bad.all"; }
grep -q "$T/bad.policy:2:" "$T/pc_bad.all" && fail "policy check: the good line 2 reported" || ok
run pc_missing policy check "$T/no-such.policy"
expect_rc pc_missing 2

# ---- help ---------------------------------------------------------------------------------
run help --help
expect_rc help 0
grep -q inspect "$T/help.out" && ok || fail "--help does not mention inspect"
run ihelp inspect --help
expect_rc ihelp 0
grep -q -- --policy "$T/ihelp.out" && ok || fail "inspect --help does not mention --policy"
run nocmd
[ "$rc" -ne 0 ] && ok || fail "no command: exit 0"

echo "test_cli: $checks checks passed, $failures failed"
[ "$failures" -eq 0 ]
