// The image's HEALTHCHECK (src/healthcheck.ts): the pure parts by table, then the whole check
// against real listening sockets of this test process, found through /proc like in the image.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { healthcheck, isExporterArgv, listeningInSs, listeningOn, probeHost, socketInodes } from '../../src/healthcheck.ts';

const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';
const V4 = [
  HEADER,
  // LISTEN 127.0.0.1:9812, inode 111
  '   0: 0100007F:2654 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 111 1 0000000000000000 100 0 0 10 0',
  // LISTEN 0.0.0.0:19999, inode 222
  '   1: 00000000:4E1F 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 222 1 0000000000000000 100 0 0 10 0',
  // ESTABLISHED 127.0.0.1:9812 <- 127.0.0.1:40000, inode 333: a connection, not a listener
  '   2: 0100007F:2654 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 333 1 0000000000000000 20 4 30 10 -1',
].join('\n');
const V6 = [
  HEADER,
  // LISTEN [::]:9812, inode 444
  '   0: 00000000000000000000000000000000:2654 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 444 1 0000000000000000 100 0 0 10 0',
].join('\n');

describe('healthcheck: finding the listen address', () => {
  it('takes socket inodes from fd link targets only', () => {
    assert.deepEqual([...socketInodes(['socket:[111]', 'pipe:[5]', '/dev/null', 'socket:[444]', 'anon_inode:[eventpoll]'])], [111, 444]);
  });

  it('keeps LISTEN sockets owned by the process, in both families', () => {
    assert.deepEqual(listeningOn(V4, 'ipv4', new Set([111, 333])), [{ address: '127.0.0.1', port: 9812, family: 'ipv4' }]);
    assert.deepEqual(listeningOn(V4, 'ipv4', new Set([222])), [{ address: '0.0.0.0', port: 19999, family: 'ipv4' }]);
    assert.deepEqual(listeningOn(V4, 'ipv4', new Set([999])), []);
    assert.deepEqual(listeningOn(V6, 'ipv6', new Set([444])), [{ address: '::', port: 9812, family: 'ipv6' }]);
  });

  it('reads LISTEN sockets and inodes from ss -Htlne, every address form', () => {
    const ss = [
      'LISTEN 0      511        127.0.0.1:9812       0.0.0.0:*    uid:1000 ino:111 sk:1001 cgroup:/ <->',
      'LISTEN 0      511          0.0.0.0:19999      0.0.0.0:*    ino:222 sk:1002 cgroup:/ <->',
      'LISTEN 0      511                *:9100             *:*    ino:333 sk:1003 cgroup:/ v6only:0 <->',
      'LISTEN 0      511             [::]:9813          [::]:*    ino:444 sk:1004 cgroup:/ v6only:1 <->',
      'LISTEN 0      511    [fe80::1]%eth0:9814          [::]:*    ino:555 sk:1005 <->',
      'ESTAB  0      0          127.0.0.1:9812     127.0.0.1:40000 ino:666 sk:1006 <->',
      'LISTEN 0      511        127.0.0.1:7000       0.0.0.0:*    ino:1110 sk:1007 <->',
    ].join('\n');
    assert.deepEqual(listeningInSs(ss, new Set([111, 222, 333, 444, 555, 666])), [
      { address: '127.0.0.1', port: 9812, family: 'ipv4' },
      { address: '0.0.0.0', port: 19999, family: 'ipv4' },
      { address: '0.0.0.0', port: 9100, family: 'ipv4' },
      { address: '::', port: 9813, family: 'ipv6' },
      { address: 'fe80::1', port: 9814, family: 'ipv6' },
    ]);
    assert.deepEqual(listeningInSs(ss, new Set([11])), [], 'ino:1110 is not ino:11');
  });

  it('reaches wildcard listeners through loopback and brackets IPv6', () => {
    const cases: [string, 'ipv4' | 'ipv6', string][] = [
      ['0.0.0.0', 'ipv4', '127.0.0.1'],
      ['::', 'ipv6', '[::1]'],
      ['10.1.2.3', 'ipv4', '10.1.2.3'],
      ['fd00::5', 'ipv6', '[fd00::5]'],
      ['::ffff:10.1.2.3', 'ipv6', '10.1.2.3'],
    ];
    for (const [address, family, host] of cases) assert.equal(probeHost({ address, port: 1, family }), host, address);
  });

  it('recognises the daemon and not the report command', () => {
    assert.equal(isExporterArgv(['node', '/app/bin/tcpstate-exporter.js', '--web.listen-address=:9999']), true);
    assert.equal(isExporterArgv(['/usr/local/bin/node', '/opt/x/dist/main.js']), true);
    assert.equal(isExporterArgv(['node', '--import', 'tsx', 'src/main.ts']), true);
    assert.equal(isExporterArgv(['node', '/app/bin/tcpstate-exporter.js', 'report', '--input', 'f']), false);
    assert.equal(isExporterArgv(['node', '/app/bin/tcpstate-healthcheck.js']), false);
    assert.equal(isExporterArgv(['sh', '-c', 'echo bin/tcpstate-exporter.jsx']), false);
  });
});

describe('healthcheck: against real sockets of this process', () => {
  const saved = process.env['TCPSTATE_HEALTHCHECK_PID'];
  process.env['TCPSTATE_HEALTHCHECK_PID'] = String(process.pid);
  const dir = mkdtempSync(join(tmpdir(), `tcpstate-healthcheck-${process.pid}-`));
  after(() => {
    if (saved === undefined) delete process.env['TCPSTATE_HEALTHCHECK_PID'];
    else process.env['TCPSTATE_HEALTHCHECK_PID'] = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  async function serve(server: http.Server, host: string): Promise<number> {
    await new Promise<void>((resolve) => server.listen(0, host, resolve));
    return (server.address() as AddressInfo).port;
  }
  const close = (s: http.Server) => new Promise<void>((resolve) => s.close(() => resolve()));

  it('finds the port it listens on, whatever it is, and reports 200 as healthy', async () => {
    let status = 200;
    const server = http.createServer((req, res) => {
      res.statusCode = req.url === '/healthz' ? status : 404;
      res.end();
    });
    const port = await serve(server, '127.0.0.1');
    try {
      const ok = await healthcheck();
      assert.equal(ok.ok, true, ok.text);
      assert.match(ok.text, new RegExp(`http://127\\.0\\.0\\.1:${port}/healthz 200`));
      status = 503;
      const bad = await healthcheck();
      assert.equal(bad.ok, false);
      assert.match(bad.text, /503/);
    } finally {
      await close(server);
    }
    const gone = await healthcheck();
    assert.equal(gone.ok, false);
    assert.match(gone.text, /not listening/);
  });

  it('falls back to TLS on a TLS port', async () => {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], {
      stdio: 'ignore',
    });
    const server = https.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
      res.statusCode = req.url === '/healthz' ? 200 : 404;
      res.end();
    });
    const port = await serve(server, '::1');
    try {
      const r = await healthcheck();
      assert.equal(r.ok, true, r.text);
      assert.equal(r.text, `healthy: https://[::1]:${port}/healthz 200`);
    } finally {
      await close(server);
    }
  });

});
