// Pure parsers for the small kernel-wide files (docs/kernel-and-ss.md#kernel-wide): /proc/net/sockstat{,6},
// /proc/net/netstat, /proc/sys/net/ipv4/* and the page size from /proc/self/auxv.

export interface Parsed<T> {
  value: T;
  /** Lines or fields that could not be parsed (skipped). */
  errors: Array<{ reason: string; line: string }>;
}

function toInt(text: string): number | undefined {
  if (!/^-?\d{1,18}$/.test(text)) return undefined;
  return Number(text);
}

/**
 * `/proc/net/sockstat`: `PROTO: key value key value …` per line, e.g.
 * `TCP: inuse 10 orphan 0 tw 2 alloc 15 mem 255` (sockstat_seq_show(), the same since 2.6).
 * Returns key/value maps per protocol; a field the kernel does not print is simply absent.
 */
export function parseSockstat(text: string): Parsed<Map<string, Map<string, number>>> {
  const out = new Map<string, Map<string, number>>();
  const errors: Parsed<unknown>['errors'] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const colon = line.indexOf(':');
    const fields = line.slice(colon + 1).trim().split(/\s+/);
    if (colon <= 0 || fields.length % 2 !== 0) {
      errors.push({ reason: 'not "PROTO: key value …"', line });
      continue;
    }
    const kv = new Map<string, number>();
    for (let i = 0; i < fields.length; i += 2) {
      const v = toInt(fields[i + 1]!);
      if (v === undefined) errors.push({ reason: `value of ${fields[i]} is not a number`, line });
      else kv.set(fields[i]!, v);
    }
    out.set(line.slice(0, colon), kv);
  }
  return { value: out, errors };
}

/**
 * `/proc/net/netstat` (and `/proc/net/snmp`): pairs of lines, a header `Group: Name Name …`
 * followed by `Group: value value …`. Counters the kernel lacks are absent.
 */
export function parseNetstat(text: string): Parsed<Map<string, Map<string, number>>> {
  const out = new Map<string, Map<string, number>>();
  const errors: Parsed<unknown>['errors'] = [];
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  for (let i = 0; i < lines.length; i += 2) {
    const head = lines[i]!;
    const vals = lines[i + 1];
    const hc = head.indexOf(':');
    const group = head.slice(0, hc);
    if (vals === undefined || hc <= 0 || !vals.startsWith(`${group}:`)) {
      errors.push({ reason: 'header line without its value line', line: head });
      // Resynchronise on the next line rather than pairing everything wrongly.
      i -= 1;
      continue;
    }
    const names = head.slice(hc + 1).trim().split(/\s+/);
    const values = vals.slice(hc + 1).trim().split(/\s+/);
    if (names.length !== values.length) {
      errors.push({ reason: `${names.length} names but ${values.length} values`, line: vals });
      continue;
    }
    const m = new Map<string, number>();
    names.forEach((n, k) => {
      const v = toInt(values[k]!);
      if (v === undefined) errors.push({ reason: `${group}.${n} is not a number`, line: vals });
      else m.set(n, v);
    });
    out.set(group, m);
  }
  return { value: out, errors };
}

/** A sysctl file of whitespace-separated integers (`tcp_mem`: `287898	383867	575796`). */
export function parseSysctlInts(text: string, count: number): number[] | undefined {
  const parts = text.trim().split(/\s+/);
  if (parts.length !== count) return undefined;
  const out: number[] = [];
  for (const p of parts) {
    const v = toInt(p);
    if (v === undefined) return undefined;
    out.push(v);
  }
  return out;
}

const AT_NULL = 0;
const AT_PAGESZ = 6;

/**
 * The page size from an ELF auxiliary vector (`/proc/self/auxv`): the AT_PAGESZ entry, which is
 * what sysconf(_SC_PAGESIZE) returns. Entries are (type, value) pairs of native words.
 */
export function pageSizeFromAuxv(auxv: Uint8Array, wordBytes: 4 | 8, littleEndian: boolean): number | undefined {
  const view = new DataView(auxv.buffer, auxv.byteOffset, auxv.byteLength);
  const read = (off: number) =>
    wordBytes === 8 ? Number(view.getBigUint64(off, littleEndian)) : view.getUint32(off, littleEndian);
  for (let off = 0; off + 2 * wordBytes <= auxv.byteLength; off += 2 * wordBytes) {
    const type = read(off);
    if (type === AT_NULL) break;
    if (type === AT_PAGESZ) {
      const v = read(off + wordBytes);
      // A page size is a power of two of at least 4 KiB.
      return v >= 4096 && (v & (v - 1)) === 0 ? v : undefined;
    }
  }
  return undefined;
}
