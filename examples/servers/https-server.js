// SPDX-License-Identifier: Apache-2.0
// An HTTPS server on Node.js's https module that knows nothing of m2mtls: it
// asks for no client certificate and names no CA. Run it with a Node.js that
// links the system libssl3 (Debian's nodejs), the m2mtls provider and the
// preload, and it is a TS-0003 responder with its key in a token:
//
//   OPENSSL_CONF=/etc/m2mtls/openssl.cnf \
//   LD_PRELOAD=/usr/local/lib/libm2mtls-preload.so M2MTLS_POLICY=/etc/m2mtls/in-cse.policy \
//       node --openssl-shared-config https-server.js 127.0.0.1 8443 /etc/m2mtls/in-cse.pem /etc/m2mtls/in-cse.keyref.pem
//
// --openssl-shared-config: Node.js reads the openssl_conf section of
// OPENSSL_CONF (by default it reads only a nodejs_conf section). The key file
// is the key reference PEM: Node.js hands it to OpenSSL, which hands it to the
// provider. tests/servers/srv_runtimes.sh runs this very file.
'use strict';
const fs = require('fs');
const https = require('https');

const [address, port, cert, key] = process.argv.slice(2);
if (key === undefined) {
    console.error('usage: https-server.js ADDRESS PORT CERT KEY');
    process.exit(2);
}
const server = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, (req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end(`in-cse (node ${process.version}, OpenSSL ${process.versions.openssl})\n`);
});
server.on('tlsClientError', (err) => console.error(`tls client error: ${err.message}`));
server.listen(Number(port), address, () => console.log(`listening on ${address}:${port}`));
