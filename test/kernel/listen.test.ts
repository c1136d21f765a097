// Issue 9 fault 6: `--web.listen-address=:PORT` means every interface, IPv6 and IPv4, as Go's
// `:port` does for node_exporter. The real daemon in network namespaces made for the test: with
// IPv6 on (both loopbacks answer), with net.ipv6.bindv6only=1 (still both: the socket asks for
// dual-stack itself), with IPv6 disabled (IPv4 answers), IPv6-only (no 127.0.0.1: ::1 answers).
// The 0.0.0.0 fallback for a kernel without IPv6 at all (ipv6.disable=1 at boot, which no
// namespace can imitate) is checked with a listener that fails as such a kernel does.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { listen } from '../../src/http/server.ts';
import { BIN, ROOT } from '../helpers/daemon.ts';
import { createNetns, deleteNetns } from '../lab/lab.ts';

const PORT = 19812;

const run = (cmd: string, args: string[]) =>
  new Promise<{ code: number; out: string }>((resolve) =>
    execFile(cmd, args, (err, stdout, stderr) => resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, out: stdout + stderr })),
  );

/** Starts the daemon on :PORT in the namespace, runs `check`, stops it (exit 0 expected). */
async function inNetns(setup: string[][], check: (get: (host: string) => Promise<string>) => Promise<void>): Promise<void> {
  const ns = `tcpstate-listen-${process.pid}`;
  await createNetns(ns);
  try {
    for (const cmd of setup) {
      const r = await run('ip', ['netns', 'exec', ns, ...cmd]);
      assert.equal(r.code, 0, `${cmd.join(' ')}: ${r.out}`);
    }
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, BIN, '--web.listen-address', `:${PORT}`, '--source', 'proc'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      for (let i = 0; !out.includes('"msg":"tcpstate-exporter started"'); i++) {
        if (i > 200 || child.exitCode !== null) throw new Error(`daemon did not start:\n${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      await check(async (host) => {
        const r = await run('ip', ['netns', 'exec', ns, 'curl', '-sS', '-g', '--max-time', '3', `http://${host}:${PORT}/healthz`]);
        return r.code === 0 ? r.out : `curl exit ${r.code}: ${r.out}`;
      });
    } finally {
      child.kill('SIGTERM');
      assert.equal(await exited, 0, out);
    }
  } finally {
    await deleteNetns(ns);
  }
}

describe(':PORT listens on every interface, IPv6 and IPv4', { timeout: 120_000 }, () => {
  it('IPv6 on: both ::1 and 127.0.0.1 answer', async () => {
    await inNetns([], async (get) => {
      assert.equal(await get('[::1]'), 'ok\n');
      assert.equal(await get('127.0.0.1'), 'ok\n');
    });
  });

  it('net.ipv6.bindv6only=1: still both', async () => {
    await inNetns([['sysctl', '-qw', 'net.ipv6.bindv6only=1']], async (get) => {
      assert.equal(await get('[::1]'), 'ok\n');
      assert.equal(await get('127.0.0.1'), 'ok\n');
    });
  });

  it('IPv6 disabled in the namespace: 127.0.0.1 answers', async () => {
    await inNetns([['sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1', 'net.ipv6.conf.lo.disable_ipv6=1']], async (get) => {
      assert.equal(await get('127.0.0.1'), 'ok\n');
    });
  });

  it('IPv6 only (no 127.0.0.1 on lo): ::1 answers', async () => {
    await inNetns([['ip', 'addr', 'del', '127.0.0.1/8', 'dev', 'lo']], async (get) => {
      assert.match(await get('127.0.0.1'), /^curl exit/);
      assert.equal(await get('[::1]'), 'ok\n');
    });
  });
});

describe('listen() fallback', () => {
  const fake = (failV6: string | undefined) => {
    const calls: string[] = [];
    const app = {
      log: { info: () => undefined },
      listen: async ({ host }: { host: string }) => {
        calls.push(host);
        if (host === '::' && failV6 !== undefined) throw Object.assign(new Error(`listen ${failV6} :::9812`), { code: failV6 });
        return `http://${host}:9812`;
      },
    } as unknown as FastifyInstance;
    return { app, calls };
  };

  it('no IPv6 in the kernel (EAFNOSUPPORT): 0.0.0.0', async () => {
    const { app, calls } = fake('EAFNOSUPPORT');
    assert.equal(await listen(app, '', 9812), 'http://0.0.0.0:9812');
    assert.deepEqual(calls, ['::', '0.0.0.0']);
  });

  it('other errors (port taken) are not hidden by a retry', async () => {
    const { app, calls } = fake('EADDRINUSE');
    await assert.rejects(listen(app, '', 9812), /EADDRINUSE/);
    assert.deepEqual(calls, ['::']);
  });

  it('an explicit host is used as given', async () => {
    const { app, calls } = fake(undefined);
    await listen(app, '127.0.0.1', 9812);
    await listen(app, '::1', 9812);
    assert.deepEqual(calls, ['127.0.0.1', '::1']);
  });
});
