import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pageSizeFromAuxv, parseNetstat, parseSockstat, parseSysctlInts } from '../../src/parsers/kernel.ts';
import { pino } from 'pino';
import type { KernelFigures } from '../../src/model.ts';
import { SourceRunner, type SourceOutcome } from '../../src/poller/execute.ts';
import { PageSize, kernelReaders } from '../../src/sources/kernel.ts';

/** Every kernel source of a procfs tree, run as a poll runs it: outcome and figures by source. */
async function readKernel(procfs: string): Promise<Record<string, SourceOutcome & { figures: KernelFigures }>> {
  const runner = new SourceRunner(pino({ level: 'silent' }));
  const got = await Promise.all(kernelReaders(procfs).map((k) => runner.execute(k.source, (tally) => k.read(tally))));
  return Object.fromEntries(got.map(({ outcome, value }) => [outcome.source, { ...outcome, figures: value ?? {} }]));
}

const FIX = new URL('../fixtures/', import.meta.url).pathname;

describe('parseSockstat', () => {
  it('reads TCP and TCP6 lines (docs/kernel-and-ss.md#kernel-wide)', () => {
    const { value, errors } = parseSockstat('sockets: used 25\nTCP: inuse 8 orphan 1 tw 2 alloc 14 mem 255\nUDP: inuse 0 mem 0\nFRAG: inuse 0 memory 0\n');
    assert.deepEqual(errors, []);
    assert.deepEqual(Object.fromEntries(value.get('TCP')!), { inuse: 8, orphan: 1, tw: 2, alloc: 14, mem: 255 });
    assert.deepEqual(Object.fromEntries(parseSockstat('TCP6: inuse 5\n').value.get('TCP6')!), { inuse: 5 });
  });
  it('counts malformed lines and values, keeps the rest', () => {
    const { value, errors } = parseSockstat('TCP: inuse 10 orphan zero tw 2\ngarbage\nUDP: inuse\n');
    assert.equal(errors.length, 3);
    assert.deepEqual(Object.fromEntries(value.get('TCP')!), { inuse: 10, tw: 2 });
  });
  it('empty input', () => assert.deepEqual([parseSockstat('').value.size, parseSockstat('').errors.length], [0, 0]));
});

describe('parseNetstat', () => {
  it('pairs header and value lines per group', () => {
    const { value, errors } = parseNetstat('TcpExt: TCPAbortOnData TCPWinProbe\nTcpExt: 3 265\nIpExt: InNoRoutes\nIpExt: 0\n');
    assert.deepEqual(errors, []);
    assert.deepEqual(Object.fromEntries(value.get('TcpExt')!), { TCPAbortOnData: 3, TCPWinProbe: 265 });
    assert.equal(value.get('IpExt')!.get('InNoRoutes'), 0);
  });
  it('rejects a value line of the wrong length, keeps other groups', () => {
    const { value, errors } = parseNetstat('TcpExt: A B C\nTcpExt: 1 2\nIpExt: X\nIpExt: 7\n');
    assert.equal(errors.length, 1);
    assert.equal(value.get('TcpExt'), undefined);
    assert.equal(value.get('IpExt')!.get('X'), 7);
  });
  it('resynchronises after a header without values', () => {
    const { value, errors } = parseNetstat('TcpExt: A B\nIpExt: X\nIpExt: 7\n');
    assert.equal(errors.length, 1);
    assert.equal(value.get('IpExt')!.get('X'), 7);
  });
  it('reads the real phase0 capture', async () => {
    const { readFile } = await import('node:fs/promises');
    const { value, errors } = parseNetstat(await readFile(`${FIX}captures/netstat`, 'utf8'));
    assert.deepEqual(errors, []);
    assert.equal(value.get('TcpExt')!.get('TCPAbortOnClose'), 70);
    assert.equal(value.get('TcpExt')!.get('TCPWinProbe'), 264);
  });
});

describe('parseSysctlInts', () => {
  it('parses the expected number of integers', () => {
    assert.deepEqual(parseSysctlInts('287898\t383867\t575796\n', 3), [287898, 383867, 575796]);
    assert.deepEqual(parseSysctlInts('131072\n', 1), [131072]);
    assert.equal(parseSysctlInts('1 2\n', 3), undefined);
    assert.equal(parseSysctlInts('x\n', 1), undefined);
    assert.equal(parseSysctlInts('', 1), undefined);
  });
});

describe('pageSizeFromAuxv', () => {
  const auxv = (pairs: Array<[number, number]>, le = true) => {
    const b = Buffer.alloc(pairs.length * 16);
    pairs.forEach(([t, v], i) => {
      if (le) {
        b.writeBigUInt64LE(BigInt(t), i * 16);
        b.writeBigUInt64LE(BigInt(v), i * 16 + 8);
      } else {
        b.writeBigUInt64BE(BigInt(t), i * 16);
        b.writeBigUInt64BE(BigInt(v), i * 16 + 8);
      }
    });
    return b;
  };
  it('finds AT_PAGESZ', () => {
    assert.equal(pageSizeFromAuxv(auxv([[33, 1], [6, 4096], [0, 0]]), 8, true), 4096);
    assert.equal(pageSizeFromAuxv(auxv([[6, 65536], [0, 0]]), 8, true), 65536);
    assert.equal(pageSizeFromAuxv(auxv([[6, 16384], [0, 0]], false), 8, false), 16384);
  });
  it('stops at AT_NULL and rejects nonsense', () => {
    assert.equal(pageSizeFromAuxv(auxv([[0, 0], [6, 4096]]), 8, true), undefined);
    assert.equal(pageSizeFromAuxv(auxv([[6, 5000], [0, 0]]), 8, true), undefined);
    assert.equal(pageSizeFromAuxv(Buffer.from('no page size here'), 8, true), undefined);
    assert.equal(pageSizeFromAuxv(Buffer.alloc(0), 8, true), undefined);
  });
  it('reads this machine (what sysconf(_SC_PAGESIZE) says)', async () => {
    const { execFileSync } = await import('node:child_process');
    const want = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }));
    assert.equal(await new PageSize('/proc').get(), want);
  });
});

describe('kernel sources on fixture trees', () => {
  it('phase0 capture: orphans, memory in bytes, limits, counters', async () => {
    const { sockstat, sockstat6, sysctl, netstat } = await readKernel(`${FIX}proc`);
    assert.deepEqual([sockstat!.up, sockstat6!.up, sysctl!.up, netstat!.up], [true, true, true, true]);
    assert.deepEqual(sockstat!.figures, { orphans: 0, timewait: 2, allocated: 15, memoryBytes: 255 * 4096, inuse: { ipv4: 10 } });
    assert.deepEqual(sockstat6!.figures, { inuse: { ipv6: 5 } });
    assert.equal(netstat!.figures.tcpExt!.get('TCPAbortOnTimeout'), 0);
    assert.equal(sysctl!.parseErrors, 0);
  });
  it('64 KiB pages: memory is pages × 65536; missing sockstat6 and sysctl are not errors; newer counters absent', async () => {
    const { sockstat: s, sockstat6: s6, sysctl: sys, netstat: n } = await readKernel(`${FIX}proc-old-kernel`);
    assert.equal(s!.figures.memoryBytes, 3 * 65536);
    assert.deepEqual([s6!.up, s6!.figures.inuse], [true, { ipv6: 0 }]);
    assert.deepEqual(sys!.figures.memoryLimitBytes, { min: 188163 * 65536, pressure: 250884 * 65536, max: 376326 * 65536 });
    assert.equal(sys!.figures.maxTimewaitBuckets, undefined);
    assert.equal(sys!.parseErrors, 0);
    assert.equal(n!.figures.tcpExt!.has('TCPWinProbe'), false);
    assert.equal(n!.figures.tcpExt!.has('TCPAbortOnMemory'), true);
  });
  it('broken files: errors counted, good values kept, memory withheld without a page size', async () => {
    const { sockstat: s, sysctl: sys, netstat: n } = await readKernel(`${FIX}proc-broken`);
    assert.equal(s!.up, true);
    assert.deepEqual([s!.figures.orphans, s!.figures.timewait, s!.figures.memoryBytes], [undefined, 2, undefined]);
    assert.equal(s!.parseErrors, 3); // orphan value, garbage line, unknown page size
    assert.deepEqual([sys!.up, sys!.figures.orphansLimit, sys!.figures.memoryLimitBytes, sys!.parseErrors], [true, 131072, undefined, 1]);
    assert.equal(n!.up, false);
    assert.match(n!.error!.message, /no TcpExt/);
    assert.equal(n!.parseErrors, 1);
  });
  it('a missing procfs fails every source with the path', async () => {
    const byName = await readKernel(`${FIX}nonexistent`);
    assert.equal(byName.sockstat!.up, false);
    assert.match(byName.sockstat!.error!.message, /nonexistent\/net\/sockstat/);
    assert.equal(byName.sysctl!.up, false);
    assert.equal(byName.netstat!.up, false);
    // sockstat6 absent = IPv6 disabled, not a failure
    assert.equal(byName.sockstat6!.up, true);
  });
});
