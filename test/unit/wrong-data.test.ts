// Wrong data is never reported as good (issue 10 item 6): a source that delivered no socket but
// unparsable lines is down; `report` of an empty file, a file cut mid-line or a netlink dump
// without its end markers says so and exits non-zero.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { Poller } from '../../src/poller/poller.ts';
import { ssReader } from '../../src/sources/ss.ts';
import { ROOT } from '../helpers/daemon.ts';

const FIX = new URL('../fixtures/', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), `tcpstate-wrong-${process.pid}-`));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

function report(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', 'report', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('a source that answers garbage', () => {
  it('1 MB of random bytes from ss (exit 0): ss is down, naming why', async () => {
    const p = new Poller({
      sources: { table: [{ name: 'ss', readers: [ssReader({ path: `${FIX}bin/ss-garbage`, timeoutMs: 10_000 })] }], kernel: [] },
      intervalMs: 1000,
      logger: pino({ level: 'silent' }),
    });
    await p.poll();
    assert.deepEqual(p.snapshot()!.sources.map((s) => [s.source, s.up]), [['ss', false]]);
    assert.match(p.outcomes()[0]!.error!.message, /^no socket recognised: \d+ unparsable lines/);
    assert.deepEqual(p.snapshot()!.table, {});
  });
});

describe('report of a truncated or empty input', () => {
  const ss = readFileSync(`${FIX}captures/ss_tanoem.v61`, 'utf8');
  const proc = readFileSync(`${FIX}captures/proc_tcp`, 'utf8');
  const dump = readFileSync(`${FIX}netlink/lab-1fee.bin`);

  it('the whole files still report, exit 0', () => {
    assert.equal(report('--input', `ss:${file('ok.ss', ss)}`).status, 0);
    assert.equal(report('--input', `proc:${file('ok.proc', proc)}`).status, 0);
    assert.equal(report('--input', `netlink:${file('ok.bin', dump)}`).status, 0);
  });
  for (const kind of ['ss', 'proc', 'netlink'] as const) {
    it(`an empty ${kind} file: exit 2, says it is empty`, () => {
      const path = file(`empty.${kind}`, '');
      const r = report('--input', `${kind}:${path}`);
      assert.equal(r.status, 2, r.stdout);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, new RegExp(`${path.replace(/[.]/g, '\\.')} is empty`));
    });
  }
  it('an ss capture cut mid-line: exit 2, says so', () => {
    const path = file('cut.ss', ss.slice(0, ss.length - 20));
    const r = report('--input', `ss:${path}`);
    assert.equal(r.status, 2, r.stdout);
    assert.match(r.stderr, /ends in the middle of a line: the copy was cut short/);
  });
  it('a /proc copy cut mid-line: exit 2, says so', () => {
    const path = file('cut.proc', proc.slice(0, proc.length - 30));
    const r = report('--input', `proc:${path}`);
    assert.equal(r.status, 2, r.stdout);
    assert.match(r.stderr, /ends in the middle of a line/);
  });
  it('a netlink dump without its end markers (cut at a message boundary): exit 2, says so', () => {
    // The dump's messages up to (not including) its first NLMSG_DONE (type 3): IPv4 sockets only.
    let off = 0;
    while (off < dump.length && dump.readUInt16LE(off + 4) !== 3) off += (dump.readUInt32LE(off) + 3) & ~3;
    assert.ok(off > 0 && off < dump.length);
    const path = file('cut.bin', dump.subarray(0, off));
    const r = report('--input', `netlink:${path}`);
    assert.equal(r.status, 2, r.stdout);
    assert.match(r.stderr, /the dump has no end marker \(NLMSG_DONE\) after its last \d+ sockets: the file was cut short/);
  });
});
