// Streaming parser for /proc/net/tcp and /proc/net/tcp6 (docs/kernel-and-ss.md#proc-net-tcp).
//
//   sl local rem st tx:rx tr:when retrnsmt uid timeout inode refcnt ptr [rto ato qack cwnd ssthresh]
//
// Full sockets have 16 tokens after `sl:`, TIME-WAIT / SYN-RECV minisocks 11. Addresses are
// 32-bit words printed as host-order hex (little-endian assumed, as on x86-64 and arm64),
// ports plain hex, `tm->when` in USER_HZ ticks, `timeout` is icsk_probes_out.
//
// /proc/net/tcp is not an atomic snapshot: under churn the seq_file iterator can hand out the
// same socket twice in one read, so lines are deduplicated on the socket's kernel address (or, when
// kptr_restrict hides it, on local, remote, state and inode).

import { TIMER_WRAP_SECONDS, emptyRecord, type Family, type ParseSink, type SocketRecord } from '../model.ts';
import { STATE_CODES, TIMER_CODES, ipv4Text, ipv6Text, isUnlabelledState } from './kernel-codes.ts';
import { parseCount, tokenize } from './tokens.ts';

/**
 * USER_HZ: the unit of clock_t values the kernel exports to user space. It is 100 on every
 * architecture Linux supports today (only alpha/ia64 differed, both gone from the tree).
 */
export const USER_HZ = 100;

function hexValue(text: string, maxDigits: number): number | undefined {
  if (text.length === 0 || text.length > maxDigits) return undefined;
  let v = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    let d: number;
    if (c >= 48 && c <= 57) d = c - 48;
    else if (c >= 65 && c <= 70) d = c - 55;
    else if (c >= 97 && c <= 102) d = c - 87;
    else return undefined;
    v = v * 16 + d;
  }
  return v;
}

/** Two hex numbers joined by a colon (`tx:rx`, `tr:when`, `addr:port`). */
function splitColon(text: string): [string, string] | undefined {
  const c = text.indexOf(':');
  if (c < 0) return undefined;
  return [text.slice(0, c), text.slice(c + 1)];
}

/** One little-endian 32-bit word as the four address bytes it holds. */
function wordBytes(hex: string): [number, number, number, number] | undefined {
  const v = hexValue(hex, 8);
  if (v === undefined || hex.length !== 8) return undefined;
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
}

/** Decodes `0100007F` → 127.0.0.1 and the 32-digit IPv6 form → RFC 5952-ish text. */
export function decodeProcAddress(hex: string, family: Family): string | undefined {
  if (family === 'ipv4') {
    const b = wordBytes(hex);
    return b === undefined ? undefined : ipv4Text(b[0], b[1], b[2], b[3]);
  }
  if (hex.length !== 32) return undefined;
  const bytes: number[] = [];
  for (let w = 0; w < 4; w++) {
    const b = wordBytes(hex.slice(w * 8, w * 8 + 8));
    if (b === undefined) return undefined;
    bytes.push(...b);
  }
  return ipv6Text(bytes);
}

/** A full /proc/net/tcp{,6} table read: one instance per file per poll. */
export class ProcNetTcpParser {
  private readonly tokens: string[] = [];
  private readonly seen = new Set<string | number>();
  private readonly addrDigits: number;
  private readonly record: SocketRecord;

  constructor(
    private readonly sink: ParseSink,
    private readonly family: Family,
  ) {
    this.addrDigits = family === 'ipv4' ? 8 : 32;
    this.record = emptyRecord(family, 'close');
  }

  line(line: string): void {
    // Only the first 12 fields are used (through the socket pointer); don't cut the rest.
    const t = tokenize(line, this.tokens, 12);
    if (t.length === 0) return;
    if (t[0] === 'sl') return; // header
    if (t.length < 12 || !t[0]!.endsWith(':')) {
      this.sink.error(t.length < 12 ? 'truncated line' : 'unrecognised line', line);
      return;
    }
    const localTok = t[1]!;
    const remoteTok = t[2]!;
    const stTok = t[3]!;
    const local = splitColon(localTok);
    const remote = splitColon(remoteTok);
    const st = hexValue(stTok, 2);
    const txrx = splitColon(t[4]!);
    const trwhen = splitColon(t[5]!);
    if (local === undefined || remote === undefined || txrx === undefined || trwhen === undefined || st === undefined) {
      this.sink.error('malformed field', line);
      return;
    }
    if (local[0].length !== this.addrDigits || remote[0].length !== this.addrDigits) {
      this.sink.error(`address is not ${this.addrDigits} hex digits`, line);
      return;
    }
    const localAddress = decodeProcAddress(local[0], this.family);
    const remoteAddress = decodeProcAddress(remote[0], this.family);
    const localPort = hexValue(local[1], 4);
    const remotePort = hexValue(remote[1], 4);
    const sendQueue = hexValue(txrx[0], 8);
    const recvQueue = hexValue(txrx[1], 8);
    const tr = hexValue(trwhen[0], 2);
    // Kernels <= 3.6 print an overdue timer as a wrapped value wider than 8 digits.
    const when = hexValue(trwhen[1], 16);
    const retrnsmt = hexValue(t[6]!, 8);
    const probes = parseCount(t[8]!);
    const inode = parseCount(t[9]!);
    if (
      localAddress === undefined ||
      remoteAddress === undefined ||
      localPort === undefined ||
      remotePort === undefined ||
      sendQueue === undefined ||
      recvQueue === undefined ||
      tr === undefined ||
      when === undefined ||
      retrnsmt === undefined ||
      probes === undefined ||
      inode === undefined
    ) {
      this.sink.error('malformed field', line);
      return;
    }
    const state = STATE_CODES[st];
    if (state === undefined) {
      // 0x0C (NEW_SYN_RECV, never printed) and 0x0D (BOUND_INACTIVE): real, but no label value.
      if (isUnlabelledState(st)) return;
      this.sink.error('unknown state code', line);
      return;
    }
    // The (hashed) kernel pointer identifies the socket; its low 48 bits make a compact numeric key.
    // When kptr_restrict zeroes it, fall back to the 4-tuple, state and inode: sockets sharing a
    // tuple and state (SO_REUSEPORT listeners, sockets bound to one port) have an inode each, and
    // the sockets without one (TIME-WAIT, orphans, SYN-RECV) are alone on their 4-tuple.
    const ptr = t[11]!;
    const tupleKey = `${localTok} ${remoteTok} ${stTok} ${inode}`;
    const key = ptr.length >= 12 && !/^0+$/.test(ptr) ? (hexValue(ptr.slice(-12), 12) ?? tupleKey) : tupleKey;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    const timer = tr < TIMER_CODES.length ? TIMER_CODES[tr] : undefined;
    let timerSeconds = timer === undefined ? 0 : when / USER_HZ;
    if (timerSeconds > TIMER_WRAP_SECONDS) timerSeconds = 0;
    // One record object, refilled for every line (ParseSink: a sink that keeps it must copy it).
    const r = this.record;
    r.state = state;
    r.localAddress = localAddress;
    r.localPort = localPort;
    r.remoteAddress = remoteAddress;
    r.remotePort = remotePort;
    r.recvQueue = recvQueue;
    r.sendQueue = sendQueue;
    r.timer = timer;
    r.timerSeconds = timerSeconds;
    // The retransmit timer counts in `retrnsmt`; persist and keepalive in `timeout` (probes).
    r.timerCount = timer === undefined ? 0 : timer === 'retransmit' ? retrnsmt : probes;
    r.inode = inode;
    // The socket's kernel address, hashed by %pK; all zeros when kptr_restrict hides it.
    r.identity = typeof key === 'number' ? ptr : undefined;
    this.sink.record(r);
  }

  end(): void {
    this.seen.clear();
  }
}
