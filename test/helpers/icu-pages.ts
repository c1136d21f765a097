// How much of the node binary's ICU data (the icudtNN_dat symbol: locale, calendar and time zone
// tables, ~32 MiB) a process has mapped: the resident pages of that range in its page tables
// (/proc/PID/pagemap's present bit; needs root or the process's own uid). Reading it costs nothing
// to the process; a page counts once this process touched it (or the kernel mapped it around a
// touched one: fault-around maps up to 64 KiB of neighbours already in the page cache).

import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';

const PAGE = 4096;

export interface IcuData {
  /** Link-time address and size of icudtNN_dat. */
  address: bigint;
  size: number;
  /** Virtual address of the first PT_LOAD segment (0 for a position-independent executable). */
  firstLoad: bigint;
}

/** Where a node binary keeps its ICU data (nm -D from binutils, which gcc pulls in). */
export function icuData(binary: string): IcuData {
  const nm = execFileSync('nm', ['-D', '-S', binary], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  const m = /^([0-9a-f]+) ([0-9a-f]+) R icudt\d+_dat$/m.exec(nm);
  if (!m) throw new Error(`${binary}: no icudtNN_dat symbol (a node built without full ICU, or with ICU as a shared library)`);
  return { address: BigInt(`0x${m[1]}`), size: Number.parseInt(m[2]!, 16), firstLoad: firstLoadAddress(binary) };
}

/** p_vaddr of the first PT_LOAD program header of an ELF64 little-endian file. */
function firstLoadAddress(binary: string): bigint {
  const fd = openSync(binary, 'r');
  try {
    const head = Buffer.alloc(64);
    readSync(fd, head, 0, 64, 0);
    if (head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2 || head[5] !== 1) throw new Error(`${binary}: not a little-endian ELF64 file`);
    const phoff = Number(head.readBigUInt64LE(32));
    const phentsize = head.readUInt16LE(54);
    const phnum = head.readUInt16LE(56);
    const ph = Buffer.alloc(phentsize * phnum);
    readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) {
      if (ph.readUInt32LE(i * phentsize) === 1) return ph.readBigUInt64LE(i * phentsize + 16);
    }
    throw new Error(`${binary}: no PT_LOAD segment`);
  } finally {
    closeSync(fd);
  }
}

/** KiB of the ICU data of `binary` resident in process `pid`'s page tables. */
export function icuResidentKiB(pid: number, binary: string, icu = icuData(binary)): number {
  const maps = readFileSync(`/proc/${pid}/maps`, 'utf8')
    .split('\n')
    .map((l) => l.split(/\s+/))
    .filter((p) => p[5] === binary)
    .map((p) => {
      const [start, end] = p[0]!.split('-').map((x) => BigInt(`0x${x}`));
      return { start: start!, end: end!, offset: BigInt(`0x${p[2]}`) };
    });
  const base = maps.find((m) => m.offset === 0n);
  if (base === undefined) throw new Error(`${binary} is not mapped in process ${pid}`);
  const bias = base.start - (icu.firstLoad & ~BigInt(PAGE - 1)); // 0 unless position-independent
  const from = icu.address + bias;
  const to = from + BigInt(icu.size);
  const pagemap = openSync(`/proc/${pid}/pagemap`, 'r');
  try {
    let pages = 0;
    const entry = Buffer.alloc(8);
    for (const m of maps) {
      const lo = (m.start > from ? m.start : from) & ~BigInt(PAGE - 1);
      const hi = m.end < to ? m.end : to;
      for (let va = lo; va < hi; va += BigInt(PAGE)) {
        readSync(pagemap, entry, 0, 8, Number((va / BigInt(PAGE)) * 8n));
        if (entry.readBigUInt64LE(0) >> 63n === 1n) pages++;
      }
    }
    return (pages * PAGE) / 1024;
  } finally {
    closeSync(pagemap);
  }
}
