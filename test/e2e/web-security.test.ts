// --web.config.file on a real listening server, with real TLS clients (Node's https and curl) and
// certificates made by openssl for the test: basic auth (none, wrong, unknown user, right, the
// bcrypt cache), the probes left open, plain HTTP to the TLS port, mTLS with no, untrusted and
// expired client certificates, re-reading on change and SIGHUP-style reload (password, certificate
// rotation, a broken file fails closed), headers, rate limit, error bodies, and a log that never
// holds a credential.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { buildApp } from '../../src/http/app.ts';
import { WebSecurity } from '../../src/http/security.ts';
import { serverParts } from '../../src/http/server.ts';
import { createRegistry } from '../../src/metrics/registry.ts';
import { BIN, ROOT, startDaemon } from '../helpers/daemon.ts';
import { fakeProcPoller } from '../helpers/poller.ts';
import { rec } from '../helpers/readers.ts';
import { bcryptHash, httpsGet, makeCerts, type Certs } from '../helpers/tls.ts';

const PASSWORD = 'Top-Secret-Pa55word';
const B64 = Buffer.from(`prometheus:${PASSWORD}`).toString('base64');

let certs: Certs;
let hash: string;
let logs = '';
const logger = pino({ level: 'trace' }, { write: (s: string) => void (logs += s) });

before(() => {
  certs = makeCerts();
  hash = bcryptHash(PASSWORD);
});
after(() => rmSync(certs.dir, { recursive: true, force: true }));

function writeConfig(body: string): string {
  const path = `${certs.dir}/web.yml`;
  writeFileSync(path, body);
  return path;
}

const tlsBlock = (extra = '') => `tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n${extra}`;

async function serve(configPath: string) {
  const poller = fakeProcPoller([rec({ state: 'fin_wait1', remoteAddress: '10.1.2.3', remotePort: 5555, sendQueue: 10, inode: 0 })]);
  await poller.poll();
  const security = new WebSecurity(configPath, logger);
  const parts = serverParts(security, logger);
  const app = buildApp({
    registry: createRegistry({ view: poller, version: 't' }),
    view: poller,
    telemetryPath: '/metrics',
    version: 't',
    logger,
    sockets: true,
    security,
    serverFactory: parts.factory,
  });
  app.get('/boom', async () => {
    throw new Error(`ENOENT: no such file or directory, open '/etc/tcpstate/secret.pem'`);
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  return { app, port, security };
}

const curl = (args: string[]) =>
  new Promise<{ code: number; out: string }>((resolve) => {
    execFile('curl', ['-sS', '--max-time', '5', ...args], (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, out: stdout + stderr });
    });
  });

describe('TLS + basic auth', () => {
  let s: Awaited<ReturnType<typeof serve>>;
  before(async () => {
    s = await serve(writeConfig(`${tlsBlock()}basic_auth_users:\n  prometheus: ${hash}\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n    X-Content-Type-Options: nosniff\n`));
  });
  after(async () => s.app.close());
  const ca = () => certs.caCert;

  it('no password, wrong password, unknown user: 401 with WWW-Authenticate: Basic', async () => {
    for (const auth of [undefined, { user: 'prometheus', password: 'wrong' }, { user: 'mallory', password: PASSWORD }, { user: '', password: '' }]) {
      const r = await httpsGet(s.port, '/metrics', { ca: ca(), ...(auth === undefined ? {} : { auth }) });
      assert.equal(r.status, 401, JSON.stringify(auth));
      assert.equal(r.headers['www-authenticate'], 'Basic');
      assert.doesNotMatch(r.body, /tcpstate_/);
    }
  });

  it('the right password: 200 on /metrics and /sockets, with the configured headers', async () => {
    const r = await httpsGet(s.port, '/metrics', { ca: ca(), auth: { user: 'prometheus', password: PASSWORD } });
    assert.equal(r.status, 200);
    assert.match(r.body, /^tcpstate_sockets\{state="fin_wait1",family="ipv4"\} 1$/m);
    assert.equal(r.headers['x-frame-options'], 'deny');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    const sockets = await httpsGet(s.port, '/sockets', { ca: ca(), auth: { user: 'prometheus', password: PASSWORD } });
    assert.equal(sockets.status, 200);
    assert.match(sockets.body, /10\.1\.2\.3:5555/);
  });

  it('every path but /healthz and /readyz needs the password', async () => {
    for (const path of ['/', '/metrics', '/sockets', '/sockets?limit=1', '/nope', '/healthz/', '/boom']) {
      assert.equal((await httpsGet(s.port, path, { ca: ca() })).status, 401, path);
    }
    for (const path of ['/healthz', '/readyz']) assert.equal((await httpsGet(s.port, path, { ca: ca() })).status, 200, path);
  });

  it('a verified password is cached: repeated scrapes run no further bcrypt', async () => {
    const auth = { user: 'prometheus', password: PASSWORD };
    await httpsGet(s.port, '/metrics', { ca: ca(), auth });
    const runs = s.security.bcryptRuns;
    for (let i = 0; i < 5; i++) assert.equal((await httpsGet(s.port, '/metrics', { ca: ca(), auth })).status, 200);
    assert.equal(s.security.bcryptRuns, runs);
    // A new wrong password costs one bcrypt, then it is cached too.
    await httpsGet(s.port, '/metrics', { ca: ca(), auth: { user: 'prometheus', password: 'another-wrong' } });
    await httpsGet(s.port, '/metrics', { ca: ca(), auth: { user: 'prometheus', password: 'another-wrong' } });
    assert.equal(s.security.bcryptRuns, runs + 1);
  });

  it('wrong passwords never evict a verified one: the scraper still needs no bcrypt after 101 of them', async () => {
    const auth = { user: 'prometheus', password: PASSWORD };
    assert.equal((await httpsGet(s.port, '/metrics', { ca: ca(), auth })).status, 200);
    for (let i = 0; i <= 100; i++) {
      assert.equal((await httpsGet(s.port, '/metrics', { ca: ca(), auth: { user: 'prometheus', password: `flood-${i}` } })).status, 401);
    }
    const runs = s.security.bcryptRuns;
    assert.equal((await httpsGet(s.port, '/metrics', { ca: ca(), auth })).status, 200);
    assert.equal(s.security.bcryptRuns, runs);
  });

  it('plain HTTP to the TLS port gets no answer; the port still serves TLS', async () => {
    const plain = await new Promise<string>((resolve) => {
      const req = httpGet({ host: '127.0.0.1', port: s.port, path: '/metrics', agent: false, timeout: 3000 }, (res) => resolve(`answered ${res.statusCode}`));
      req.on('error', (e) => resolve(`error ${(e as NodeJS.ErrnoException).code}`));
      req.on('timeout', () => req.destroy());
    });
    assert.match(plain, /^error /);
    const viaCurl = await curl([`http://127.0.0.1:${s.port}/metrics`]);
    assert.notEqual(viaCurl.code, 0, viaCurl.out);
    assert.doesNotMatch(viaCurl.out, /tcpstate_/);
    assert.equal((await httpsGet(s.port, '/healthz', { ca: ca() })).status, 200);
  });

  it('curl with the CA and basic auth: 200; without the CA: certificate refused', async () => {
    const ok = await curl(['--cacert', ca(), '-u', `prometheus:${PASSWORD}`, '-o', '/dev/null', '-w', '%{http_code}', `https://127.0.0.1:${s.port}/metrics`]);
    assert.equal(ok.out, '200');
    const untrusting = await curl(['-o', '/dev/null', `https://127.0.0.1:${s.port}/metrics`]);
    assert.equal(untrusting.code, 60, untrusting.out); // curl: peer certificate cannot be authenticated
  });

  it('error bodies hold no stack and no path', async () => {
    const r = await httpsGet(s.port, '/boom', { ca: ca(), auth: { user: 'prometheus', password: PASSWORD } });
    assert.equal(r.status, 500);
    assert.equal(r.body, '500 internal server error\n');
    const bad = await httpsGet(s.port, '/sockets?limit=zero', { ca: ca(), auth: { user: 'prometheus', password: PASSWORD } });
    assert.equal(bad.status, 400);
    assert.doesNotMatch(bad.body, /\/work|node_modules|\s+at /);
  });
});

describe('mTLS: client_auth_type RequireAndVerifyClientCert', () => {
  let s: Awaited<ReturnType<typeof serve>>;
  before(async () => {
    s = await serve(writeConfig(tlsBlock('  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n')));
  });
  after(async () => s.app.close());

  it('a client certificate from the CA: 200', async () => {
    assert.equal((await httpsGet(s.port, '/metrics', { ca: certs.caCert, cert: certs.clientCert, key: certs.clientKey })).status, 200);
  });

  it('no certificate, an untrusted one, an expired one: refused in the handshake', async () => {
    const cases: Array<[string, { cert?: string; key?: string }, RegExp]> = [
      ['none', {}, /"code":"ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE"/],
      ['untrusted', { cert: certs.untrustedCert, key: certs.untrustedKey }, /"certificate":"UNABLE_TO_VERIFY_LEAF_SIGNATURE"|"certificate":"UNABLE_TO_GET_ISSUER_CERT/],
      ['expired', { cert: certs.expiredCert, key: certs.expiredKey }, /"certificate":"CERT_HAS_EXPIRED"/],
    ];
    for (const [name, o, why] of cases) {
      const seen = logs.length;
      await assert.rejects(httpsGet(s.port, '/metrics', { ca: certs.caCert, ...o }), (e: Error) => /alert|ECONNRESET|socket hang up|certificate/i.test(e.message), name);
      const c = await curl(['--cacert', certs.caCert, ...(o.cert === undefined ? [] : ['--cert', o.cert, '--key', o.key!]), `https://127.0.0.1:${s.port}/metrics`]);
      assert.notEqual(c.code, 0, `${name}: ${c.out}`);
      assert.doesNotMatch(c.out, /tcpstate_/);
      // Refused for the right reason (the expired certificate is from the trusted CA).
      assert.match(logs.slice(seen), why, name);
    }
    // The probes are behind the handshake too (a TLS port has no unauthenticated side door).
    await assert.rejects(httpsGet(s.port, '/healthz', { ca: certs.caCert }));
    assert.match(logs, /"msg":"TLS handshake failed"/);
  });
});

describe('the other client_auth_type policies', () => {
  const none = {};
  const untrusted = () => ({ cert: certs.untrustedCert, key: certs.untrustedKey });
  const valid = () => ({ cert: certs.clientCert, key: certs.clientKey });
  const expired = () => ({ cert: certs.expiredCert, key: certs.expiredKey });
  const outcome = (port: number, o: { cert?: string; key?: string }) =>
    httpsGet(port, '/metrics', { ca: certs.caCert, ...o }).then(
      (r) => String(r.status),
      () => 'refused',
    );
  const cases: Array<[string, string, Array<[string, () => { cert?: string; key?: string }, string]>]> = [
    ['RequestClientCert', '', [['none', () => none, '200'], ['untrusted', untrusted, '200']]],
    ['RequireAnyClientCert', '', [['none', () => none, 'refused'], ['untrusted', untrusted, '200'], ['expired', expired, '200']]],
    ['VerifyClientCertIfGiven', '  client_ca_file: ca.crt\n', [['none', () => none, '200'], ['untrusted', untrusted, 'refused'], ['expired', expired, 'refused'], ['valid', valid, '200']]],
  ];
  for (const [policy, extra, expectations] of cases) {
    it(`${policy}: ${expectations.map(([n, , e]) => `${n} → ${e}`).join(', ')}`, async () => {
      const s = await serve(writeConfig(tlsBlock(`  client_auth_type: ${policy}\n${extra}`)));
      try {
        for (const [name, o, expected] of expectations) assert.equal(await outcome(s.port, o()), expected, `${policy}, ${name}`);
      } finally {
        await s.app.close();
      }
    });
  }
});

describe('re-reading the file', () => {
  it('a new password applies to the next request; a broken file fails closed (500, no detail); fixed, it serves again', async () => {
    const path = writeConfig(`${tlsBlock()}basic_auth_users:\n  prometheus: ${hash}\n`);
    const s = await serve(path);
    try {
      const auth = { user: 'prometheus', password: PASSWORD };
      assert.equal((await httpsGet(s.port, '/metrics', { ca: certs.caCert, auth })).status, 200);
      writeFileSync(path, `${tlsBlock()}basic_auth_users:\n  prometheus: ${bcryptHash('rotated')}\n`);
      assert.equal((await httpsGet(s.port, '/metrics', { ca: certs.caCert, auth })).status, 401);
      assert.equal((await httpsGet(s.port, '/metrics', { ca: certs.caCert, auth: { user: 'prometheus', password: 'rotated' } })).status, 200);

      writeFileSync(path, `${tlsBlock()}basic_auth_users:\n  prometheus: rotated\n`);
      const broken = await httpsGet(s.port, '/metrics', { ca: certs.caCert, auth: { user: 'prometheus', password: 'rotated' } });
      assert.equal(broken.status, 500);
      assert.doesNotMatch(broken.body, /web\.yml|tcpstate-tls|basic_auth_users/);
      assert.equal((await httpsGet(s.port, '/healthz', { ca: certs.caCert })).status, 200);
      assert.match(logs, /--web\.config\.file: basic_auth_users\.prometheus: not a bcrypt hash/);

      writeFileSync(path, `${tlsBlock()}basic_auth_users:\n  prometheus: ${hash}\n`);
      assert.equal((await httpsGet(s.port, '/metrics', { ca: certs.caCert, auth })).status, 200);

      // Turning TLS off, or changing client_auth_type, needs a restart: refused (fail closed).
      writeFileSync(path, `basic_auth_users:\n  prometheus: ${hash}\n`);
      assert.equal((await httpsGet(s.port, '/metrics', { ca: certs.caCert, auth })).status, 500);
      assert.match(logs, /TLS cannot be switched off while running/);
      writeFileSync(path, `${tlsBlock()}basic_auth_users:\n  prometheus: ${hash}\n`);
      s.security.reload('SIGHUP');
      assert.equal((await httpsGet(s.port, '/metrics', { ca: certs.caCert, auth })).status, 200);
    } finally {
      await s.app.close();
    }
  });

  it('a rotated certificate is served from the next connection on', async () => {
    const path = writeConfig(tlsBlock());
    copyFileSync(certs.serverCert, `${certs.dir}/live.crt`);
    copyFileSync(certs.serverKey, `${certs.dir}/live.key`);
    writeFileSync(path, 'tls_server_config:\n  cert_file: live.crt\n  key_file: live.key\n');
    const s = await serve(path);
    const fingerprint = () =>
      new Promise<string>((resolve, reject) => {
        const sock = tlsConnect({ host: '127.0.0.1', port: s.port, ca: readFileSync(certs.caCert) }, () => {
          resolve(sock.getPeerCertificate().fingerprint256);
          sock.end();
        });
        sock.on('error', reject);
      });
    try {
      const before = await fingerprint();
      // Both files replaced (as cert-manager or a Secret update does); no signal sent.
      copyFileSync(certs.server2Cert, `${certs.dir}/live.crt.new`);
      copyFileSync(certs.server2Key, `${certs.dir}/live.key`);
      copyFileSync(`${certs.dir}/live.crt.new`, `${certs.dir}/live.crt`);
      const afterRotation = await fingerprint();
      assert.notEqual(afterRotation, before);
      assert.equal(afterRotation, await fingerprint());
    } finally {
      await s.app.close();
    }
  });
});

describe('rate_limit', () => {
  it('beyond the burst: 429 (probes not counted)', async () => {
    const s = await serve(writeConfig('rate_limit:\n  interval: 1h\n  burst: 2\n'));
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await fetch(`http://127.0.0.1:${s.port}/metrics`);
        statuses.push(r.status);
        await r.text();
      }
      assert.deepEqual(statuses, [200, 200, 429]);
      assert.equal((await fetch(`http://127.0.0.1:${s.port}/healthz`)).status, 200);
    } finally {
      await s.app.close();
    }
  });
});

describe('logs', () => {
  it('a malformed request carrying a password: 400, and its bytes are not logged', async () => {
    const s = await serve(writeConfig(`basic_auth_users:\n  prometheus: ${hash}\n`));
    try {
      const answer = await new Promise<string>((resolve) => {
        const sock = connect(s.port, '127.0.0.1', () => sock.write(`GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${B64}\r\nBad Header: \x01\r\n\r\n`));
        let got = '';
        sock.setEncoding('utf8').on('data', (d: string) => (got += d));
        sock.on('close', () => resolve(got));
        sock.on('error', () => undefined);
      });
      assert.match(answer, /^HTTP\/1\.1 400 Bad Request/);
      assert.match(logs, /"msg":"client error"/);
      assert.doesNotMatch(logs, /rawPacket/);
    } finally {
      await s.app.close();
    }
  });

  it('never hold a password, an Authorization header or a hash (trace level, every path above)', () => {
    assert.ok(logs.length > 1000, 'the tests above logged');
    for (const secret of [PASSWORD, B64, hash, 'rotated', 'Basic ', 'authorization']) {
      assert.ok(!logs.toLowerCase().includes(secret.toLowerCase()), `log contains ${secret}`);
    }
  });
});

describe('start-up errors: exit 2, the field named, no stack trace', () => {
  const start = (args: string[]) =>
    new Promise<{ code: number | null; err: string }>((resolve) => {
      const child = execFile(process.execPath, [BIN, '--web.listen-address', '127.0.0.1:0', ...args], { cwd: ROOT, timeout: 20_000 }, (_e, stdout, stderr) =>
        resolve({ code: child.exitCode, err: stdout + stderr }),
      );
    });
  it('a broken --web.config.file, a missing one, --web.telemetry-path=/sockets', async () => {
    const bad = writeConfig(`${tlsBlock()}basic_auth_users:\n  prometheus: plaintext\n`);
    const cases: Array<[string[], RegExp]> = [
      [['--web.config.file', bad], /--web\.config\.file .*web\.yml: basic_auth_users\.prometheus: not a bcrypt hash/],
      [['--web.config.file', `${certs.dir}/missing.yml`], /--web\.config\.file .*missing\.yml: cannot read .* \(ENOENT\)/],
      [['--web.telemetry-path', '/sockets'], /--web\.telemetry-path clashes with a built-in route/],
    ];
    for (const [args, re] of cases) {
      const r = await start(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, re);
      assert.doesNotMatch(r.err, /\n\s+at |plaintext/);
    }
  });
});

describe('SIGHUP on the real daemon', { timeout: 60_000 }, () => {
  it('re-reads --web.config.file and keeps running (SIGHUP used to end the process)', async () => {
    const path = writeConfig(`${tlsBlock()}basic_auth_users:\n  prometheus: ${hash}\n`);
    const daemon = await startDaemon(['--source', 'proc', '--web.config.file', path], {
      get: async (port, p) => {
        const r = await httpsGet(port, p, { ca: certs.caCert, auth: { user: 'prometheus', password: PASSWORD } });
        return { status: r.status, body: r.body, contentType: String(r.headers['content-type'] ?? '') };
      },
    });
    try {
      daemon.child.kill('SIGHUP');
      for (let i = 0; i < 50 && !daemon.logs().includes('"reason":"SIGHUP"'); i++) await new Promise((r) => setTimeout(r, 100));
      assert.match(daemon.logs(), /"reason":"SIGHUP".*"msg":"--web\.config\.file re-read"/);
      assert.equal(daemon.child.exitCode, null);
      assert.equal((await daemon.get('/metrics')).status, 200);
    } finally {
      assert.equal(await daemon.stop(), 0);
    }
  });
});
