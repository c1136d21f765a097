// The daemon as it ships runs with V8 heap settings of its own (bin/tcpstate-exporter.js's first
// line; docs/performance.md, "Memory"). Without them V8 sizes the HTTP thread's young generation by
// the machine's memory: 16 MiB after a few hundred scrapes on Node.js 20, 128 MiB on Node.js 24 (the
// fault matrix's RSS row failed there by 80 MiB). This starts the real daemon the way the Dockerfile
// and the systemd unit do and reads the young generation's size from its own metrics.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { entryPoint, sample, startDaemon, waitForPoll, type Daemon } from '../helpers/daemon.ts';

const MiB = 1024 * 1024;

describe('footprint: the shipped command line caps the heap', () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon(['--poll.interval', '1s', '--log.level', 'debug']);
    await waitForPoll(d);
  });
  after(async () => d.stop());

  it('runs node with the flags and the malloc settings of the entry point', () => {
    const { flags, env } = entryPoint();
    assert.ok(flags.includes('--max-semi-space-size=1'), `entry point flags: ${flags.join(' ')}`);
    assert.ok(env.includes('MALLOC_ARENA_MAX=2'), `entry point environment: ${env.join(' ')}`);
    const argv = readFileSync(`/proc/${d.child.pid}/cmdline`, 'utf8').split('\0');
    for (const f of flags) assert.ok(argv.includes(f), `${f} missing from ${argv.join(' ')}`);
    const environ = readFileSync(`/proc/${d.child.pid}/environ`, 'utf8').split('\0');
    for (const v of env) assert.ok(environ.includes(v), `${v} missing from the daemon's environment`);
  });

  it('the entry point executed itself (as the Dockerfile and the systemd unit run it) gets the same', async () => {
    // The kernel runs the #! line: env(1) -S, the assignments, then node found on PATH (the test's).
    const { bin, flags, env } = entryPoint();
    const child = spawn(bin, ['--web.listen-address', '127.0.0.1:0', '--source', 'proc'], {
      env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => (/Server listening/.test(d.toString()) ? resolve() : undefined));
        child.once('exit', (code) => reject(new Error(`the entry point exited with ${code}`)));
      });
      const argv = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
      assert.equal(argv[0], 'node', `${argv.join(' ')}: node found on PATH by env(1)`);
      for (const f of flags) assert.ok(argv.includes(f), `${f} missing from ${argv.join(' ')}`);
      const environ = readFileSync(`/proc/${child.pid}/environ`, 'utf8').split('\0');
      for (const v of env) assert.ok(environ.includes(v), `${v} missing from the environment of the entry point run itself`);
    } finally {
      child.kill();
    }
  });

  it('the HTTP thread young generation stays at 2 x 1 MiB through 400 scrapes', async () => {
    let body = '';
    for (let i = 0; i < 400; i++) body = await (await fetch(`${d.url}/metrics`)).text();
    const young = sample(body, 'nodejs_heap_space_size_total_bytes{space="new"}');
    assert.ok(young !== undefined, 'nodejs_heap_space_size_total_bytes{space="new"} exported');
    assert.ok(young <= 2 * MiB, `young generation ${(young / MiB).toFixed(1)} MiB`);
  });

  it("exports the poll thread's heap, which nodejs_heap_* (the HTTP thread's) leave out", async () => {
    const body = await (await fetch(`${d.url}/metrics`)).text();
    const used = sample(body, 'tcpstate_poll_thread_heap_size_used_bytes');
    const total = sample(body, 'tcpstate_poll_thread_heap_size_total_bytes');
    const external = sample(body, 'tcpstate_poll_thread_external_memory_bytes');
    assert.ok(used !== undefined && total !== undefined && external !== undefined, 'the three families have a sample');
    assert.ok(used > MiB && used <= total, `used ${used} of ${total}`);
    assert.notEqual(used, sample(body, 'nodejs_heap_size_used_bytes'), "not the HTTP thread's figure");
  });
});
