// Peers of FIN-WAIT-1 sockets: who holds the most unacknowledged bytes, per address (counted by a
// poll that asks for it: the one-shot report) and per network (every poll). Capped so a huge
// table stays bounded.

import ipaddr from 'ipaddr.js';
import type { SocketRecord } from '../model.ts';
import { ipv6Text } from '../parsers/kernel-codes.ts';

export interface PeerFigures {
  peer: string;
  sockets: number;
  bytes: number;
  /** The local port of the first socket seen to this peer. */
  port: number;
}

export interface Peers {
  /** The peers holding the most bytes, most first (counted when asked: the report; empty otherwise). */
  readonly top: readonly PeerFigures[];
  /** FIN-WAIT-1 sockets to peers beyond the cap (not counted per peer). */
  readonly overflow: number;
  /** Per peer network (every poll). */
  readonly networks: PeerNetworks;
  /** Send-Q of every FIN-WAIT-1 socket, ascending, for exact order statistics (counted with the addresses: the report; empty otherwise). */
  readonly sendQueues: Float64Array;
}

/** The nearest-rank q-quantile (rank ⌈q × n⌉) of ascending values; undefined when there are none. Pure. */
export function nearestRank(ascending: ArrayLike<number>, q: number): number | undefined {
  const n = ascending.length;
  if (n === 0) return undefined;
  return ascending[Math.min(n, Math.max(1, Math.ceil(q * n))) - 1];
}

/** FIN-WAIT-1 peers of one poll: per network always, per address when asked (the report). */
export class PeerCounter {
  static readonly MAX = 100_000;
  private readonly peers = new Map<string, { sockets: number; bytes: number; port: number }>();
  private overflow = 0;
  private readonly networks: PeerNetworkCounter;
  private readonly sendQueues: number[] = [];

  constructor(
    networks: PeerNetworkOptions = DEFAULT_PEER_NETWORKS,
    private readonly addresses = false,
    private readonly keep = 10,
  ) {
    this.networks = new PeerNetworkCounter(networks);
  }

  add(r: SocketRecord): void {
    if (r.state !== 'fin_wait1') return;
    this.networks.add(r);
    if (!this.addresses) return;
    this.sendQueues.push(r.sendQueue);
    let p = this.peers.get(r.remoteAddress);
    if (p === undefined) {
      if (this.peers.size >= PeerCounter.MAX) {
        this.overflow++;
        return;
      }
      p = { sockets: 0, bytes: 0, port: r.localPort };
      this.peers.set(r.remoteAddress, p);
    }
    p.sockets++;
    p.bytes += r.sendQueue;
  }

  result(): Peers {
    const top = [...this.peers.entries()]
      .map(([peer, v]) => ({ peer, ...v }))
      .sort((a, b) => b.bytes - a.bytes || b.sockets - a.sockets)
      .slice(0, this.keep);
    return Object.freeze({ top: Object.freeze(top), overflow: this.overflow, networks: this.networks.result(), sendQueues: Float64Array.from(this.sendQueues).sort() });
  }
}

// ---------------------------------------------------------------------------------------------
// Peer networks: FIN-WAIT-1 sockets and bytes per remote network (IPv4 /24, IPv6 /64 by default),
// counted by every poll for /sockets and the report; metric labels only when asked (--peers.metrics-top).

/** Prefix lengths the peers are grouped by (--peers.ipv4-prefix, --peers.ipv6-prefix). */
export interface PeerNetworkOptions {
  ipv4Prefix: number;
  ipv6Prefix: number;
  /** Networks listed on /sockets and in the report, most bytes first (--peers.top). */
  top: number;
  /** Networks exported as metric labels (--peers.metrics-top); 0: none (the default). */
  metricsTop: number;
}

export const DEFAULT_PEER_NETWORKS: PeerNetworkOptions = Object.freeze({ ipv4Prefix: 24, ipv6Prefix: 64, top: 10, metricsTop: 0 });

/** Most networks --peers.top lists, and most --peers.metrics-top exports as labels. */
export const MAX_PEER_TOP = 1000;
export const MAX_PEER_METRICS_TOP = 20;

/** Most distinct networks counted in one poll; sockets to further networks are counted as overflow. */
export const MAX_PEER_NETWORKS = 65_536;

export interface NetworkFigures {
  /** CIDR text, e.g. 127.1.2.0/24 or 2001:db8:1:2::/64 (an IPv4-mapped IPv6 peer counts in its IPv4 network). */
  network: string;
  sockets: number;
  /** Σ Send-Q (unacknowledged bytes + 1 per queued FIN), as tcpstate_send_queue_bytes counts it. */
  bytes: number;
}

export interface PeerNetworks {
  /** Grouping used: the prefix lengths. */
  readonly ipv4Prefix: number;
  readonly ipv6Prefix: number;
  /** Distinct networks seen (up to MAX_PEER_NETWORKS). */
  readonly networks: number;
  /** The networks holding the most bytes (then sockets, then by name), at most `top`. */
  readonly top: readonly NetworkFigures[];
  /** The first --peers.metrics-top of the same order: the networks exported as labels (empty by default). */
  readonly labelled: readonly NetworkFigures[];
  /** --peers.metrics-top: 0 when no network is a metric label. */
  readonly metricsTop: number;
  /** FIN-WAIT-1 sockets and bytes in all networks, the listed ones included. */
  readonly sockets: number;
  readonly bytes: number;
  /** Sockets whose network was not counted: beyond MAX_PEER_NETWORKS, or a peer address that is not an IP. */
  readonly uncounted: number;
}

/** 32-bit mask of the first `bits` bits. */
function mask32(bits: number): number {
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

/** Dotted-quad text → 32-bit number; undefined when it is not one. */
function parseIpv4(text: string): number | undefined {
  let value = 0;
  let octet = -1;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (octet < 0 || dots === 3) return undefined;
      value = value * 256 + octet;
      octet = -1;
      dots++;
    } else if (c >= 48 && c <= 57) {
      octet = octet < 0 ? c - 48 : octet * 10 + c - 48;
      if (octet > 255) return undefined;
    } else return undefined;
  }
  if (octet < 0 || dots !== 3) return undefined;
  return value * 256 + octet;
}

function ipv4Network(value: number, bits: number): string {
  const v = (value & mask32(bits)) >>> 0;
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}/${bits}`;
}

/**
 * The network of a peer address at the given prefix lengths, as CIDR text; undefined when the
 * text is no IP address. Pure. IPv4-mapped IPv6 (::ffff:a.b.c.d, dual-stack sockets) is grouped
 * as IPv4; an IPv6 zone (%eth0) or brackets are ignored.
 */
export function peerNetwork(address: string, ipv4Prefix: number, ipv6Prefix: number): string | undefined {
  const v4 = parseIpv4(address);
  if (v4 !== undefined) return ipv4Network(v4, ipv4Prefix);
  let text = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  if (!ipaddr.IPv6.isValid(text)) return undefined;
  const ip = ipaddr.IPv6.parse(text);
  if (ip.isIPv4MappedAddress()) return ipv4Network(parseIpv4(ip.toIPv4Address().toString())!, ipv4Prefix);
  const bytes = ip.toByteArray();
  for (let i = 0; i < 16; i++) {
    const keep = Math.min(8, Math.max(0, ipv6Prefix - i * 8));
    bytes[i]! &= keep === 8 ? 0xff : (0xff << (8 - keep)) & 0xff;
  }
  return `${ipv6Text(bytes)}/${ipv6Prefix}`;
}

/** Orders networks: most bytes, then most sockets, then by name (a stable answer for equal figures). */
export function byBytes(a: NetworkFigures, b: NetworkFigures): number {
  return b.bytes - a.bytes || b.sockets - a.sockets || (a.network < b.network ? -1 : a.network > b.network ? 1 : 0);
}

/** Counts FIN-WAIT-1 sockets per peer network during a poll, within MAX_PEER_NETWORKS networks. */
export class PeerNetworkCounter {
  private readonly byNetwork = new Map<string, { sockets: number; bytes: number }>();
  /** IPv4 peers: masked 32-bit value → network text (no string built per socket for a known network). */
  private readonly v4Text = new Map<number, string>();
  private sockets = 0;
  private bytes = 0;
  private uncounted = 0;
  private readonly v4Mask: number;

  constructor(private readonly options: PeerNetworkOptions = DEFAULT_PEER_NETWORKS) {
    this.v4Mask = mask32(options.ipv4Prefix);
  }

  add(r: SocketRecord): void {
    if (r.state !== 'fin_wait1') return;
    this.sockets++;
    this.bytes += r.sendQueue;
    let network: string | undefined;
    const v4 = parseIpv4(r.remoteAddress);
    if (v4 !== undefined) {
      const key = (v4 & this.v4Mask) >>> 0;
      network = this.v4Text.get(key);
      if (network === undefined) {
        network = ipv4Network(key, this.options.ipv4Prefix);
        if (this.v4Text.size < MAX_PEER_NETWORKS) this.v4Text.set(key, network);
      }
    } else network = peerNetwork(r.remoteAddress, this.options.ipv4Prefix, this.options.ipv6Prefix);
    if (network === undefined) {
      this.uncounted++;
      return;
    }
    let f = this.byNetwork.get(network);
    if (f === undefined) {
      if (this.byNetwork.size >= MAX_PEER_NETWORKS) {
        this.uncounted++;
        return;
      }
      f = { sockets: 0, bytes: 0 };
      this.byNetwork.set(network, f);
    }
    f.sockets++;
    f.bytes += r.sendQueue;
  }

  result(): PeerNetworks {
    return summarizeNetworks(this.byNetwork, this.options, this.sockets, this.bytes, this.uncounted);
  }
}

/** The bounded summary of per-network counts: top `options.top` by bytes. Pure. */
export function summarizeNetworks(
  byNetwork: ReadonlyMap<string, { sockets: number; bytes: number }>,
  options: PeerNetworkOptions,
  sockets: number,
  bytes: number,
  uncounted: number,
): PeerNetworks {
  const all: NetworkFigures[] = [];
  for (const [network, f] of byNetwork) all.push({ network, sockets: f.sockets, bytes: f.bytes });
  all.sort(byBytes);
  const head = all.slice(0, Math.max(options.top, options.metricsTop)).map((x) => Object.freeze(x));
  return Object.freeze({
    ipv4Prefix: options.ipv4Prefix,
    ipv6Prefix: options.ipv6Prefix,
    networks: byNetwork.size,
    top: Object.freeze(head.slice(0, options.top)),
    labelled: Object.freeze(head.slice(0, options.metricsTop)),
    metricsTop: options.metricsTop,
    sockets,
    bytes,
    uncounted,
  });
}
