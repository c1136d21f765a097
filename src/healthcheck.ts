// `bin/tcpstate-healthcheck.js`, the image's HEALTHCHECK: is the running exporter answering?
//
// It does not guess the port. It finds the exporter process (the one running
// bin/tcpstate-exporter.js, or TCPSTATE_HEALTHCHECK_PID), takes the socket inodes of its open
// descriptors (/proc/PID/fd) and the LISTEN sockets that carry them: the addresses it really
// listens on, however --web.listen-address was given (flag, TCPSTATE_WEB_LISTEN_ADDRESS,
// default). Listeners come from `ss -Htlne` (the kernel filters LISTEN sockets itself, so the cost
// does not grow with a host's million connections), or /proc/PID/net/tcp{,6} when ss is missing.
// Then GET /healthz on each until one answers 200: plain HTTP first, then HTTPS when the port
// speaks TLS (--web.config.file). The certificate is not verified: the peer is the exporter's own
// socket, found through /proc, on this host. A client certificate cannot be presented: with
// client_auth_type RequireAndVerifyClientCert this check fails (see README "Image").
// Exit 0 healthy, 1 not, with one line saying why.

import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { Family, SocketRecord } from './model.ts';
import { ProcNetTcpParser } from './parsers/proc-net-tcp.ts';
import { parseSsEndpoint } from './parsers/ss.ts';

export interface ListenEndpoint {
  address: string;
  port: number;
  family: Family;
}

/** Socket inodes from /proc/PID/fd link targets (`socket:[12345]`). */
export function socketInodes(linkTargets: Iterable<string>): Set<number> {
  const inodes = new Set<number>();
  for (const t of linkTargets) {
    const m = /^socket:\[(\d+)\]$/.exec(t);
    if (m !== null) inodes.add(Number(m[1]));
  }
  return inodes;
}

/** LISTEN sockets of a /proc/net/tcp{,6} text whose inode is one of `inodes`. */
export function listeningOn(text: string, family: Family, inodes: ReadonlySet<number>): ListenEndpoint[] {
  const found: ListenEndpoint[] = [];
  const parser = new ProcNetTcpParser(
    {
      record: (r: SocketRecord) => {
        if (r.state === 'listen' && r.inode !== undefined && inodes.has(r.inode)) found.push({ address: r.localAddress, port: r.localPort, family });
      },
      error: () => {},
    },
    family,
  );
  for (const line of text.split('\n')) parser.line(line);
  parser.end();
  return found;
}

/** LISTEN sockets of `ss -Htlne` output whose `ino:` is one of `inodes`. */
export function listeningInSs(text: string, inodes: ReadonlySet<number>): ListenEndpoint[] {
  const found: ListenEndpoint[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim().split(/\s+/);
    if (t[0] !== 'LISTEN' || t.length < 5) continue;
    const ino = /(?:^|\s)ino:(\d+)(?:\s|$)/.exec(line);
    if (ino === null || !inodes.has(Number(ino[1]))) continue;
    const e = parseSsEndpoint(t[3]!);
    if (e === undefined) continue;
    // `*` is a wildcard listener (dual-stack, or IPv4 on old iproute2): loopback IPv4 reaches both.
    if (e.host === '*') found.push({ address: '0.0.0.0', port: e.port, family: 'ipv4' });
    else found.push({ address: e.host, port: e.port, family: e.host.includes(':') ? 'ipv6' : 'ipv4' });
  }
  return found;
}

/** The URL host to reach a listener on: a wildcard address through loopback of its family. */
export function probeHost(e: ListenEndpoint): string {
  if (e.address === '0.0.0.0') return '127.0.0.1';
  if (e.address === '::') return '[::1]';
  // An IPv4-mapped listener (::ffff:a.b.c.d) is reached by its IPv4 address.
  if (e.address.startsWith('::ffff:') && e.address.includes('.')) return e.address.slice(7);
  return e.family === 'ipv6' ? `[${e.address}]` : e.address;
}

/** Whether a process's argv is the exporter daemon (not `report`, not this check). */
export function isExporterArgv(argv: readonly string[]): boolean {
  const script = argv.findIndex((a) => /(^|\/)(bin\/tcpstate-exporter\.js|dist\/main\.js|src\/main\.ts)$/.test(a));
  return script >= 0 && argv[script + 1] !== 'report';
}

function readArgv(pid: string): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
  } catch {
    return undefined;
  }
}

function findExporters(): string[] {
  const forced = process.env['TCPSTATE_HEALTHCHECK_PID'];
  if (forced !== undefined && forced !== '') return [forced];
  const pids: string[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const argv = readArgv(name);
    if (argv !== undefined && isExporterArgv(argv)) pids.push(name);
  }
  return pids;
}

function endpointsOf(pid: string): ListenEndpoint[] {
  const targets: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      targets.push(readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      // closed between readdir and readlink
    }
  }
  const inodes = socketInodes(targets);
  let ss: string | undefined;
  try {
    ss = execFileSync('ss', ['-Htlne'], { encoding: 'utf8', timeout: 2000, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    ss = undefined; // no ss: read /proc below
  }
  if (ss !== undefined) return listeningInSs(ss, inodes);
  const out: ListenEndpoint[] = [];
  for (const [file, family] of [
    ['tcp', 'ipv4'],
    ['tcp6', 'ipv6'],
  ] as const) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${file}`, 'utf8');
    } catch {
      continue; // no IPv6 in this kernel or namespace
    }
    out.push(...listeningOn(text, family, inodes));
  }
  return out;
}

type Answer = { status: number } | { error: string; code: string | undefined };

function get(url: string, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve) => {
    const client = url.startsWith('https:') ? https : http;
    const req = client.get(url, { timeout: timeoutMs, rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0 });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.message, code: err.code }));
  });
}

async function check(e: ListenEndpoint, timeoutMs: number): Promise<{ ok: boolean; text: string }> {
  const hostPort = `${probeHost(e)}:${e.port}`;
  const plain = await get(`http://${hostPort}/healthz`, timeoutMs);
  if ('status' in plain) return { ok: plain.status === 200, text: `http://${hostPort}/healthz ${plain.status}` };
  // A TLS port answers a plain request by closing it (or with an unparsable reply): try TLS.
  const tls = await get(`https://${hostPort}/healthz`, timeoutMs);
  if ('status' in tls) return { ok: tls.status === 200, text: `https://${hostPort}/healthz ${tls.status}` };
  return { ok: false, text: `${hostPort}: ${plain.error}; over TLS: ${tls.error}` };
}

export async function healthcheck(timeoutMs = 2000): Promise<{ ok: boolean; text: string }> {
  const pids = findExporters();
  if (pids.length === 0) return { ok: false, text: 'no tcpstate-exporter process found in /proc' };
  const notes: string[] = [];
  for (const pid of pids) {
    let endpoints: ListenEndpoint[];
    try {
      endpoints = endpointsOf(pid);
    } catch (err) {
      notes.push(`pid ${pid}: ${(err as Error).message}`);
      continue;
    }
    if (endpoints.length === 0) notes.push(`pid ${pid}: not listening yet`);
    for (const e of endpoints) {
      const r = await check(e, timeoutMs);
      if (r.ok) return { ok: true, text: `healthy: ${r.text}` };
      notes.push(r.text);
    }
  }
  return { ok: false, text: `unhealthy: ${notes.join('; ')}` };
}

/** The command: one line, exit status 0 (healthy) or 1. */
export async function main(): Promise<void> {
  const r = await healthcheck();
  (r.ok ? process.stdout : process.stderr).write(`${r.text}\n`);
  process.exitCode = r.ok ? 0 : 1;
}
