// Certificates made with the real openssl at test time, in a temporary directory: a CA, a server
// certificate for 127.0.0.1/::1/localhost, a client certificate from the CA, one that expired in
// 2020 (openssl ca sets its dates), and one from a CA the server does not trust. Also a bcrypt
// hash for a web config, and an https GET with a client certificate or basic auth.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';

export interface Certs {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  /** A second server certificate, for rotation. */
  server2Cert: string;
  server2Key: string;
  clientCert: string;
  clientKey: string;
  expiredCert: string;
  expiredKey: string;
  untrustedCert: string;
  untrustedKey: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function makeCerts(): Certs {
  const dir = mkdtempSync(join(tmpdir(), 'tcpstate-tls-'));
  const key = (name: string) => openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`], dir);
  const selfSigned = (name: string, cn: string) => {
    key(name);
    openssl(['req', '-x509', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-days', '2', '-out', `${name}.crt`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  };
  selfSigned('ca', 'tcpstate test CA');
  selfSigned('other-ca', 'an untrusted CA');
  const signed = (name: string, cn: string, ca: string, ext: string) => {
    key(name);
    openssl(['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`], dir);
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.crt`], dir);
  };
  signed('server', 'localhost', 'ca', 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  signed('server2', 'localhost', 'ca', 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  signed('client', 'prometheus', 'ca', 'extendedKeyUsage=clientAuth\n');
  signed('untrusted', 'prometheus', 'other-ca', 'extendedKeyUsage=clientAuth\n');
  // Expired: `openssl x509` cannot set past dates (OpenSSL 3.0), `openssl ca` can.
  key('expired');
  openssl(['req', '-new', '-key', 'expired.key', '-subj', '/CN=prometheus', '-out', 'expired.csr'], dir);
  mkdirSync(join(dir, 'ca-db'));
  writeFileSync(join(dir, 'ca-db', 'index.txt'), '');
  writeFileSync(join(dir, 'ca-db', 'serial'), '1000\n');
  writeFileSync(
    join(dir, 'ca.cnf'),
    [
      '[ca]',
      'default_ca = test',
      '[test]',
      'database = ca-db/index.txt',
      'serial = ca-db/serial',
      'new_certs_dir = ca-db',
      'default_md = sha256',
      'policy = any',
      'copy_extensions = none',
      'x509_extensions = client',
      '[any]',
      'commonName = supplied',
      '[client]',
      'extendedKeyUsage = clientAuth',
      '',
    ].join('\n'),
  );
  openssl(['ca', '-batch', '-config', 'ca.cnf', '-cert', 'ca.crt', '-keyfile', 'ca.key', '-in', 'expired.csr', '-out', 'expired.crt', '-startdate', '20200101000000Z', '-enddate', '20200102000000Z', '-notext'], dir);
  const p = (f: string) => join(dir, f);
  return {
    dir,
    caCert: p('ca.crt'),
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    server2Cert: p('server2.crt'),
    server2Key: p('server2.key'),
    clientCert: p('client.crt'),
    clientKey: p('client.key'),
    expiredCert: p('expired.crt'),
    expiredKey: p('expired.key'),
    untrustedCert: p('untrusted.crt'),
    untrustedKey: p('untrusted.key'),
  };
}

/** bcrypt hash as htpasswd -B makes it (cost 4 keeps tests fast; the cost is the hash's own). */
export function bcryptHash(password: string, cost = 4): string {
  return bcrypt.hashSync(password, cost);
}

export interface HttpsResult {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface HttpsGetOptions {
  ca?: string;
  cert?: string;
  key?: string;
  auth?: { user: string; password: string };
  host?: string;
  timeoutMs?: number;
}

/** One https GET on a new connection (no agent), with Node's own TLS client. Rejects on TLS errors. */
export function httpsGet(port: number, path: string, o: HttpsGetOptions = {}): Promise<HttpsResult> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (o.auth !== undefined) headers.authorization = `Basic ${Buffer.from(`${o.auth.user}:${o.auth.password}`).toString('base64')}`;
    const req = request(
      {
        host: o.host ?? '127.0.0.1',
        port,
        path,
        method: 'GET',
        agent: false,
        headers,
        ...(o.ca === undefined ? {} : { ca: readFileSync(o.ca) }),
        ...(o.cert === undefined ? {} : { cert: readFileSync(o.cert) }),
        ...(o.key === undefined ? {} : { key: readFileSync(o.key) }),
        timeout: o.timeoutMs ?? 5000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
