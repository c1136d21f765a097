// Streaming parser for `ss -t…` text output, from iproute2 2.6.33 (RHEL/CentOS 6) to 7.x.
// It is fed one line at a time and never holds more than the socket it is completing
// (a `-m`/`-i` continuation line belongs to the socket line before it).
//
// Format facts it relies on (docs/kernel-and-ss.md#ss):
// - header `[Netid] [State] Recv-Q Send-Q Local Address:Port Peer Address:Port [Process]`, or
//   none with -H; the State column is absent when the capture was filtered to one state;
// - `-m`/`-i` details go on a continuation line starting with a tab unless -O was given;
// - addresses: `*:22`, `:::22`, `::ffff:1.2.3.4:80` (<= 4.12), `0.0.0.0:22`, `*:22` (dual-stack
//   IPv6), `[::]:22`, `[::ffff:1.2.3.4]:80` (>= 4.14), `addr%ifname:port` (>= 3.14);
//   split at the last colon; a bare `*` is classified by the capture's other lines (held until
//   one shows the generation, never more than the `*` sockets before it);
// - extras in any order: `timer:(…)`, `users:((…))`, `uid:`, `ino:`, `sk:`, `cgroup:`, `v6only:`,
//   shutdown markers, `mem:(r,w,f,t)` / `skmem:(r,rb,t,tb,f,w,o[,bl][,d])`, `backoff:N` (-i).

import { isIP } from 'node:net';
import { clearRecord, emptyRecord, type Family, type ParseSink, type SocketRecord, type TcpState } from '../model.ts';
import { parseCount, tokenize } from './tokens.ts';
import { parseSsTimer } from './ss-timer.ts';

/** ss state names (iproute2 sock_state_print()) → our label values. */
const SS_STATES: Readonly<Record<string, TcpState>> = {
  ESTAB: 'established',
  'SYN-SENT': 'syn_sent',
  'SYN-RECV': 'syn_recv',
  'FIN-WAIT-1': 'fin_wait1',
  'FIN-WAIT-2': 'fin_wait2',
  'TIME-WAIT': 'time_wait',
  UNCONN: 'close',
  'CLOSE-WAIT': 'close_wait',
  'LAST-ACK': 'last_ack',
  LISTEN: 'listen',
  CLOSING: 'closing',
};

/**
 * A state as a user may spell it: our label value (fin_wait1), ss's filter name (fin-wait-1,
 * syn-rcv) or ss's column (FIN-WAIT-1, ESTAB); undefined when it is none of these.
 */
export function stateFromUserName(name: string): TcpState | undefined {
  const lower = name.toLowerCase();
  if (Object.hasOwn(STATE_FILTER_NAMES, lower)) return STATE_FILTER_NAMES[lower];
  const upper = name.toUpperCase();
  if (Object.hasOwn(SS_STATES, upper)) return SS_STATES[upper];
  return undefined;
}

/** States ss can print that have no label value: the kernel-internal 0x0C and newer pseudo-states. */
const SS_IGNORED_STATES = new Set(['UNDEF', 'UNKNOWN', 'BOUND-INACTIVE']);

/** ss filter names (`ss state NAME`) and our label values, for captures without a State column. */
const STATE_FILTER_NAMES: Readonly<Record<string, TcpState>> = {
  established: 'established',
  'syn-sent': 'syn_sent',
  'syn-recv': 'syn_recv',
  'syn-rcv': 'syn_recv',
  'fin-wait-1': 'fin_wait1',
  'fin-wait-2': 'fin_wait2',
  'time-wait': 'time_wait',
  closed: 'close',
  close: 'close',
  unconnected: 'close',
  'close-wait': 'close_wait',
  'last-ack': 'last_ack',
  listening: 'listen',
  listen: 'listen',
  closing: 'closing',
  syn_sent: 'syn_sent',
  syn_recv: 'syn_recv',
  fin_wait1: 'fin_wait1',
  fin_wait2: 'fin_wait2',
  time_wait: 'time_wait',
  close_wait: 'close_wait',
  last_ack: 'last_ack',
};

/** Accepts an ss state filter name or a label value; undefined when unknown. */
export function stateFromName(name: string): TcpState | undefined {
  return Object.hasOwn(STATE_FILTER_NAMES, name) ? STATE_FILTER_NAMES[name] : undefined;
}

const HEADER_FIRST = new Set(['State', 'Netid', 'Recv-Q']);
/**
 * What a continuation line (-m, -i) can hold that we use. `mss:` last: it only marks that tcp_info
 * was printed, which fills in what ss leaves out (see detail()).
 */
const DETAIL_KEYS = ['skmem:(', 'mem:(', 'backoff:', 'rto:', 'lastsnd:', 'mss:'];
const NETIDS = new Set(['tcp', 'tcp6']);

export interface SsParserOptions {
  /** State of every socket in a capture filtered to one state (`ss state fin-wait-1`), which has no State column. */
  state?: TcpState;
}

interface Endpoint {
  host: string;
  port: number;
}

/** `host:port` with the forms listed at the top of this file; undefined if malformed. */
export function parseSsEndpoint(text: string): Endpoint | undefined {
  const e: Endpoint = { host: '', port: 0 };
  return endpointInto(text, e) ? e : undefined;
}

/** parseSsEndpoint() into `out` (the streaming parser reuses two); false if malformed. */
function endpointInto(text: string, out: Endpoint): boolean {
  const colon = text.lastIndexOf(':');
  if (colon <= 0 || colon === text.length - 1) return false;
  let port = portAt(text, colon + 1);
  // Without -n ports are service names (or `*`); the socket still counts, its port is unknown (0).
  if (port === undefined) port = 0;
  else if (port > 65535) return false;
  // The same host as the endpoint before (a server's own address, a busy peer): already checked.
  if (colon === out.host.length && out.host !== '' && text.startsWith(out.host)) {
    out.port = port;
    return true;
  }
  let host = text.slice(0, colon);
  const pct = host.indexOf('%');
  if (pct >= 0) host = host.slice(0, pct);
  if (host.charCodeAt(0) === 91 /* [ */) {
    if (host.charCodeAt(host.length - 1) !== 93 /* ] */) return false;
    host = host.slice(1, -1);
  }
  // The dotted quad first: most sockets are IPv4, and node's isIP() allocates a match per call.
  if (host !== '*' && !isDottedQuad(host) && isIP(host) === 0 && !HOST_NAME.test(host)) return false;
  out.host = host;
  out.port = port;
  return true;
}

/** The decimal number from `from` to the end of `text` (parseCount() without the copy); undefined if it is none. */
function portAt(text: string, from: number): number | undefined {
  const n = text.length;
  if (n === from || n - from > 15) return undefined;
  let v = 0;
  for (let i = from; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return undefined;
    v = v * 10 + c - 48;
  }
  return v;
}

/** An IPv4 address as isIP() accepts it: four decimal octets, 0-255, no leading zeros. */
export function isDottedQuad(text: string): boolean {
  let octets = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const start = i;
    let value = 0;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c < 48 || c > 57) break;
      value = value * 10 + c - 48;
      i++;
    }
    const digits = i - start;
    if (digits === 0 || digits > 3 || value > 255 || (digits > 1 && text.charCodeAt(start) === 48)) return false;
    if (++octets === 4) return i === n;
    if (i === n || text.charCodeAt(i) !== 46 /* . */) return false;
    i++;
  }
  return false;
}

/**
 * A host name as ss prints it without -n (letters, digits, '.', '-', '_'; not all digits and dots,
 * which would be a broken IPv4 address). Anything else (quotes, '$', spaces, escape sequences) is
 * not an address, whatever a crafted capture claims: `report` prints endpoints.
 */
const HOST_NAME = /^(?![\d.]+$)[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}$/;

function parenInner(token: string, prefixLength: number): string | undefined {
  if (token.charCodeAt(prefixLength) !== 40 /* ( */ || !token.endsWith(')')) return undefined;
  return token.slice(prefixLength + 1, -1);
}

/** `w` of `mem:(r,w,f,t)` or `skmem:(r,rb,t,tb,f,w,o…)`: sk_wmem_queued. */
function wmemFrom(inner: string): number | undefined {
  for (const item of inner.split(',')) {
    if (item.length > 1 && item.charCodeAt(0) === 119 /* w */) {
      const v = parseCount(item.slice(1));
      if (v !== undefined) return v;
    }
  }
  return undefined;
}

export class SsParser {
  private readonly tokens: string[] = [];
  private pending: SocketRecord | undefined;
  /** Whether `pending` has a bare `*` host and no v6only: its family depends on the ss generation. */
  private pendingStar = false;
  /**
   * The address forms of the capture: `modern` (iproute2 >= 4.14: `0.0.0.0`, `[::1]`; a bare `*`
   * is a dual-stack IPv6 socket) or `old` (`*` is the IPv4 wildcard, IPv6 is `:::22`); undefined
   * until a line shows which.
   */
  private generation: 'modern' | 'old' | undefined;
  /** `*` sockets met before the generation was known: delivered once it is (at the latest at end()). */
  private held: SocketRecord[] = [];
  /**
   * The record last delivered, reused for the next socket (sinks copy what they keep, see
   * ParseSink), and the two endpoints of the line being parsed: a table of a million sockets, or
   * an ss that writes without end, then allocates little more than its text.
   */
  private spare: SocketRecord | undefined;
  private readonly local: Endpoint = { host: '', port: 0 };
  private readonly remote: Endpoint = { host: '', port: 0 };

  constructor(
    private readonly sink: ParseSink,
    private readonly options: SsParserOptions = {},
  ) {}

  line(line: string): void {
    if (line.charCodeAt(0) === 9 /* \t */) {
      this.continuation(line);
      return;
    }
    this.flush();
    const t = tokenize(line, this.tokens);
    if (t.length === 0) return;
    let i = 0;
    if (HEADER_FIRST.has(t[0]!)) return;
    if (NETIDS.has(t[0]!)) i++;
    else if (t.length > 1 && SS_STATES[t[1]!] !== undefined) {
      this.sink.error('not a TCP socket line', line);
      return;
    }
    let state: TcpState | undefined;
    const first = t[i];
    if (first !== undefined && Object.hasOwn(SS_STATES, first)) {
      state = SS_STATES[first];
      i++;
    } else if (first !== undefined && SS_IGNORED_STATES.has(first)) {
      return;
    } else if (first !== undefined && parseCount(first) !== undefined) {
      state = this.options.state;
      if (state === undefined) {
        this.sink.error('line without a State column (capture filtered to one state?): give the state', line);
        return;
      }
    } else {
      this.sink.error('unrecognised line', line);
      return;
    }
    if (t.length < i + 4) {
      this.sink.error('truncated line', line);
      return;
    }
    const recvQueue = parseCount(t[i]!);
    const sendQueue = parseCount(t[i + 1]!);
    if (recvQueue === undefined || sendQueue === undefined) {
      this.sink.error('Recv-Q/Send-Q not numbers', line);
      return;
    }
    const { local, remote } = this;
    if (!endpointInto(t[i + 2]!, local) || !endpointInto(t[i + 3]!, remote)) {
      this.sink.error('malformed address', line);
      return;
    }
    const record = this.spare === undefined ? emptyRecord('ipv4', state!) : clearRecord(this.spare, 'ipv4', state!);
    this.spare = undefined;
    record.localAddress = local.host;
    record.localPort = local.port;
    record.remoteAddress = remote.host;
    record.remotePort = remote.port;
    record.recvQueue = recvQueue;
    record.sendQueue = sendQueue;
    let v6only = false;
    for (let k = i + 4; k < t.length; k++) {
      const tok = t[k]!;
      if (tok.startsWith('users:(')) {
        // Process names may contain spaces: skip to the token that closes the list.
        while (!t[k]!.endsWith('))') && k + 1 < t.length) k++;
      } else if (!this.extra(record, tok, line)) {
        this.spare = record;
        return;
      } else if (tok.startsWith('v6only:')) {
        v6only = true;
      }
    }
    if (this.generation === undefined) this.learnGeneration(t[i + 2]!, local.host, remote.host);
    this.pendingStar = local.host === '*' && !v6only;
    record.family = familyOf(local.host, v6only || this.generation === 'modern');
    this.pending = record;
  }

  /** Handles one extra token; false (after reporting) when it is malformed. */
  private extra(r: SocketRecord, tok: string, line: string): boolean {
    if (tok.startsWith('timer:')) {
      const inner = parenInner(tok, 6);
      const timer = inner === undefined ? undefined : parseSsTimer(inner);
      if (timer === undefined) {
        this.sink.error('malformed timer', line);
        return false;
      }
      r.timer = timer.kind;
      r.timerSeconds = timer.kind === undefined ? 0 : timer.seconds;
      r.timerCount = timer.kind === undefined ? 0 : timer.count;
    } else if (tok.startsWith('sk:')) {
      r.identity = ssCookie(tok.slice(3));
    } else if (tok.startsWith('ino:')) {
      const ino = parseCount(tok.slice(4));
      if (ino === undefined) {
        this.sink.error('malformed inode', line);
        return false;
      }
      r.inode = ino;
    } else {
      this.detail(r, tok);
    }
    return true;
  }

  /** Memory and `-i` details, which may sit on the socket line (-O) or a continuation line. */
  private detail(r: SocketRecord, tok: string): void {
    if (tok.startsWith('skmem:')) {
      const inner = parenInner(tok, 6);
      if (inner !== undefined) r.wmemQueued = wmemFrom(inner);
    } else if (tok.startsWith('mem:')) {
      const inner = parenInner(tok, 4);
      if (inner !== undefined) r.wmemQueued = wmemFrom(inner);
    } else if (tok.startsWith('backoff:')) {
      r.backoff = parseCount(tok.slice(8));
    } else if (tok.startsWith('rto:')) {
      // %g of tcpi_rto / 1000: milliseconds, fractional when HZ does not divide 1000.
      const ms = Number(tok.slice(4));
      if (tok.length > 4 && Number.isFinite(ms) && ms >= 0) r.rtoSeconds = ms / 1000;
    } else if (tok.startsWith('lastsnd:')) {
      const ms = parseCount(tok.slice(8));
      if (ms !== undefined) r.lastDataSentSeconds = ms / 1000;
    } else if (tok.startsWith('mss:')) {
      // tcp_info was printed (tcpi_snd_mss is never 0 on a connected socket). ss leaves out what
      // has its default (tcp_show_info()): backoff 0, lastsnd 0, and an RTO of exactly 3 s.
      r.backoff ??= 0;
      r.rtoSeconds ??= 3;
      r.lastDataSentSeconds ??= 0;
    }
  }

  private continuation(line: string): void {
    const r = this.pending;
    if (r === undefined) {
      if (line.trim() !== '') this.sink.error('continuation line without a socket line', line);
      return;
    }
    // -i lines carry ~40 fields; only skmem/mem and backoff matter: find them, don't tokenize all.
    for (const key of DETAIL_KEYS) {
      const at = line.indexOf(key);
      if (at < 0 || (at > 0 && line.charCodeAt(at - 1) !== 32 && line.charCodeAt(at - 1) !== 9)) continue;
      let end = line.indexOf(' ', at);
      if (end < 0) end = line.length;
      this.detail(r, line.slice(at, end));
    }
  }

  /** Which address forms this line shows, if any. */
  private learnGeneration(localText: string, local: string, remote: string): void {
    if (localText.charCodeAt(0) === 91 /* [ */ || local === '0.0.0.0' || remote === '0.0.0.0') this.generation = 'modern';
    // Unbracketed IPv6 (`:::22`, `::ffff:1.2.3.4:80`), or an IPv4 socket whose any-peer is `*`.
    else if (local.includes(':') || (local !== '*' && remote === '*')) this.generation = 'old';
    else return;
    for (const r of this.held) {
      r.family = familyOf('*', this.generation === 'modern');
      this.sink.record(r);
    }
    this.held = [];
  }

  private flush(): void {
    if (this.pending !== undefined) {
      const r = this.pending;
      this.pending = undefined;
      if (this.pendingStar && this.generation === undefined) this.held.push(r);
      else {
        this.sink.record(r);
        this.spare = r;
      }
    }
  }

  /** Call at end of input: delivers the last socket (and `*` sockets of a capture that never showed its generation, as IPv4). */
  end(): void {
    this.flush();
    for (const r of this.held) this.sink.record(r);
    this.held = [];
  }
}

function familyOf(host: string, starIsIpv6: boolean): Family {
  if (host === '*') return starIsIpv6 ? 'ipv6' : 'ipv4';
  return host.includes(':') ? 'ipv6' : 'ipv4';
}

/**
 * `sk:` is the cookie in hex (%llx; %08x%08x in old ss). Below 2^53 it is a generated cookie and
 * becomes a number; a kernel address (the cookie before Linux 4.1) stays text: see cookieIdentity().
 */
function ssCookie(hex: string): number | string {
  let i = 0;
  while (i < hex.length - 1 && hex.charCodeAt(i) === 48) i++;
  const digits = hex.length - i;
  if (digits > 13) return hex;
  const n = Number(`0x${hex.slice(i)}`);
  return Number.isNaN(n) ? hex : n;
}
