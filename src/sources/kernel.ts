// Kernel-wide figures, read once per poll, each file group as its own source (docs/kernel-and-ss.md#kernel-wide):
// sockstat (orphans, TCP memory: host-wide; inuse, tw: per netns), the sysctls that bound them,
// and the TcpExt counters of /proc/net/netstat (per netns). Pages are converted to bytes here,
// with the host's real page size.

import { readKernelFile, readRegularFile } from './open.ts';
import { endianness } from 'node:os';
import { join } from 'node:path';
import type { ErrorSink, KernelFigures } from '../model.ts';
import { pageSizeFromAuxv, parseNetstat, parseSockstat, parseSysctlInts, type Parsed } from '../parsers/kernel.ts';
import { asError, type KernelReader } from './source.ts';

type Errors = Parsed<unknown>['errors'];

/** Hands a parser's skipped lines to the poll's error sink. */
function report(errors: ErrorSink, parsed: Errors): void {
  for (const e of parsed) errors.error(e.reason, e.line);
}


/**
 * The whole lines of a kernel file. The kernel ends every line it prints (seq_file): text after
 * the last newline is a file cut short (a copy, a stalled mount), counted as a parse error and
 * not parsed: "TCP: inuse 10 orphan 0" cut from its line would otherwise pass for a whole line.
 */
async function readText(path: string, errors: ErrorSink): Promise<string> {
  let text: string;
  try {
    text = (await readKernelFile(path)).toString('utf8');
  } catch (e) {
    const err = asError(e);
    throw new Error(`reading ${path}: ${err.message}`, { cause: err });
  }
  const end = text.lastIndexOf('\n') + 1;
  if (end < text.length) errors.error('truncated line (no newline at the end of the file)', text.slice(end));
  return text.slice(0, end);
}

const isMissing = (e: unknown) => (e as NodeJS.ErrnoException | undefined)?.code === 'ENOENT' ||
  ((e as Error | undefined)?.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';

/** Reads the page size once per procfs root (it cannot change while the host runs). */
export class PageSize {
  private cached: Promise<number> | undefined;
  constructor(private readonly procfs: string) {}

  get(): Promise<number> {
    this.cached ??= readRegularFile(join(this.procfs, 'self', 'auxv')).then((buf) => {
      const size = pageSizeFromAuxv(buf, process.arch.endsWith('64') ? 8 : 4, endianness() === 'LE');
      if (size === undefined) throw new Error('no AT_PAGESZ in self/auxv');
      return size;
    });
    // A failure is not cached: the next poll tries again.
    this.cached.catch(() => (this.cached = undefined));
    return this.cached;
  }
}

async function pagesToBytes(pages: number | undefined, pageSize: PageSize, errors: ErrorSink, what: string): Promise<number | undefined> {
  if (pages === undefined) return undefined;
  try {
    return pages * (await pageSize.get());
  } catch (e) {
    errors.error(`${what}: page size unknown (${asError(e).message}), memory not reported`, '');
    return undefined;
  }
}

function sockstat(procfs: string, pageSize: PageSize): KernelReader {
  return { source: 'sockstat', read: async (errors) => {
    const parsed = parseSockstat(await readText(join(procfs, 'net', 'sockstat'), errors));
    report(errors, parsed.errors);
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
  } };
}

/** sockstat6 is absent when IPv6 is disabled: then IPv6 simply has no sockets. */
function sockstat6(procfs: string): KernelReader {
  return { source: 'sockstat6', read: async (errors) => {
    let text: string;
    try {
      text = await readText(join(procfs, 'net', 'sockstat6'), errors);
    } catch (e) {
      if (isMissing(e)) return { inuse: { ipv6: 0 } };
      throw e;
    }
    const parsed = parseSockstat(text);
    report(errors, parsed.errors);
    const inuse = parsed.value.get('TCP6')?.get('inuse');
    if (inuse === undefined) throw new Error(`no TCP6 inuse in ${join(procfs, 'net', 'sockstat6')}`);
    return { inuse: { ipv6: inuse } };
  } };
}

function sysctls(procfs: string, pageSize: PageSize): KernelReader {
  return { source: 'sysctl', read: async (errors) => {
    const dir = join(procfs, 'sys', 'net', 'ipv4');
    let found = 0;
    const ints = async (name: string, count: number): Promise<number[] | undefined> => {
      let text: string;
      try {
        text = await readText(join(dir, name), errors);
      } catch (e) {
        if (isMissing(e)) return undefined; // an older kernel without this setting
        throw e;
      }
      found++;
      const v = parseSysctlInts(text, count);
      if (v === undefined) errors.error(`${name}: expected ${count} integer(s)`, text);
      return v;
    };
    const [maxOrphans, mem, orphanRetries, finTimeout, retries2, maxTw, wmem, rtoMax] = await Promise.all([
      ints('tcp_max_orphans', 1),
      ints('tcp_mem', 3),
      ints('tcp_orphan_retries', 1),
      ints('tcp_fin_timeout', 1),
      ints('tcp_retries2', 1),
      ints('tcp_max_tw_buckets', 1),
      ints('tcp_wmem', 3),
      ints('tcp_rto_max_ms', 1),
    ]);
    if (found === 0) throw new Error(`no TCP sysctls under ${dir}`);
    const f: KernelFigures = {
      orphansLimit: maxOrphans?.[0],
      orphanRetries: orphanRetries?.[0],
      finTimeoutSeconds: finTimeout?.[0],
      retries2: retries2?.[0],
      maxTimewaitBuckets: maxTw?.[0],
      rtoMaxSeconds: rtoMax === undefined ? undefined : rtoMax[0]! / 1000,
    };
    if (mem !== undefined) {
      const [min, pressure, max] = await Promise.all(mem.map((p) => pagesToBytes(p, pageSize, errors, 'tcp_mem')));
      if (min !== undefined && pressure !== undefined && max !== undefined) f.memoryLimitBytes = { min, pressure, max };
    }
    if (wmem !== undefined) f.wmemBytes = { min: wmem[0]!, default: wmem[1]!, max: wmem[2]! };
    return f;
  } };
}

function netstat(procfs: string): KernelReader {
  return { source: 'netstat', read: async (errors) => {
    const path = join(procfs, 'net', 'netstat');
    const parsed = parseNetstat(await readText(path, errors));
    report(errors, parsed.errors);
    const tcpExt = parsed.value.get('TcpExt');
    if (tcpExt === undefined) throw new Error(`no TcpExt in ${path}`);
    return { tcpExt };
  } };
}

/** The kernel-wide sources of a procfs mount (read concurrently by the poll). */
export function kernelReaders(procfs: string): KernelReader[] {
  const pageSize = new PageSize(procfs);
  return [sockstat(procfs, pageSize), sockstat6(procfs), sysctls(procfs, pageSize), netstat(procfs)];
}
