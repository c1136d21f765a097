// Peers of FIN-WAIT-1 sockets: who holds the most unacknowledged bytes. Counted by a poll that
// asks for it (the one-shot report), capped so a huge table stays bounded.

import type { SocketRecord } from '../model.ts';

export interface PeerFigures {
  peer: string;
  sockets: number;
  bytes: number;
  /** The local port of the first socket seen to this peer. */
  port: number;
}

export interface Peers {
  /** The peers holding the most bytes, most first. */
  readonly top: readonly PeerFigures[];
  /** FIN-WAIT-1 sockets to peers beyond the cap (not counted per peer). */
  readonly overflow: number;
}

export class PeerCounter {
  static readonly MAX = 100_000;
  private readonly peers = new Map<string, { sockets: number; bytes: number; port: number }>();
  private overflow = 0;

  constructor(private readonly keep = 10) {}

  add(r: SocketRecord): void {
    if (r.state !== 'fin_wait1') return;
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
    return Object.freeze({ top: Object.freeze(top), overflow: this.overflow });
  }
}
