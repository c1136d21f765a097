// Reading the files of --path.procfs without ever blocking the process on one of them.
//
// Every file operation of Node.js runs in libuv's thread pool: 4 threads (UV_THREADPOOL_SIZE),
// shared with zlib (the gzip of /metrics) and DNS. A read() the kernel does not answer — a FIFO
// waiting for a writer, a hung FUSE or network mount — holds its thread until it returns, and
// nothing can cancel it: the poll deadline abandons the read, not the thread. Before these rules,
// one stalled file took a thread per poll: after four polls every source was down and every gzip
// scrape hung (measured with a FUSE mount; test/faults/stalled-read.test.ts).
//
// So: (1) only regular files are opened, without blocking (a FIFO is refused at once); (2) a file
// whose previous read has not returned is not read again until it does (its source is down,
// saying so): a stalled file holds one thread at most; (3) the reads of --path.procfs hold at most
// MAX_FILE_CALLS threads at once, one system call at a time, so that even a whole stalled mount
// leaves the other threads to the rest of the process.

import { constants } from 'node:fs';
import { open, statfs, type FileHandle } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';

/** Threads of libuv's 4 the procfs reads may hold at once: a stalled mount leaves zlib the others. */
export const MAX_FILE_CALLS = 2;

/** Bytes per read() (the kernel fills each from its seq_file iterator). */
const CHUNK = 65_536;

/** A counting semaphore; a waiter whose signal aborts leaves the queue. */
class Slots {
  private free: number;
  private readonly waiting: Array<() => void> = [];

  constructor(size: number) {
    this.free = size;
  }

  acquire(signal: AbortSignal | undefined): Promise<() => void> {
    const release = () => {
      const next = this.waiting.shift();
      if (next !== undefined) next();
      else this.free++;
    };
    if (this.free > 0) {
      this.free--;
      return Promise.resolve(release);
    }
    return new Promise((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve(release);
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(grant);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal!.reason instanceof Error ? signal!.reason : new Error('aborted'));
      };
      if (signal?.aborted === true) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(grant);
    });
  }
}

const slots = new Slots(MAX_FILE_CALLS);
/** Files whose read is under way, with when it started. */
const inFlight = new Map<string, number>();

/** A read refused because the previous read of the same file has not returned. */
export class StalledRead extends Error {
  readonly code = 'ESTALLED';
}

/** One system call on the thread pool, holding one of the slots while it runs. */
async function call<T>(fn: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  const release = await slots.acquire(signal);
  try {
    return await fn();
  } finally {
    release();
  }
}

/**
 * Opens a regular file and hands it to `use`, then closes it. Rejects, without touching the
 * file, when its previous read has not returned; rejects (ENOTREG) anything but a regular file.
 */
async function withRegularFile<T>(path: string, signal: AbortSignal | undefined, use: (file: FileHandle) => Promise<T>): Promise<T> {
  const since = inFlight.get(path);
  if (since !== undefined) {
    // The caller names the file ("reading PATH: ...").
    throw new StalledRead(`its previous read, started ${new Date(since).toISOString()}, has not returned (a stalled mount?): not read again until it does`);
  }
  inFlight.set(path, Date.now());
  let file: FileHandle | undefined;
  try {
    // O_NONBLOCK: open() of a FIFO returns at once instead of waiting for a writer. It changes
    // nothing for a regular file, whose reads never return EAGAIN.
    file = await call(() => open(path, constants.O_RDONLY | constants.O_NONBLOCK), signal);
    const opened = file;
    const stat = await call(() => opened.stat(), signal);
    if (!stat.isFile()) throw Object.assign(new Error(`${path} is not a regular file (a FIFO, device or directory)`), { code: 'ENOTREG' });
    return await use(opened);
  } finally {
    // Closing takes a slot too, but no signal: the descriptor must not leak.
    const opened = file;
    if (opened !== undefined) await call(() => opened.close(), undefined).catch(() => undefined);
    inFlight.delete(path);
  }
}

/** The chunks of a file, read one system call at a time. */
async function* chunks(file: FileHandle, signal: AbortSignal | undefined): AsyncGenerator<Buffer> {
  // One buffer for every read(), and each chunk copied out at its real size: a procfs file answers
  // a read() with about one page whatever was asked for, so a fresh 64 KiB buffer per call made
  // 64 KiB of garbage per 4 KiB of table (~350 MB for 150 000 sockets; poll 1.26 s, peak RSS 237 MiB).
  const buf = Buffer.allocUnsafe(CHUNK);
  for (;;) {
    if (signal?.aborted === true) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
    const { bytesRead } = await call(() => file.read(buf, 0, CHUNK, null), signal);
    if (bytesRead === 0) return;
    yield Buffer.from(buf.subarray(0, bytesRead));
  }
}

/** A whole regular file (small kernel files: sockstat, sysctls, auxv). */
export function readRegularFile(path: string, signal?: AbortSignal): Promise<Buffer> {
  return withRegularFile(path, signal, async (file) => {
    const parts: Buffer[] = [];
    for await (const c of chunks(file, signal)) parts.push(c);
    return Buffer.concat(parts);
  });
}

/**
 * Streams a regular file as text to `consume`, chunk by chunk (a UTF-8 sequence cut between two
 * reads is joined), awaiting it before the next read.
 */
export function streamRegularFile(path: string, consume: (text: string) => Promise<void> | void, signal?: AbortSignal): Promise<void> {
  return withRegularFile(path, signal, async (file) => {
    const decoder = new StringDecoder('utf8');
    for await (const c of chunks(file, signal)) await consume(decoder.write(c));
    const rest = decoder.end();
    if (rest !== '') await consume(rest);
  });
}

/** f_type of procfs (statfs(2)): its files are generated by the kernel at each read, never replaced. */
export const PROC_SUPER_MAGIC = 0x9fa0;

/** procfs files kept open between reads (readKernelFile), by path. */
const keptOpen = new Map<string, FileHandle>();
/** Paths read by readKernelFile that are not on procfs: opened at each read. */
const notProcfs = new Set<string>();

/**
 * A whole small kernel file (sockstat, netstat, a sysctl), read at every poll. A file on procfs is
 * opened once and kept open: each read starts again at offset 0 (pread), where the kernel makes
 * its text anew, so the figures are current while open(), fstat() and close() (three trips through
 * libuv's thread pool of five per file) are saved: about 1.5 ms of CPU per poll for the eleven
 * files (docs/performance.md, "Fixed costs of a poll"). Elsewhere (a copy of procfs, a test's
 * fixture, a FUSE mount) a file may be replaced between reads: it is opened at each read, as
 * readRegularFile does. The same rules hold: only regular files, no second read of a file whose
 * previous read has not returned, the thread-pool slots. A failed read closes the kept handle.
 */
export async function readKernelFile(path: string, signal?: AbortSignal): Promise<Buffer> {
  if (notProcfs.has(path)) return readRegularFile(path, signal);
  const since = inFlight.get(path);
  if (since !== undefined) {
    throw new StalledRead(`its previous read, started ${new Date(since).toISOString()}, has not returned (a stalled mount?): not read again until it does`);
  }
  inFlight.set(path, Date.now());
  try {
    let file = keptOpen.get(path);
    if (file === undefined) {
      // Once per path (a statfs() that fails, e.g. a missing file, counts as "not procfs": the
      // read below then reports the file's own error).
      const type = await call(() => statfs(path), signal).then((fs) => fs.type, () => undefined);
      if (type !== PROC_SUPER_MAGIC) notProcfs.add(path);
      else file = await openKept(path, signal);
    }
    if (file !== undefined) {
      try {
        return await readFrom(file, signal);
      } catch (e) {
        keptOpen.delete(path);
        const failed = file;
        await call(() => failed.close(), undefined).catch(() => undefined);
        throw e;
      }
    }
  } finally {
    inFlight.delete(path);
  }
  return readRegularFile(path, signal);
}

/** Opens a regular file on procfs and keeps it in keptOpen. */
async function openKept(path: string, signal: AbortSignal | undefined): Promise<FileHandle> {
  const opened = await call(() => open(path, constants.O_RDONLY | constants.O_NONBLOCK), signal);
  try {
    const stat = await call(() => opened.stat(), signal);
    if (!stat.isFile()) throw Object.assign(new Error(`${path} is not a regular file (a FIFO, device or directory)`), { code: 'ENOTREG' });
  } catch (e) {
    await call(() => opened.close(), undefined).catch(() => undefined);
    throw e;
  }
  keptOpen.set(path, opened);
  return opened;
}

/** A file's whole text from offset 0, one pread() at a time. */
async function readFrom(file: FileHandle, signal: AbortSignal | undefined): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(CHUNK);
  const parts: Buffer[] = [];
  let position = 0;
  for (;;) {
    if (signal?.aborted === true) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
    const { bytesRead } = await call(() => file.read(buf, 0, CHUNK, position), signal);
    if (bytesRead === 0) return Buffer.concat(parts);
    parts.push(Buffer.from(buf.subarray(0, bytesRead)));
    position += bytesRead;
  }
}

/** Closes the files readKernelFile keeps open (the poll thread, when it stops). */
export async function closeKernelFiles(): Promise<void> {
  const files = [...keptOpen.values()];
  keptOpen.clear();
  await Promise.all(files.map((f) => f.close().catch(() => undefined)));
}
