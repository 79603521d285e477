#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""An HTTPS server on Python's ssl module that knows nothing of m2mtls: it
asks for no client certificate and never names a CA. Run it as Debian's
python3 (whose ssl module links the system libssl3) with the m2mtls provider
and the preload, and it is a TS-0003 responder with its key in a token:

    OPENSSL_CONF=/etc/m2mtls/openssl.cnf \\
    LD_PRELOAD=/usr/local/lib/libm2mtls-preload.so M2MTLS_POLICY=/etc/m2mtls/in-cse.policy \\
        /usr/bin/python3 https-server.py 127.0.0.1 8443 /etc/m2mtls/in-cse.pem /etc/m2mtls/in-cse.keyref.pem

The key file is the key reference PEM: load_cert_chain() reads it with
OpenSSL, which hands it to the provider. The preload requires and verifies
every client's certificate with the policy and logs the bound identity.
tests/servers/srv_runtimes.sh runs this very file."""
import http.server
import ssl
import sys


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"in-cse (python %d.%d, %s)\n" % (sys.version_info[0], sys.version_info[1], ssl.OPENSSL_VERSION.encode())
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: https-server.py ADDRESS PORT CERT KEY")
    address, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = http.server.ThreadingHTTPServer((address, port), Hello)
    # the handshake runs in accept(); a refused client is an error there,
    # which the server ignores (it serves the next one)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print("listening on %s:%d (%s)" % (address, port, ssl.OPENSSL_VERSION), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
