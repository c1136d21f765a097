// Streaming parser for netlink sock_diag answers: the bytes of an inet_diag dump as the kernel
// sent them (native/tcpstate-diag.c copies them unchanged). docs/kernel-and-ss.md#inet-diag.
//
//   nlmsghdr      len u32, type u16, flags u16, seq u32, pid u32              (16 bytes)
//   inet_diag_msg family u8, state u8, timer u8, retrans u8,
//                 id { sport be16, dport be16, src[16], dst[16], if u32, cookie[2] u32 },
//                 expires u32 (ms), rqueue u32, wqueue u32, uid u32, inode u32  (72 bytes)
//   rtattrs       len u16, type u16, payload, padded to 4 bytes
//
// Header and message integers are in host byte order, ports and addresses in network order.
// Nothing is converted to text but the two addresses (cached), and nothing is kept.

import { endianness } from 'node:os';
import { TIMER_WRAP_SECONDS, cookieIdentity, emptyRecord, type ParseSink, type SocketRecord, type TcpState } from '../model.ts';
import { STATE_CODES, TIMER_CODES, ipv4Text, ipv6Text, isUnlabelledState } from './kernel-codes.ts';

const NLMSG_HDRLEN = 16;
const NLMSG_NOOP = 1;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const SOCK_DIAG_BY_FAMILY = 20;
const INET_DIAG_MSG_LEN = 72;
const AF_INET = 2;
const AF_INET6 = 10;
const TCP_NEW_SYN_RECV = 0x0c;

/** Attribute types (enum of include/uapi/linux/inet_diag.h). */
const INET_DIAG_MEMINFO = 1;
const INET_DIAG_INFO = 2;
const INET_DIAG_SKMEMINFO = 7;
/**
 * Offsets inside those payloads: inet_diag_meminfo.idiag_wmem; struct tcp_info's tcpi_backoff (u8),
 * tcpi_rto (u32, µs) and tcpi_last_data_sent (u32, ms; include/uapi/linux/tcp.h, unchanged since
 * 2.6); mem[SK_MEMINFO_WMEM_QUEUED].
 */
const MEMINFO_WMEM = 4;
const TCP_INFO_BACKOFF = 4;
const TCP_INFO_RTO = 8;
const TCP_INFO_LAST_DATA_SENT = 44;
const SKMEMINFO_WMEM_QUEUED = 5 * 4;

/** Longest message larger than this is a corrupt stream, not a socket (a message is ~100-400 bytes). */
const MAX_MESSAGE = 1 << 20;
/** Bytes of a bad message quoted (hex) in the parse error. */
const QUOTED_BYTES = 48;

/** The helper's STATES mask for these states: bit n = state code n (SYN-RECV with NEW_SYN_RECV: request sockets). */
export function stateMask(states: readonly TcpState[]): number {
  let mask = 0;
  for (const state of states) {
    mask |= 1 << STATE_CODES.indexOf(state);
    if (state === 'syn_recv') mask |= 1 << TCP_NEW_SYN_RECV;
  }
  return mask;
}
/** Bit n-1 = attribute n, for the helper's EXT mask. */
export const EXT_BIT = {
  meminfo: 1 << (INET_DIAG_MEMINFO - 1),
  info: 1 << (INET_DIAG_INFO - 1),
  skmeminfo: 1 << (INET_DIAG_SKMEMINFO - 1),
} as const;

export interface InetDiagParserOptions {
  /** Byte order of the host that produced the bytes; default: this host's. */
  littleEndian?: boolean;
}

/** One dump stream (any number of dumps back to back): feed chunks as they arrive, then end(). */
export class InetDiagParser {
  private readonly record: SocketRecord = emptyRecord('ipv4', 'close');
  /** Byte order of the header and message integers. */
  private readonly le: boolean;
  /**
   * The bytes messages() is parsing, as a DataView: its reads compile to plain loads, where
   * Buffer's readUInt32LE() and friends check bounds and assemble bytes one by one (a few ms of
   * a poll's CPU at 150 000 sockets; docs/performance.md "Poll thread CPU").
   */
  private view: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));
  /** The start of a message whose end has not arrived yet. */
  private carry: Buffer | undefined;
  /** A header said something impossible: the message boundaries are lost for good. */
  private broken = false;
  /** Last addresses decoded, reused while the next socket has the same (loopback labs, one-IP servers). */
  private readonly v4Cache = new Map<number, string>();
  private readonly v6Last = Buffer.alloc(16);
  private v6LastText = '';
  /** Dumps ended: one NLMSG_DONE per completed dump, one NLMSG_ERROR per failed one. */
  dumpsCompleted = 0;
  /** Socket messages since the last end of a dump: more than 0 at the end of a stream = cut short. */
  socketsSinceDumpEnd = 0;
  /**
   * The errno of the first dump that ended with NLMSG_ERROR instead of NLMSG_DONE, e.g. EPERM or
   * ENOENT from tcpstate-diag when a network namespace could not be entered (docs/netns.md).
   */
  failedErrno: number | undefined;

  constructor(
    private readonly sink: ParseSink,
    options: InetDiagParserOptions = {},
  ) {
    this.le = options.littleEndian ?? endianness() === 'LE';
  }

  /** Parses the messages `chunk` completes; reads nothing of `chunk` after the call (it may be overwritten). */
  push(chunk: Buffer): void {
    if (this.broken || chunk.length === 0) return;
    let buf = chunk;
    let off = 0;
    const carry = this.carry;
    if (carry !== undefined) {
      this.carry = undefined;
      const need = carry.length >= 4 ? (this.le ? carry.readUInt32LE(0) : carry.readUInt32BE(0)) - carry.length : -1;
      if (need > 0 && need <= chunk.length) {
        // Complete the pending message with as few bytes copied as possible.
        this.messages(Buffer.concat([carry, chunk.subarray(0, need)]), 0);
        off = need;
      } else {
        buf = Buffer.concat([carry, chunk]);
      }
    }
    off = this.messages(buf, off);
    // The chunk may be a view of one buffer that the next read overwrites (the netlink source
    // reads its helper's output into a single reused buffer): a rest of it is copied.
    if (off < buf.length && !this.broken) this.carry = buf === chunk ? Buffer.from(buf.subarray(off)) : buf.subarray(off);
  }

  /** The stream ended: a partial message left over means the dump was cut short. */
  end(): void {
    if (this.carry !== undefined && !this.broken) {
      this.sink.error(`stream ends inside a message (${this.carry.length} bytes)`, hex(this.carry));
    }
    this.carry = undefined;
    this.v4Cache.clear();
  }

  /** Parses the whole messages in buf from off; returns where the first incomplete one starts. */
  private messages(buf: Buffer, off: number): number {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    while (buf.length - off >= NLMSG_HDRLEN) {
      const len = this.view.getUint32(off, this.le);
      if (len < NLMSG_HDRLEN || len > MAX_MESSAGE) {
        this.broken = true;
        this.sink.error(`impossible netlink message length ${len}: rest of the stream skipped`, hex(buf.subarray(off)));
        return buf.length;
      }
      if (buf.length - off < len) break;
      this.message(buf, off, len);
      off += Math.min((len + 3) & ~3, buf.length - off);
    }
    return off;
  }

  private message(buf: Buffer, off: number, len: number): void {
    const type = this.view.getUint16(off + 4, this.le);
    if (type === SOCK_DIAG_BY_FAMILY) {
      this.socketsSinceDumpEnd++;
      this.socket(buf, off, len);
      return;
    }
    if (type === NLMSG_DONE) {
      this.dumpsCompleted++;
      this.socketsSinceDumpEnd = 0;
      return;
    }
    if (type === NLMSG_NOOP) return;
    const quoted = hex(buf.subarray(off, off + len));
    if (type === NLMSG_ERROR && len >= NLMSG_HDRLEN + 4) {
      // A failed request: the dump it answers ends here, with no sockets. A source failure, not a
      // parse error (error 0 would be an acknowledgement, which a dump never asks for).
      const errno = -(this.view.getUint32(off + NLMSG_HDRLEN, this.le) | 0);
      if (errno > 0) {
        this.dumpsCompleted++;
        this.socketsSinceDumpEnd = 0;
        this.failedErrno ??= errno;
        return;
      }
      this.sink.error(`netlink error ${errno}`, quoted);
      return;
    }
    this.sink.error(`unexpected netlink message type ${type}`, quoted);
  }

  private socket(buf: Buffer, off: number, len: number): void {
    if (len < NLMSG_HDRLEN + INET_DIAG_MSG_LEN) {
      this.sink.error(`inet_diag message too short (${len} bytes)`, hex(buf.subarray(off, off + len)));
      return;
    }
    const m = off + NLMSG_HDRLEN;
    const familyCode = buf[m]!;
    const stateCode = buf[m + 1]!;
    const family = familyCode === AF_INET ? 'ipv4' : familyCode === AF_INET6 ? 'ipv6' : undefined;
    const state = STATE_CODES[stateCode];
    if (family === undefined || state === undefined) {
      if (family !== undefined && isUnlabelledState(stateCode)) return;
      const what = family === undefined ? `address family ${familyCode}` : `state code ${stateCode}`;
      this.sink.error(`unknown ${what}`, hex(buf.subarray(off, off + len)));
      return;
    }
    const timerCode = buf[m + 2]!;
    const timer = timerCode < TIMER_CODES.length ? TIMER_CODES[timerCode] : undefined;
    const view = this.view;
    const le = this.le;
    let timerSeconds = timer === undefined ? 0 : view.getUint32(m + 52, le) / 1000;
    // Kernels < 5.5 send an overdue timer as a wrapped negative number of ms (docs/kernel-and-ss.md#inet-diag).
    if (timerSeconds > TIMER_WRAP_SECONDS) timerSeconds = 0;
    const r = this.record;
    r.family = family;
    r.state = state;
    r.localPort = view.getUint16(m + 4);
    r.remotePort = view.getUint16(m + 6);
    r.localAddress = this.address(buf, m + 8, family === 'ipv4');
    r.remoteAddress = this.address(buf, m + 24, family === 'ipv4');
    r.timer = timer;
    r.timerSeconds = timerSeconds;
    // icsk_retransmits for the retransmit timer, icsk_probes_out for persist/keepalive (as ss shows).
    r.timerCount = timer === undefined ? 0 : buf[m + 3]!;
    r.recvQueue = view.getUint32(m + 56, le);
    r.sendQueue = view.getUint32(m + 60, le);
    r.inode = view.getUint32(m + 68, le);
    r.identity = cookieIdentity(view.getUint32(m + 48, le), view.getUint32(m + 44, le));
    r.wmemQueued = undefined;
    r.backoff = undefined;
    r.rtoSeconds = undefined;
    r.lastDataSentSeconds = undefined;
    if (len > NLMSG_HDRLEN + INET_DIAG_MSG_LEN && !this.attributes(buf, m + INET_DIAG_MSG_LEN, off + len)) {
      this.sink.error('malformed inet_diag attribute', hex(buf.subarray(off, off + len)));
      return;
    }
    this.sink.record(r);
  }

  /** Reads the attributes the record uses into it; false when one overruns its message. */
  private attributes(buf: Buffer, start: number, end: number): boolean {
    const r = this.record;
    const view = this.view;
    const le = this.le;
    let meminfoWmem: number | undefined;
    let a = start;
    while (end - a >= 4) {
      const alen = view.getUint16(a, le);
      const type = view.getUint16(a + 2, le) & 0x3fff; // without NLA_F_NESTED / NLA_F_NET_BYTEORDER
      if (alen < 4 || a + alen > end) return false;
      const p = a + 4;
      const plen = alen - 4;
      if (type === INET_DIAG_SKMEMINFO && plen >= SKMEMINFO_WMEM_QUEUED + 4) r.wmemQueued = view.getUint32(p + SKMEMINFO_WMEM_QUEUED, le);
      else if (type === INET_DIAG_MEMINFO && plen >= MEMINFO_WMEM + 4) meminfoWmem = view.getUint32(p + MEMINFO_WMEM, le);
      else if (type === INET_DIAG_INFO && plen > TCP_INFO_BACKOFF) {
        r.backoff = buf[p + TCP_INFO_BACKOFF];
        if (plen >= TCP_INFO_RTO + 4) r.rtoSeconds = view.getUint32(p + TCP_INFO_RTO, le) / 1e6;
        if (plen >= TCP_INFO_LAST_DATA_SENT + 4) r.lastDataSentSeconds = view.getUint32(p + TCP_INFO_LAST_DATA_SENT, le) / 1000;
      }
      a += (alen + 3) & ~3;
    }
    // The old MEMINFO carries the same sk_wmem_queued when SKMEMINFO was not asked for.
    r.wmemQueued ??= meminfoWmem;
    return true;
  }

  private address(buf: Buffer, at: number, v4: boolean): string {
    if (v4) {
      const key = this.view.getUint32(at);
      let text = this.v4Cache.get(key);
      if (text === undefined) {
        if (this.v4Cache.size >= 4096) this.v4Cache.clear();
        text = ipv4Text(buf[at]!, buf[at + 1]!, buf[at + 2]!, buf[at + 3]!);
        this.v4Cache.set(key, text);
      }
      return text;
    }
    const bytes = buf.subarray(at, at + 16);
    if (this.v6LastText === '' || !bytes.equals(this.v6Last)) {
      bytes.copy(this.v6Last);
      this.v6LastText = ipv6Text(bytes);
    }
    return this.v6LastText;
  }
}

function hex(b: Buffer): string {
  return b.subarray(0, QUOTED_BYTES).toString('hex') + (b.length > QUOTED_BYTES ? '…' : '');
}
