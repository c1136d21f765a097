// readKernelFile (src/sources/open.ts): the small kernel files read at every poll stay open on
// procfs and are read again from offset 0; anywhere else they are opened at each read.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import type { KernelFigures } from '../../src/model.ts';
import { SourceRunner } from '../../src/poller/execute.ts';
import { kernelReaders } from '../../src/sources/kernel.ts';
import { closeKernelFiles, readKernelFile } from '../../src/sources/open.ts';

/** This process's descriptors open on `target` (what their /proc/self/fd links name). */
function descriptorsOn(target: string): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === target) out.push(fd);
    } catch {
      // the directory's own descriptor, gone by now
    }
  }
  return out;
}

describe('readKernelFile', () => {
  const comm = `/proc/${process.pid}/comm`;
  const name = readFileSync(comm, 'utf8');
  after(() => writeFileSync('/proc/thread-self/comm', name.trim()));

  it('keeps a procfs file open and reads it again from its start, with the text of the moment', async () => {
    assert.equal((await readKernelFile(comm)).toString(), name);
    const kept = descriptorsOn(comm);
    assert.equal(kept.length, 1, 'one descriptor stays open on the file between reads');
    // This thread is the process's main one: its name is what /proc/PID/comm shows.
    writeFileSync('/proc/thread-self/comm', 'tcpstate-kept');
    assert.equal((await readKernelFile(comm)).toString(), 'tcpstate-kept\n');
    assert.equal((await readKernelFile(comm)).toString(), 'tcpstate-kept\n');
    assert.deepEqual(descriptorsOn(comm), kept, 'the same descriptor, not a new one per read');
    await closeKernelFiles();
    assert.deepEqual(descriptorsOn(comm), [], 'closeKernelFiles() closes it');
    assert.equal((await readKernelFile(comm)).toString(), 'tcpstate-kept\n', 'and a later read opens it again');
    await closeKernelFiles();
  });

  it('reads a multi-page procfs file whole, every time', async () => {
    // /proc/PID/smaps of a Node.js process is many pages: each pread() returns about one.
    const path = `/proc/${process.pid}/smaps`;
    for (let i = 0; i < 3; i++) {
      const text = (await readKernelFile(path)).toString();
      assert.ok(text.length > 8192, `${text.length} bytes`);
      assert.match(text.slice(-200), /VmFlags:[^\n]*\n$/, 'ends with the last mapping\'s last line');
    }
    await closeKernelFiles();
  });

  it('opens a file outside procfs at every read: a file replaced between reads is read anew', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tcpstate-kernel-files-'));
    try {
      const path = join(dir, 'sockstat');
      writeFileSync(path, 'TCP: inuse 1\n');
      assert.equal((await readKernelFile(path)).toString(), 'TCP: inuse 1\n');
      assert.deepEqual(descriptorsOn(path), [], 'not kept open');
      writeFileSync(join(dir, 'next'), 'TCP: inuse 2\n');
      renameSync(join(dir, 'next'), path);
      assert.equal((await readKernelFile(path)).toString(), 'TCP: inuse 2\n');
      await assert.rejects(readKernelFile(join(dir, 'missing')), { code: 'ENOENT' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the kernel sources read this host the same at every poll as a fresh read of each file', async () => {
    const runner = new SourceRunner(pino({ level: 'silent' }));
    const readers = kernelReaders('/proc');
    const sysctl = (n: string) => readFileSync(`/proc/sys/net/ipv4/${n}`, 'utf8').trim().split(/\s+/).map(Number);
    for (let poll = 0; poll < 3; poll++) {
      const got = await Promise.all(readers.map((k) => runner.execute(k.source, (tally) => k.read(tally))));
      for (const { outcome } of got) assert.equal(outcome.up, true, `${outcome.source}: ${outcome.error?.message}`);
      const figures: KernelFigures = Object.assign({}, ...got.map((g) => g.value ?? {})) as KernelFigures;
      assert.equal(figures.orphansLimit, sysctl('tcp_max_orphans')[0]);
      assert.equal(figures.finTimeoutSeconds, sysctl('tcp_fin_timeout')[0]);
      assert.deepEqual(figures.wmemBytes, { min: sysctl('tcp_wmem')[0], default: sysctl('tcp_wmem')[1], max: sysctl('tcp_wmem')[2] });
      assert.ok(figures.tcpExt?.has('TCPAbortOnData'));
    }
    assert.ok(descriptorsOn(`/proc/${process.pid}/net/netstat`).length + descriptorsOn('/proc/sys/net/ipv4/tcp_wmem').length >= 2, 'kept open');
    await closeKernelFiles();
    assert.deepEqual(descriptorsOn('/proc/sys/net/ipv4/tcp_wmem'), []);
  });
});
