#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Attempts to get around libm2mtls-preload.so (README "Attempts to get around
# it"): careless_server.c (plain OpenSSL) under the preload, real
# `openssl s_client` clients on loopback:
#   - a program that takes OpenSSL's functions with dlopen + dlsym;
#   - a relative M2MTLS_POLICY, M2MTLS_RELOAD, and a program that chdir()s
#     into a directory holding another file of that name;
#   - M2MTLS_POLICY (or a reloaded file) that is a FIFO, a directory, a
#     device, or a regular file with one endless line;
#   - TLS 1.3 0.5-RTT data (SSL_write_early_data before the client's Finished);
#   - its own certificate verifier, client hello and verify callbacks that loosen;
#   - a certificate name with a '"' (the log line's quoted reason, also `m2mtls serve`);
#   - SSL_set_info_callback(ssl, NULL) next to the program's SSL_CTX callback.
# usage: attack_preload.sh PRELOAD.so careless_server m2mtls m2mtls.so
set -u
. "$(dirname "$0")/../servers/lib.sh"
srv_preload_init attack-preload careless_server "$@"
SRV_HELLO_HOLD=0.5 # each client keeps its input open 0.5 s after its "hello"
# policy FILE PEER...: the responder's policy accepting the AE-IDs PEER...
policy() {
    _f=$1; shift
    printf 'local-id /in-cse\nanchor ae-root %s/ae-root.pem\n' "$T" >"$_f"
    for _p in "$@"; do
        printf 'peer //sp.example.com/in-cse/%s uri://sp.example.com/in-cse/%s ae-root\n' "$_p" "$_p" >>"$_f"
    done
}
policy "$T/server.policy" Csensor7

# program NAME ENV... -- OPTIONS...: the program under the preload (in $T); $port
program() {
    _n=$1; shift
    _env=""
    while [ "$1" != -- ]; do _env="$_env $1"; shift; done
    shift
    # shellcheck disable=SC2086
    srv_start "$_n" sh -c 'cd "$0" && exec "$@"' "${CWD:-$T}" env LD_PRELOAD="$PRELOAD" $_env \
        "$PROGRAM" --cert "$T/server.pem" --key "$T/server.key" "$@"
    srv_wait_log "$_n" "listening " 10 || { srv_show "$T/$_n.log"; srv_die "$_n does not start"; }
    port=$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$T/$_n.log")
}

# ---- OpenSSL through dlopen + dlsym -------------------------------------------------
program dlopen M2MTLS_POLICY="$T/server.policy" -- --dlopen --verify-none
grep -q "^OpenSSL through dlsym" "$T/dlopen.log" || srv_die "the program did not take OpenSSL through dlsym"
srv_hello_client dlopen-anon - -tls1_2
srv_expect_hello_refused dlopen-anon dlopen "dlopen/dlsym: a client without a certificate is refused"
srv_hello_client dlopen-other other
srv_expect_hello_refused dlopen-other dlopen "dlopen/dlsym: an AE the policy does not name is refused"
srv_hello_client dlopen-good good
srv_expect_hello_served dlopen-good dlopen "dlopen/dlsym: the authorized AE is served and logged"
srv_stop dlopen
# ... and without a policy, no handshake at all (fails closed)
program dlopen-nopolicy M2MTLS_POLICY="$T/missing.policy" -- --dlopen --verify-none
srv_hello_client dlopen-nopolicy-good good
if ! srv_hello_served dlopen-nopolicy-good && srv_wait_log dlopen-nopolicy "cannot be applied" 5; then
    srv_ok "dlopen/dlsym without a loadable policy: no handshake completes"
else
    srv_fail "dlopen/dlsym without a loadable policy: no handshake completes"
    srv_show "$T/dlopen-nopolicy.log" "$T/dlopen-nopolicy-good.out"
fi
srv_stop dlopen-nopolicy

# ---- a relative M2MTLS_POLICY, reload, and a program that changes directory ----------
mkdir -p "$T/etc" "$T/elsewhere"
policy "$T/etc/server.policy" Csensor7
policy "$T/elsewhere/server.policy" Csensor7 Cother   # not the operator's file
CWD=$T/etc program chdir M2MTLS_POLICY=server.policy M2MTLS_RELOAD=1 -- --chdir "$T/elsewhere"
srv_hello_client chdir-other-1 other
srv_expect_hello_refused chdir-other-1 chdir "relative M2MTLS_POLICY: Cother is refused"
sleep 1.2
srv_hello_client chdir-other-2 other
srv_hello_client chdir-good good
if ! srv_hello_served chdir-other-2 && srv_hello_served chdir-good && ! grep -q "reloaded" "$T/chdir.log"; then
    srv_ok "relative M2MTLS_POLICY: after the program's chdir, reload still reads the operator's file"
else
    srv_fail "relative M2MTLS_POLICY: after the program's chdir, reload read another file"
    srv_show "$T/chdir.log" "$T/chdir-other-2.out"
fi
# the operator's file changes: that one is reloaded
sleep 1.2
policy "$T/etc/server.policy.new" Csensor7 Cother && mv "$T/etc/server.policy.new" "$T/etc/server.policy"
sleep 1.2
srv_hello_client chdir-trigger good
srv_hello_client chdir-other-3 other
if srv_hello_served chdir-other-3 && grep -q "policy server.policy reloaded\|policy $T/etc/server.policy reloaded" "$T/chdir.log"; then
    srv_ok "relative M2MTLS_POLICY: a change of the operator's file is reloaded"
else
    srv_fail "relative M2MTLS_POLICY: a change of the operator's file is reloaded"; srv_show "$T/chdir.log"
fi
srv_stop chdir
policy "$T/etc/server.policy" Csensor7

# ---- M2MTLS_POLICY that is not a regular file ------------------------------------------
mkfifo "$T/fifo.policy"
head -c 3000000 /dev/zero | tr '\0' 'x' >"$T/long.policy"   # one endless line
for what in fifo.policy etc /dev/zero long.policy; do
    case $what in /*) path=$what ;; *) path=$T/$what ;; esac
    name=bad-$(basename "$what" | tr -c 'a-z0-9\n' '-')
    srv_start "$name" env LD_PRELOAD="$PRELOAD" M2MTLS_POLICY="$path" \
        "$PROGRAM" --cert "$T/server.pem" --key "$T/server.key"
    if srv_wait_log "$name" "careless_server: no TLS context" 10 \
       && grep -q "$path" "$T/$name.log"; then
        srv_ok "M2MTLS_POLICY=$what: refused at once, with the file named (no TLS context)"
    else
        srv_fail "M2MTLS_POLICY=$what: refused at once, with the file named"; srv_show "$T/$name.log"
    fi
    srv_stop "$name"
done
# ... and a reloaded file swapped for one of them: the policy in force stays, no handshake waits
program swap M2MTLS_POLICY="$T/etc/server.policy" M2MTLS_RELOAD=1 --
for what in fifo long; do
    sleep 1.2
    rm -f "$T/etc/server.policy"
    if [ $what = fifo ]; then mkfifo "$T/etc/server.policy"; else cp "$T/long.policy" "$T/etc/server.policy"; fi
    sleep 1.2
    srv_hello_client "swap-$what-good" good
    srv_hello_client "swap-$what-other" other
    if srv_hello_served "swap-$what-good" && ! srv_hello_served "swap-$what-other" && grep -q "the policy in force stays" "$T/swap.log"; then
        srv_ok "reload of a file swapped for a $what: the policy in force stays, handshakes go on"
    else
        srv_fail "reload of a file swapped for a $what: the policy in force stays"
        srv_show "$T/swap.log" "$T/swap-$what-good.err"
    fi
done
srv_stop swap

# ---- 0.5-RTT data: written before the client's Finished (and certificate) -------------
program halfrtt M2MTLS_POLICY="$T/server.policy" -- --half-rtt
srv_hello_client halfrtt-anon - -tls1_3
if grep -q "banner before authentication" "$T/halfrtt-anon.out"; then
    srv_fail "0.5-RTT: the program's early write reached a client without a certificate"; srv_show "$T/halfrtt.log"
else
    srv_ok "0.5-RTT: nothing the program writes reaches a client before it is verified"
fi
srv_hello_client halfrtt-good good -tls1_3
srv_expect_hello_served halfrtt-good halfrtt "0.5-RTT: the authorized AE is served"
srv_stop halfrtt

# ---- the program's own verifier, loosening client hello and verify callbacks ----------------
program ownverifier M2MTLS_POLICY="$T/server.policy" -- --own-verifier
srv_hello_client ownverifier-anon - -tls1_2
srv_expect_hello_refused ownverifier-anon ownverifier "its own verifier: a client without a certificate is refused"
srv_hello_client ownverifier-other other
srv_expect_hello_refused ownverifier-other ownverifier "its own verifier: an AE the policy does not name is refused"
srv_hello_client ownverifier-good good
srv_expect_hello_served ownverifier-good ownverifier "its own verifier: the authorized AE is served"
if grep -q "the program's certificate verification callback is not installed" "$T/ownverifier.log"; then
    srv_ok "its own verifier: refused, and logged"
else
    srv_fail "its own verifier: refused, and logged"; srv_show "$T/ownverifier.log"
fi
srv_stop ownverifier

# ---- a certificate name that would close the log line's quoted reason ------------------
srv_openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/quote.key" -out "$T/quote.csr" -subj "/CN=q"
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectAltName=DNS:x\\" peer=//sp.example.com/in-cse/Csensor7 \\"y\n' \
    >"$T/quote.ext"
srv_openssl x509 -req -in "$T/quote.csr" -CA "$T/ae-root.pem" -CAkey "$T/ae-root.key" -set_serial 77 -days 10 \
    -extfile "$T/quote.ext" -out "$T/quote.pem"
program quote M2MTLS_POLICY="$T/server.policy" --
srv_hello_client quote-1 quote
line=$(grep "refused client=" "$T/quote.log" | head -n 1)
quotes=$(printf '%s' "$line" | tr -cd '"' | wc -c)
if ! srv_hello_served quote-1 && [ -n "$line" ] && [ "$quotes" -eq 2 ] && printf '%s' "$line" | grep -q 'x\\x22 peer='; then
    srv_ok "a '\"' in a certificate name is escaped in the log line (its reason cannot be closed early)"
else
    srv_fail "a '\"' in a certificate name is escaped in the log line"; srv_show "$T/quote.log"
fi
srv_stop quote
# ... and in the log of `m2mtls serve`
printf 'local-id /in-cse\ncert %s/server.pem\nkey %s/server.key\nanchor ae-root %s/ae-root.pem\npeer //sp.example.com/in-cse/Csensor7 uri://sp.example.com/in-cse/Csensor7 ae-root\n' \
    "$T" "$T" "$T" >"$T/serve.policy"
srv_start_m2mtls_serve serve --policy "$T/serve.policy" || { srv_show "$T/serve.log"; srv_die "m2mtls serve does not start"; }
srv_hello_client serve-quote quote
srv_wait_log serve "refused reason=" 5
line=$(grep "refused reason=" "$T/serve.log" | head -n 1)
quotes=$(printf '%s' "$line" | tr -cd '"' | wc -c)
if [ -n "$line" ] && [ "$quotes" -eq 4 ] && printf '%s' "$line" | grep -q 'x\\x22 peer='; then
    srv_ok "m2mtls serve: a '\"' in a certificate name is escaped in its log line"
else
    srv_fail "m2mtls serve: a '\"' in a certificate name is escaped in its log line"; srv_show "$T/serve.log"
fi
srv_stop serve

# ---- SSL_set_info_callback(ssl, NULL): the program's SSL_CTX callback still runs -------
program infonull M2MTLS_POLICY="$T/server.policy" -- --info-null
srv_hello_client infonull-good good
if srv_hello_served infonull-good && grep -q "^ctx-info called" "$T/infonull.log"; then
    srv_ok "SSL_set_info_callback(ssl, NULL): the program's SSL_CTX info callback runs, as without the preload"
else
    srv_fail "SSL_set_info_callback(ssl, NULL): the program's SSL_CTX info callback runs"; srv_show "$T/infonull.log"
fi
srv_stop infonull

srv_finish
