// Kernel-wide figures, read once per poll, each file group as its own source (DOMAIN.md §4):
// sockstat (orphans, TCP memory: host-wide; inuse, tw: per netns), the sysctls that bound them,
// and the TcpExt counters of /proc/net/netstat (per netns). Pages are converted to bytes here,
// with the host's real page size.

import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { join } from 'node:path';
import type { Family } from '../model.ts';
import { pageSizeFromAuxv, parseNetstat, parseSockstat, parseSysctlInts, type Parsed } from '../parsers/kernel.ts';
import { asError } from './report.ts';

export interface KernelFigures {
  /** sockstat `orphan`: orphaned full sockets, host-wide (what tcp_max_orphans limits). */
  orphans?: number;
  /** sockstat `mem` × page size: memory of all TCP sockets, host-wide (what tcp_mem limits). */
  memoryBytes?: number;
  /** sockstat/sockstat6 `inuse`: hashed full sockets of this netns, LISTEN and orphans included. */
  inuse?: Partial<Record<Family, number>>;
  /** sockstat `tw`: TIME-WAIT (and FIN-WAIT-2) minisockets of this netns. */
  timewait?: number;
  /** sockstat `alloc`: TCP sockets allocated, host-wide, both families, closed ones included. */
  allocated?: number;
  orphansLimit?: number;
  memoryLimitBytes?: { min: number; pressure: number; max: number };
  orphanRetries?: number;
  finTimeoutSeconds?: number;
  retries2?: number;
  maxTimewaitBuckets?: number;
  wmemBytes?: { min: number; default: number; max: number };
  /** TcpExt counters of /proc/net/netstat by kernel name. */
  tcpExt?: ReadonlyMap<string, number>;
}

export type KernelSource = 'sockstat' | 'sockstat6' | 'sysctl' | 'netstat';

export interface KernelReport {
  source: KernelSource;
  up: boolean;
  durationSeconds: number;
  parseErrors: number;
  firstParseError: { reason: string; line: string } | undefined;
  error: Error | undefined;
  figures: KernelFigures;
}

type Errors = Parsed<unknown>['errors'];

async function timed(source: KernelSource, read: (errors: Errors) => Promise<KernelFigures>): Promise<KernelReport> {
  const started = process.hrtime.bigint();
  const errors: Errors = [];
  let figures: KernelFigures = {};
  let error: Error | undefined;
  try {
    figures = await read(errors);
  } catch (e) {
    error = asError(e);
  }
  return {
    source,
    up: error === undefined,
    durationSeconds: Number(process.hrtime.bigint() - started) / 1e9,
    parseErrors: errors.length,
    firstParseError: errors[0] === undefined ? undefined : { reason: errors[0].reason, line: errors[0].line.slice(0, 200) },
    error,
    figures,
  };
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const err = asError(e);
    throw new Error(`reading ${path}: ${err.message}`, { cause: err });
  }
}

const isMissing = (e: unknown) => (e as NodeJS.ErrnoException | undefined)?.code === 'ENOENT' ||
  ((e as Error | undefined)?.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';

/** Reads the page size once per procfs root (it cannot change while the host runs). */
export class PageSize {
  private cached: Promise<number> | undefined;
  constructor(private readonly procfs: string) {}

  get(): Promise<number> {
    this.cached ??= readFile(join(this.procfs, 'self', 'auxv')).then((buf) => {
      const size = pageSizeFromAuxv(buf, process.arch.endsWith('64') ? 8 : 4, endianness() === 'LE');
      if (size === undefined) throw new Error('no AT_PAGESZ in self/auxv');
      return size;
    });
    // A failure is not cached: the next poll tries again.
    this.cached.catch(() => (this.cached = undefined));
    return this.cached;
  }
}

async function pagesToBytes(pages: number | undefined, pageSize: PageSize, errors: Errors, what: string): Promise<number | undefined> {
  if (pages === undefined) return undefined;
  try {
    return pages * (await pageSize.get());
  } catch (e) {
    errors.push({ reason: `${what}: page size unknown (${asError(e).message}), memory not reported`, line: '' });
    return undefined;
  }
}

export function readSockstat(procfs: string, pageSize: PageSize): Promise<KernelReport> {
  return timed('sockstat', async (errors) => {
    const parsed = parseSockstat(await readText(join(procfs, 'net', 'sockstat')));
    errors.push(...parsed.errors);
    const tcp = parsed.value.get('TCP');
    if (tcp === undefined) throw new Error(`no TCP line in ${join(procfs, 'net', 'sockstat')}`);
    const f: KernelFigures = {
      orphans: tcp.get('orphan'),
      timewait: tcp.get('tw'),
      allocated: tcp.get('alloc'),
      memoryBytes: await pagesToBytes(tcp.get('mem'), pageSize, errors, 'sockstat mem'),
    };
    const inuse = tcp.get('inuse');
    if (inuse !== undefined) f.inuse = { ipv4: inuse };
    return f;
  });
}

/** sockstat6 is absent when IPv6 is disabled: then IPv6 simply has no sockets. */
export function readSockstat6(procfs: string): Promise<KernelReport> {
  return timed('sockstat6', async (errors) => {
    let text: string;
    try {
      text = await readText(join(procfs, 'net', 'sockstat6'));
    } catch (e) {
      if (isMissing(e)) return { inuse: { ipv6: 0 } };
      throw e;
    }
    const parsed = parseSockstat(text);
    errors.push(...parsed.errors);
    const inuse = parsed.value.get('TCP6')?.get('inuse');
    if (inuse === undefined) throw new Error(`no TCP6 inuse in ${join(procfs, 'net', 'sockstat6')}`);
    return { inuse: { ipv6: inuse } };
  });
}

export function readSysctls(procfs: string, pageSize: PageSize): Promise<KernelReport> {
  return timed('sysctl', async (errors) => {
    const dir = join(procfs, 'sys', 'net', 'ipv4');
    let found = 0;
    const ints = async (name: string, count: number): Promise<number[] | undefined> => {
      let text: string;
      try {
        text = await readText(join(dir, name));
      } catch (e) {
        if (isMissing(e)) return undefined; // an older kernel without this setting
        throw e;
      }
      found++;
      const v = parseSysctlInts(text, count);
      if (v === undefined) errors.push({ reason: `${name}: expected ${count} integer(s)`, line: text });
      return v;
    };
    const [maxOrphans, mem, orphanRetries, finTimeout, retries2, maxTw, wmem] = await Promise.all([
      ints('tcp_max_orphans', 1),
      ints('tcp_mem', 3),
      ints('tcp_orphan_retries', 1),
      ints('tcp_fin_timeout', 1),
      ints('tcp_retries2', 1),
      ints('tcp_max_tw_buckets', 1),
      ints('tcp_wmem', 3),
    ]);
    if (found === 0) throw new Error(`no TCP sysctls under ${dir}`);
    const f: KernelFigures = {
      orphansLimit: maxOrphans?.[0],
      orphanRetries: orphanRetries?.[0],
      finTimeoutSeconds: finTimeout?.[0],
      retries2: retries2?.[0],
      maxTimewaitBuckets: maxTw?.[0],
    };
    if (mem !== undefined) {
      const [min, pressure, max] = await Promise.all(mem.map((p) => pagesToBytes(p, pageSize, errors, 'tcp_mem')));
      if (min !== undefined && pressure !== undefined && max !== undefined) f.memoryLimitBytes = { min, pressure, max };
    }
    if (wmem !== undefined) f.wmemBytes = { min: wmem[0]!, default: wmem[1]!, max: wmem[2]! };
    return f;
  });
}

export function readNetstat(procfs: string): Promise<KernelReport> {
  return timed('netstat', async (errors) => {
    const path = join(procfs, 'net', 'netstat');
    const parsed = parseNetstat(await readText(path));
    errors.push(...parsed.errors);
    const tcpExt = parsed.value.get('TcpExt');
    if (tcpExt === undefined) throw new Error(`no TcpExt in ${path}`);
    return { tcpExt };
  });
}

/** All kernel-wide sources, concurrently. */
export function readKernel(procfs: string, pageSize: PageSize): Promise<KernelReport[]> {
  return Promise.all([readSockstat(procfs, pageSize), readSockstat6(procfs), readSysctls(procfs, pageSize), readNetstat(procfs)]);
}
