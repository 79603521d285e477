#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# nginx, unmodified, runs examples/servers/nginx.conf: HTTPS with its private
# key generated inside a SoftHSM token and named by a key reference PEM
# (ssl_certificate_key), OPENSSL_CONF loading the m2mtls provider, client
# certificates required (ssl_verify_client on). A master process and a worker
# forked from it: the worker signs in the token. `m2mtls connect` completes
# the mutual association over TLS 1.2 and 1.3 (also resumed), reports the
# server's identity /in-cse and gets "HTTP/1.1 200" with the client
# certificate nginx verified; refusals: an nginx whose certificate is from a
# look-alike root (m2mtls connect exits 1), a peer id whose name nginx's
# certificate lacks (exit 1), a client from a look-alike root (nginx: 400).
# usage: srv_nginx.sh PATH-TO-m2mtls PATH-TO-m2mtls.so
. "$(dirname "$0")/lib.sh"
srv_init nginx "$@"
srv_need_cmd nginx nginx

srv_token_pki in-cse
nginx -v 2>&1 | sed 's/^/tested: /'

srv_nginx_start nginx in-cse.pem "$T/openssl.cnf"
# the key is used by a worker process, forked from the master that loaded it
mpid=$(srv_pid nginx)
workers=$(srv_children "$mpid" | wc -l)
if [ "$workers" -ge 1 ]; then srv_ok "nginx runs a master and $workers worker(s)"; else
    srv_fail "nginx: no worker process under the master $mpid"; fi

for v in tls1.2 tls1.3; do
    want=TLSv1.3; [ $v = tls1.2 ] && want=TLSv1.2
    srv_connect "$v" --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --$v --send "$GET"
    srv_expect "$v" "mutual association with nginx, key in the token" 0 \
        "association established with $SRV_CSE (127.0.0.1:$port)" "protocol:  $want" "peer id:   $SRV_CSE" \
        "name:      dns:$SRV_FQDN" "anchor:    sp-root" "HTTP/1.1 200" \
        "client verify=SUCCESS subject=CN=Cae1,O=m2mtls tests"
done
srv_connect json --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --json
srv_expect json "--json reports the server's identity" 0 '"verdict": "established"' "\"peer_id\": \"$SRV_CSE\""
srv_connect resume --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --tls1.2 --resume 2
n=$(grep -c 'resumed:   yes' "$T/resume.out")
srv_expect resume "TLS 1.2 session resumed twice with nginx" 0 "peer id:   $SRV_CSE"
[ "$n" -eq 2 ] && srv_ok "resume: 2 resumed handshakes" || { srv_fail "resume: $n resumed handshakes, expected 2"; srv_show "$T/resume.out"; }

# refused by m2mtls: the association asked for names another server
srv_connect other --policy a-other.policy --peer /other-cse --to "127.0.0.1:$port"
srv_expect other "nginx's certificate lacks the name of peer /other-cse: refused" 1 \
    "refused: certificate does not carry dns:other-cse.sp.example.com"
# refused by nginx: a client certificate from a look-alike root (nginx answers 400)
srv_connect client-look --policy a-look.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --send "$GET"
srv_expect client-look "nginx refuses a client certificate from a look-alike root" 0 "HTTP/1.1 400" \
    "The SSL certificate error"
srv_wait_log "$T/nginx/logs/error.log" "client SSL certificate verify error" 5 \
    && srv_ok "nginx error.log: client SSL certificate verify error" \
    || { srv_fail "nginx error.log lacks the client verify error"; srv_show "$T/nginx/logs/error.log"; }
srv_connect again --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --send "$GET"
srv_expect again "nginx still serves a good client" 0 "peer id:   $SRV_CSE" "HTTP/1.1 200"
srv_stop nginx

# a server certificate from a look-alike root: same subject, another key
srv_nginx_start nginx-look in-cse-look.pem "$T/openssl.cnf"
for v in tls1.2 tls1.3; do
    srv_connect "look-$v" --policy a.policy --peer "$SRV_CSE" --to "127.0.0.1:$port" --$v
    srv_expect "look-$v" "nginx with a certificate from a look-alike root is refused" 1 \
        "refused: " "anchor 'sp-root'"
done
srv_stop nginx-look

srv_finish
