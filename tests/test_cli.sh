#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The m2mtls command line: `m2mtls inspect` (exit 0 accepted / 1 rejected /
# 2 usage, policy or file error, --json, --peer, --chain, --at, --seclevel:
# the verdict of a handshake), `m2mtls inspect --lint` (the TS-0003
# certificate profile, one finding per check) and `m2mtls policy check`.
# The PKI is made with the openssl command.
# usage: test_cli.sh PATH-TO-m2mtls
set -u
M2MTLS=${1:?usage: test_cli.sh PATH-TO-m2mtls}
case $M2MTLS in /*) ;; *) M2MTLS=$PWD/$M2MTLS ;; esac
[ -x "$M2MTLS" ] || { echo "$M2MTLS is not an executable"; exit 1; }
command -v openssl >/dev/null || { echo "openssl command not found"; exit 1; }
command -v python3 >/dev/null || { echo "python3 not found (needed to check --json)"; exit 1; }
. "$(dirname "$0")/dated_cert.sh"

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

# ---- PKI (tests/servers/lib.sh: srv_openssl, srv_root, srv_leaf) ------------------------
. "$(dirname "$0")/servers/lib.sh"
gen() { # openssl, quiet unless it fails
    srv_openssl "$@"
}
cd "$T" || exit 1
EC=$SRV_EC
srv_root root "/O=m2mtls tests/CN=CLI Root"
cat >ca.ext <<'EOF'
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
gen req -new $EC -keyout inter.key -out inter.csr -subj "/O=m2mtls tests/CN=CLI Intermediate"
gen x509 -req -in inter.csr -CA root.pem -CAkey root.key -set_serial 2 -days 20 -extfile ca.ext -out inter.pem
srv_leaf cse1 root "DNS:cse1.example.com" cse1 10
srv_leaf other root "DNS:other.example.com" other 11
srv_leaf cse2 inter "DNS:cse2.example.com" cse2 12
srv_leaf ae root "URI://sp.example.com/CSE-1/Csensor7" Csensor7 13
# a look-alike root: same subject, another key
srv_root look "/O=m2mtls tests/CN=CLI Root"
srv_leaf fake1 look "DNS:cse1.example.com" cse1 14

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

# ---- inspect = handshake: strength, AE-ID scope, name constraints, true reasons ------------
cd "$T" || exit 1
serial=100
# csr NAME CN [KEY-OPTIONS]: a new key NAME.key and its NAME.csr
csr() {
    _n=$1 _cn=$2; shift 2
    [ $# -gt 0 ] || set -- $EC
    gen req -new "$@" -keyout "$_n.key" -out "$_n.csr" -subj "/O=m2mtls tests/CN=$_cn"
}
# sign NAME ISSUER EXTFILE [x509 options]: NAME.csr -> NAME.pem, signed by ISSUER
sign() {
    _n=$1 _i=$2 _e=$3; shift 3
    serial=$((serial + 1))
    gen x509 -req -in "$_n.csr" -CA "$_i.pem" -CAkey "$_i.key" -set_serial "$serial" -days 10 \
        -extfile "$_e" -out "$_n.pem" "$@"
}
ae_ext() { # URI [SAN]: the extensions of an AE certificate
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectAltName=%s\n' "${2:-URI:$1}"
    printf 'subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n'
}
ca_root() { # NAME CN KEY-OPTIONS...: a self-signed CA
    _n=$1 _cn=$2; shift 2
    srv_root "$_n" "/O=m2mtls tests/CN=$_cn" "$@"
}
ca_root rsa1024 "RSA-1024 Root" -newkey rsa:1024 -nodes
ca_root rsa2048 "RSA-2048 Root" -newkey rsa:2048 -nodes
ca_root ncroot "NC Root" $EC -addext "nameConstraints=critical,permitted;URI:sp.example.com,permitted;DNS:.sp.example.com"
ae_ext //sp.example.com/CSE-A/Csha1 >sha1.ext;        csr sha1 Csha1;   sign sha1 root sha1.ext -sha1
ae_ext //sp.example.com/CSE-A/Cp192 >p192.ext;        csr p192 Cp192 -newkey ec -pkeyopt ec_paramgen_curve:P-192 -nodes
sign p192 root p192.ext
ae_ext //sp.example.com/CSE-W/Cweak >weak.ext;        csr weak Cweak;   sign weak rsa1024 weak.ext
ae_ext //sp.example.com/CSE-X/Crsa >rsa.ext;          csr rsa Crsa;     sign rsa rsa2048 rsa.ext
ae_ext //sp.example.com/CSE-A/Cx/sub >deep.ext;       csr deep Cx;      sign deep root deep.ext
ae_ext //sp.example.com/CSE-A/Csensor7 >ncin.ext;     csr ncin Cin;     sign ncin ncroot ncin.ext
ae_ext //other.example.org/CSE-A/Csensor7 >ncout.ext; csr ncout Cout;   sign ncout ncroot ncout.ext
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectAltName=DER:30:10:82:05:63:73:65\n' >badsan.ext
csr badsan Cbad; sign badsan root badsan.ext
printf '%s\n' "anchor ROOT root.pem" "anchor RSA1024 rsa1024.pem" "anchor RSA2048 rsa2048.pem" "anchor NC ncroot.pem" \
    "peers-from-cert ROOT uri-prefix://sp.example.com/CSE-A/" "peers-from-cert RSA1024 uri-prefix://sp.example.com/CSE-W/" \
    "peers-from-cert RSA2048 uri-prefix://sp.example.com/CSE-X/" "peers-from-cert NC uri-prefix://sp.example.com/CSE-A/" \
    "peers-from-cert NC uri-prefix://other.example.org/CSE-A/" >strength.policy
SP="$T/strength.policy"
cd / || exit 1
expect_first() { # NAME TEXT: the first line of NAME's output contains TEXT
    case "$(first_line "$1")" in *"$2"*) ok ;; *) fail "$1: first line '$(first_line "$1")' lacks '$2'" ;; esac
}
# default level, and levels 0 to 2: the policy holds every chain to level 2 at least
for lvl in "" 0 1 2; do
    set --; [ -n "$lvl" ] && set -- --seclevel "$lvl"
    run "sha1$lvl" inspect --policy "$SP" "$@" "$T/sha1.pem"; expect_rc "sha1$lvl" 1
    expect_first "sha1$lvl" "CA signature digest algorithm too weak"
    run "p192$lvl" inspect --policy "$SP" "$@" "$T/p192.pem"; expect_rc "p192$lvl" 1
    expect_first "p192$lvl" "EE certificate key too weak"
    run "weak$lvl" inspect --policy "$SP" "$@" "$T/weak.pem"; expect_rc "weak$lvl" 1
    expect_first "weak$lvl" "CA certificate key too weak"
done
run rsa_default inspect --policy "$SP" "$T/rsa.pem";             expect_rc rsa_default 0
run rsa_level3 inspect --policy "$SP" --seclevel 3 "$T/rsa.pem"; expect_rc rsa_level3 1
expect_first rsa_level3 "security level 3"
run seclevel_bad inspect --policy "$SP" --seclevel 6 "$T/rsa.pem";     expect_rc seclevel_bad 2
run seclevel_word inspect --policy "$SP" --seclevel high "$T/rsa.pem"; expect_rc seclevel_word 2
run deep inspect --policy "$SP" "$T/deep.pem"; expect_rc deep 1
expect_first deep "exactly one AE-ID-Stem"
run ncin inspect --policy "$SP" "$T/ncin.pem"; expect_rc ncin 0
[ "$(first_line ncin)" = "accepted: //sp.example.com/CSE-A/Csensor7" ] && ok || fail "ncin: '$(first_line ncin)'"
run ncout inspect --policy "$SP" "$T/ncout.pem"; expect_rc ncout 1
expect_first ncout "name constraint violation: permitted subtree violation"
run badsan inspect --policy "$SP" "$T/badsan.pem"; expect_rc badsan 1
[ "$(first_line badsan)" = "rejected: certificate subjectAltName extension cannot be decoded" ] && ok \
    || fail "badsan: '$(first_line badsan)'"
printf 'anchor ROOT root.pem\npeers-from-cert ROOT uri-prefix://sp.example.com/CSE-A/Cx/\n' >"$T/badprefix.policy"
run badprefix inspect --policy "$T/badprefix.policy" "$T/deep.pem"; expect_rc badprefix 2
grep -q "badprefix.policy:2: peers-from-cert: uri-prefix://sp.example.com/CSE-A/Cx/: must be //SP-ID/ or //SP-ID/CSE-ID/" \
    "$T/badprefix.err" && ok || { fail "bad prefix: no FILE:LINE"; cat "$T/badprefix.err"; }

# ---- inspect --lint: the TS-0003 certificate profile -------------------------------------
cd "$T" || exit 1
ca_ext() { # [sed script]: the extensions of a TS-0003 intermediate CA
    printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n'
    printf 'authorityKeyIdentifier=keyid\nnameConstraints=critical,permitted;URI:sp.example.com,permitted;DNS:.sp.example.com\n'
}
ca_ext >linter.ext; csr linter "Lint Intermediate"; sign linter ncroot linter.ext
# lint_case NAME ISSUER EXTFILE [CSR-KEY-OPTIONS] [-- X509-OPTIONS]: NAME.pem
lint_case() {
    _n=$1 _i=$2 _e=$3; shift 3
    _k=""; while [ $# -gt 0 ] && [ "$1" != -- ]; do _k="$_k $1"; shift; done
    [ $# -gt 0 ] && shift
    csr "$_n" "C$_n" $_k
    sign "$_n" "$_i" "$_e" "$@"
}
ae_ext //sp.example.com/CSE-A/Csensor7 >clean.ext;   lint_case clean linter clean.ext
ae_ext x DNS:in-cse.sp.example.com >cse.ext;          lint_case cse linter cse.ext
lint_case rsakey linter clean.ext -newkey rsa:2048 -nodes
lint_case sha384 linter clean.ext -- -sha384
grep -v keyUsage clean.ext >noku.ext;                  lint_case noku linter noku.ext
sed 's/digitalSignature/keyAgreement/' clean.ext >kuenc.ext; lint_case kuenc linter kuenc.ext
ae_ext x 'DNS:*.sp.example.com' >wild.ext;             lint_case wild linter wild.ext
grep -v subjectAltName clean.ext >cnonly.ext;          lint_case cnonly linter cnonly.ext
ae_ext x DNS:in-cse >notfqdn.ext;                      lint_case notfqdn linter notfqdn.ext
ae_ext /CSE-A/Csensor7 >relative.ext;                  lint_case relative linter relative.ext
ae_ext //sp.example.com/CSE-A/Sfleet >sunder.ext;      lint_case sunder linter sunder.ext
ae_ext x URI://sp.example.com/CSE-A/Cb,DNS:b.sp.example.com >both.ext; lint_case both linter both.ext
sed 's/=hash/=none/; s/=keyid/=none/' clean.ext >noids.ext; lint_case noids linter noids.ext
csr expired Cexpired; serial=$((serial + 1))      # it expired yesterday
dated_cert gen expired.csr linter.pem linter.key clean.ext "$serial" -2 -1 expired.pem
lint_case badext linter badsan.ext
ca_ext | sed 's/^basicConstraints=critical,/basicConstraints=/; /^nameConstraints/d' >weakca.ext
lint_case weakca ncroot weakca.ext
gen ec -in clean.key -conv_form compressed -out compressed.key
gen req -new -key compressed.key -out compressed.csr -subj "/O=m2mtls tests/CN=Ccompressed"
sign compressed linter clean.ext
cat linter.pem ncroot.pem >chain.pem
cd / || exit 1

run lint_clean inspect --lint --chain "$T/chain.pem" "$T/clean.pem"; expect_rc lint_clean 0
expect_first lint_clean "clean: $T/clean.pem follows the TS-0003 certificate profile (3 certificates)"
run lint_cse inspect --lint --chain "$T/chain.pem" "$T/cse.pem"; expect_rc lint_cse 0
# lint_finding NAME CHECK CLAUSE [CHAIN]: exit 1, a line "depth N (...): [CLAUSE] CHECK: ..."
lint_finding() {
    if [ -n "${4:-}" ]; then set -- "$1" "$2" "$3" --chain "$4"; fi
    _ln=$1 _check=$2 _clause=$3; shift 3
    run "lint_$_ln" inspect --lint "$@" "$T/$_ln.pem"
    expect_rc "lint_$_ln" 1
    grep -qF "[$_clause] $_check: " "$T/lint_$_ln.out" && grep -q "^depth [0-9] (" "$T/lint_$_ln.out" && ok \
        || { fail "lint $_ln: no '[$_clause] $_check:' finding"; cat "$T/lint_$_ln.out"; }
}
lint_finding rsakey key "TS-0003 10.1.1.1"
lint_finding compressed ec-point "TS-0003 10.1.1.1"
lint_finding sha384 signature "TS-0003 10.1.1.1"
lint_finding noku key-usage "TS-0003 10.1.1.1; RFC 5280 4.2.1.3"
lint_finding kuenc key-usage "TS-0003 10.1.1.1; RFC 5280 4.2.1.3"
lint_finding wild wildcard "TS-0003 8.1.2.5"
lint_finding cnonly subject-alt-name "TS-0003 8.1.2.5"
lint_finding notfqdn name "TS-0003 8.1.2.5"
lint_finding relative name "TS-0003 8.1.2.5; TS-0001 7.2"
lint_finding sunder name "TS-0003 8.1.2.5; TS-0001 7.2"
lint_finding both name "TS-0003 8.1.2.5"
lint_finding noids subject-key-id "RFC 5280 4.2.1.2"
lint_finding noids authority-key-id "RFC 5280 4.2.1.1"
lint_finding expired validity "RFC 5280 4.1.2.5"
lint_finding badext extensions "RFC 5280 4.2"
lint_finding weakca basic-constraints "RFC 5280 4.2.1.9"
lint_finding weakca name-constraints "TS-0003 10.1.1.3; RFC 5280 4.2.1.10"
# a finding deeper in the chain: a root without nameConstraints
lint_finding clean name-constraints "TS-0003 10.1.1.3; RFC 5280 4.2.1.10" "$T/root.pem"
# each bad case has the one finding it was made for
for c in rsakey compressed sha384 noku kuenc wild cnonly notfqdn relative sunder both expired badext; do
    [ "$(grep -c '^depth' "$T/lint_$c.out")" -eq 1 ] && ok || { fail "lint $c: not exactly one finding"; cat "$T/lint_$c.out"; }
done
run lint_at inspect --lint --at 2000-01-01T00:00:00Z "$T/clean.pem"; expect_rc lint_at 1
grep -q "validity: not valid before" "$T/lint_at.out" && ok || fail "lint --at: no 'not valid before' finding"
run lint_json inspect --lint --json --chain "$T/root.pem" "$T/rsakey.pem"; expect_rc lint_json 1
python3 - "$T/lint_json.out" <<'PY' && ok || { fail "lint --json"; cat "$T/lint_json.out"; }
import json, sys
o = json.load(open(sys.argv[1]))
assert o["clean"] is False, o
assert [c["depth"] for c in o["certificates"]] == [0, 1], o
checks = {(f["depth"], f["check"], f["clause"]) for f in o["findings"]}
assert (0, "key", "TS-0003 10.1.1.1") in checks, checks
assert (1, "name-constraints", "TS-0003 10.1.1.3; RFC 5280 4.2.1.10") in checks, checks
assert all(f["message"] for f in o["findings"]), o
PY
run lint_json_clean inspect --lint --json --chain "$T/chain.pem" "$T/clean.pem"; expect_rc lint_json_clean 0
python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["clean"] is True and o["findings"] == [] and len(o["certificates"]) == 3, o' \
    "$T/lint_json_clean.out" && ok || fail "lint --json clean"
run lint_policy inspect --lint --policy "$P" "$T/clean.pem"; expect_rc lint_policy 2
run lint_nofile inspect --lint "$T/no-such.pem";                expect_rc lint_nofile 2
run lint_two inspect --lint "$T/clean.pem" "$T/cse.pem";        expect_rc lint_two 2

# ---- help ---------------------------------------------------------------------------------
run help --help
expect_rc help 0
grep -q inspect "$T/help.out" && ok || fail "--help does not mention inspect"
run ihelp inspect --help
expect_rc ihelp 0
grep -q -- --policy "$T/ihelp.out" && ok || fail "inspect --help does not mention --policy"
grep -q -- --lint "$T/ihelp.out" && grep -q -- --seclevel "$T/ihelp.out" && ok \
    || fail "inspect --help does not mention --lint and --seclevel"
run nocmd
[ "$rc" -ne 0 ] && ok || fail "no command: exit 0"

echo "test_cli: $checks checks passed, $failures failed"
[ "$failures" -eq 0 ]
