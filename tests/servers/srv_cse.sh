#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# examples/cse: the registrar CSE over CoAP/DTLS (libcoap), run by
# examples/cse/run-cse.sh as it is shipped: its key generated inside a SoftHSM
# token (key reference PEM, OPENSSL_CONF loads the provider), the policy
# examples/cse/in-cse.policy through libm2mtls-preload.so. A real libcoap
# client (coap-client-openssl) CREATEs an AE:
#   - the AE of the policy, From = its AE-ID (oneM2M options, or a JSON request
#     primitive; CSE-relative or absolute): 2001 (CoAP 2.01);
#   - the same AE claiming another From: 4106 ORIGINATOR_NOT_AUTHENTICATED
#     (CoAP 4.03), the body names the reason;
#   - libcoap 4.3 refuses a request with more than two oneM2M options itself
#     (4.02 Bad Option): the documented limit.
# coap-client-openssl does not know the oneM2M options either: it drops a
# response that carries oneM2M-RSC (critical option 307); the test reads that
# response from its -v 7 dump (code, RSC, RQI, body).
#   - an AE the policy does not know, or a look-alike root: no handshake;
#   - every preload log line names the client's address (libcoap's own BIO);
#   - without the preload no session has an identity: 4106 for everyone.
# usage: srv_cse.sh M2MTLS PROVIDER PRELOAD CSE-PROGRAM (or MISSING)
. "$(dirname "$0")/lib.sh"
srv_init cse "$1" "$2"
PRELOAD=${3:?usage: srv_cse.sh M2MTLS PROVIDER PRELOAD CSE-PROGRAM}
CSE=${4:?usage: srv_cse.sh M2MTLS PROVIDER PRELOAD CSE-PROGRAM}
[ -x "$CSE" ] || srv_die "the example CSE was not built (examples/cse needs the Debian package libcoap3-dev)"
srv_need_cmd libcoap3-bin coap-client-openssl
EXAMPLE=$(cd "$(dirname "$0")/../../examples/cse" && pwd)

srv_token_pki in-cse
srv_example ../cse/in-cse.policy "$T/in-cse.policy"

# cse_start NAME [ENV...]: examples/cse/run-cse.sh on a free UDP port ($port)
cse_start() {
    _cname=$1; shift
    srv_start_port "$_cname" udp : env OPENSSL_CONF="$T/openssl.cnf" M2MTLS_ETC="$T" M2MTLS_PRELOAD="$PRELOAD" \
        M2MTLS_CSE="$CSE" CSE_PORT=@PORT@ "$@" sh "$EXAMPLE/run-cse.sh" \
        || srv_die "the example CSE ($_cname) did not start"
}
# create NAME CERT KEY ARGS...: coap-client-openssl POSTs to the CSE base (20 s at most)
create() {
    _rname=$1 _cert=$2 _key=$3; shift 3
    srv_run "$_rname" 20 coap-client-openssl -B 5 -w -m post -c "$_cert" -j "$_key" -C sp-root.pem "$@" \
        "coaps://127.0.0.1:$port/in-cse"
}
# create_opt NAME CERT KEY ARGS...: the same, the response read from the client's
# dump into $T/NAME.out: "code=2.01 rsc=2001 rqi=... body=..."
create_opt() {
    _rname=$1 _cert=$2 _key=$3; shift 3
    srv_run "$_rname" 20 coap-client-openssl -v 7 -B 2 -m post -c "$_cert" -j "$_key" -C sp-root.pem "$@" \
        "coaps://127.0.0.1:$port/in-cse"
    _rc=$rc
    python3 - "$T/$_rname.err" "$T/$_rname.out" >"$T/$_rname.reply" <<'PY'
import re, sys
text = "".join(open(f, errors="replace").read() for f in sys.argv[1:])
m = re.search(r"t:ACK c:(\d\.\d\d) [^\n]*?\[([^\]]*)\]( :: '([^\n]*)')?(?:[^\n]*\n<<([0-9a-f]+)>>)?", text)
if not m:
    print("no response"); sys.exit(0)
opts = dict(re.findall(r"(\d+):((?:\\x[0-9A-F]{2})+)", m.group(2)))
val = lambda o: bytes(int(h, 16) for h in re.findall(r"\\x([0-9A-F]{2})", opts.get(o, "")))
body = m.group(4) if m.group(4) is not None else bytes.fromhex(m.group(5) or "").decode(errors="replace")
print("code=%s rsc=%d rqi=%s body=%s" % (m.group(1), int.from_bytes(val("307"), "big"), val("283").decode(), body))
PY
    cat "$T/$_rname.reply" >>"$T/$_rname.out"
    rc=$_rc
}
AE_BODY='{"m2m:ae":{"rn":"sensor","api":"Nexample","rr":false,"srv":["3"]}}'

cse_start cse
srv_log_has cse "the CSE starts under the preload with the policy" "m2mtls: policy $T/in-cse.policy loaded: 1 peers"

create_opt opt-rel ae1.pem ae1.key -O 279,Cae1 -O 283,req-1 -e "$AE_BODY"
srv_expect opt-rel "CREATE AE, From (oneM2M-FR) = the bound AE, CSE-relative: 2001 (CoAP 2.01, oneM2M-RSC, oneM2M-RQI)" 0 \
    'code=2.01 rsc=2001 rqi=req-1 body={"m2m:ae":{"aei":"Cae1"'
srv_log_has cse "the CSE answered 2001" 'CREATE ae From=Cae1 -> {"m2m:ae":{"aei":"Cae1"'
srv_log_has cse "the preload logs the AE with the client's address (libcoap's BIO)" \
    "m2mtls: accepted client=127.0.0.1:"
create_opt opt-abs ae1.pem ae1.key -O 279,"$SRV_AE" -O 283,req-2 -e "$AE_BODY"
srv_expect opt-abs "CREATE AE, From = the absolute AE-ID: 2001" 0 "code=2.01 rsc=2001 rqi=req-2 body={\"m2m:ae\":{\"aei\":\"$SRV_AE\""
create json ae1.pem ae1.key -t 10007 \
    -e "{\"fr\":\"Cae1\",\"rqi\":\"req-3\",\"rvi\":\"3\",\"ty\":2,\"pc\":$AE_BODY}"
srv_expect json "CREATE AE as a JSON request primitive (fr/rqi/rvi/ty): 2001" 0 \
    '{"rsc":2001,"rqi":"req-3","rvi":"3","pc":{"m2m:ae":{"aei":"Cae1"'

create_opt opt-other ae1.pem ae1.key -O 279,Cstranger -O 283,req-4 -e "$AE_BODY"
srv_expect opt-other "the bound AE claiming another From (oneM2M-FR): 4106 (CoAP 4.03), with the reason" 0 \
    "code=4.03 rsc=4106 rqi=req-4 body={\"m2m:dbg\":\"ORIGINATOR_NOT_AUTHENTICATED: From Cstranger is not $SRV_AE, the identity bound to the security association\"}"
create_opt opt-four ae1.pem ae1.key -O 267,0x02 -O 271,3 -O 279,Cae1 -O 283,req-6 -e "$AE_BODY"
srv_expect opt-four "TY and RVI as options too: libcoap 4.3 answers 4.02 Bad Option itself (two option numbers above 255)" 0 \
    "code=4.02 rsc=0 rqi= body=Bad Option"
create json-other ae1.pem ae1.key \
    -e "{\"fr\":\"//sp.example.com/in-cse/Cstranger\",\"rqi\":\"req-5\",\"rvi\":\"3\",\"ty\":2,\"pc\":$AE_BODY}"
srv_expect json-other "the bound AE claiming another From (JSON): 4106 in the response primitive, CoAP 4.03" 0 \
    '4.03 {"rsc":4106,"rqi":"req-5","rvi":"3","pc":{"m2m:dbg":"ORIGINATOR_NOT_AUTHENTICATED: From //sp.example.com/in-cse/Cstranger is not'
create no-from ae1.pem ae1.key -e "{\"rqi\":\"req-7\",\"ty\":2,\"pc\":$AE_BODY}"
srv_expect no-from "no From at all: 4000 (CoAP 4.00)" 0 '4.00 {"rsc":4000,"rqi":"req-7","rvi":"","pc":{"m2m:dbg":"no From'

create stranger stranger.pem stranger.key -e "{\"fr\":\"Cstranger\",\"ty\":2,\"pc\":$AE_BODY}"
if grep -q '"m2m:ae"' "$T/stranger.out"; then srv_fail "an AE the policy does not know is not served"; srv_show "$T/stranger.out"
else srv_ok "an AE the policy does not know gets no DTLS session, no answer"; fi
srv_log_has cse "its refusal is logged with its address and the reason" \
    "m2mtls: refused client=127.0.0.1:"
srv_log_has cse "... naming the certificate" "no association matches the certificate's names [uri:$SRV_STRANGER]"
create look ae1-look.pem ae1-look.key -e "{\"fr\":\"Cae1\",\"ty\":2,\"pc\":$AE_BODY}"
if grep -q '"m2m:ae"' "$T/look.out"; then srv_fail "a look-alike root is not served"; srv_show "$T/look.out"
else srv_ok "the AE's name from a look-alike root gets no DTLS session"; fi
srv_log_has cse "its refusal names the Root of Trust" "fails its Root of Trust: anchor 'sp-root'"
if grep -q "m2mtls: \(accepted\|refused\) client=-" "$T/cse.log"; then srv_fail "a log line without the client's address"; srv_show "$T/cse.log"
else srv_ok "every preload log line has the client's address"; fi
create again ae1.pem ae1.key -e "{\"fr\":\"Cae1\",\"ty\":2,\"pc\":$AE_BODY}"
srv_expect again "the CSE still serves the AE after the refusals" 0 '{"rsc":2001,"rqi":"","rvi":"","pc":{"m2m:ae":{"aei":"Cae1"'
srv_connect connect --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --dtls
srv_expect connect "m2mtls connect --dtls: the CSE is /in-cse, its key in the token" 0 "peer id:   $SRV_CSE" \
    "protocol:  DTLSv1.2, ECDHE-ECDSA-AES128-CCM8"
srv_stop cse

# Without the preload the sessions carry no identity: the CSE refuses every From.
cse_start bare M2MTLS_PRELOAD=
create bare ae1.pem ae1.key -e "{\"fr\":\"Cae1\",\"ty\":2,\"pc\":$AE_BODY}"
srv_expect bare "without the preload: no security association, 4106 (fails closed)" 0 \
    "ORIGINATOR_NOT_AUTHENTICATED: no security association"
srv_stop bare

srv_finish
