// The plain-words report: what the socket table shows, what it means in kernel terms, what to do.

import { isIP } from 'node:net';
import type { Distribution } from '../aggregate/buckets.ts';
import { TCP_RTO_MAX_SECONDS, cappedSockets } from '../aggregate/forensics.ts';
import { FAMILIES, TCP_STATES, type TcpState } from '../model.ts';
import { nearestRank } from '../aggregate/peers.ts';
import { ownersOfListeners } from '../sources/owners.ts';
import { netnsRows, reportTable, timersShown, type ReportData } from './data.ts';

const n = (x: number) => x.toLocaleString('en-US');

function bytes(x: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = x;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${x} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** "≤ bound" label of the bucket holding the q-quantile (a bucket's upper bound, as Prometheus would say). */
function quantileBound(d: Distribution, q: number): string {
  if (d.count === 0) return '-';
  const rank = q * d.count;
  for (let i = 0; i < d.bounds.length; i++) if (d.cumulative[i]! >= rank) return `≤ ${d.bounds[i]}`;
  return `> ${d.bounds[d.bounds.length - 1]}`;
}

export function explain(d: ReportData): string {
  const s = d.snapshot;
  // With --netns, every namespace read, summed (the per-namespace rows follow below).
  const table = reportTable(s);
  const out: string[] = [];
  const sum = (st: TcpState, pick: (f: NonNullable<(typeof table)['ipv4']>[TcpState]) => number) =>
    FAMILIES.reduce((a, f) => a + (table[f] ? pick(table[f][st]) : 0), 0);
  const total = TCP_STATES.reduce((a, st) => a + sum(st, (f) => f.sockets), 0);

  out.push(`tcpstate-exporter report: ${d.source}`);
  const when = new Date(d.takenAt.ms).toISOString();
  out.push(
    d.takenAt.kind === 'live'
      ? `Taken: ${when} (live poll).`
      : d.takenAt.kind === 'capture'
        ? `Taken: ${when} (the input file's modification time; the capture's, if the copy kept it).`
        : `Taken: unknown (standard input); read at ${when}.`,
  );
  const listenerOwners = d.owners === undefined ? undefined : ownersOfListeners(s.forensics, d.owners);
  const ownersOf = (port: string) => {
    const l = listenerOwners?.listeners.find((x) => x.port === port);
    return l === undefined || l.owners === null ? '' : l.owners.length === 0 ? '  (listener: process not found)' : `  listener: ${l.owners.map((o) => `${o.comm} (pid ${o.pid})`).join(', ')}`;
  };
  const where = s.netns === undefined ? '' : ` in ${n(s.netns.selected - Object.values(s.netns.unreadable).reduce((a, b) => a + b, 0))} network namespaces`;
  out.push(`${n(total)} TCP sockets${where} (${FAMILIES.filter((f) => table[f]).map((f) => `${f} ${n(TCP_STATES.reduce((a, st) => a + table[f]![st].sockets, 0))}`).join(', ')}).`);
  const unread = s.netns === undefined ? [] : Object.entries(s.netns.unreadable).filter(([, c]) => c > 0);
  if (unread.length > 0) out.push(`Not read: ${unread.map(([why, c]) => `${n(c)} namespaces (${why})`).join(', ')}: their sockets are in no figure below.`);
  out.push('');
  out.push('  state          sockets    Send-Q bytes    Recv-Q bytes   orphans');
  for (const st of TCP_STATES) {
    const c = sum(st, (f) => f.sockets);
    if (c === 0) continue;
    const sq = st === 'listen' ? '-' : n(sum(st, (f) => f.sendQueueBytes));
    const rq = st === 'listen' ? '-' : n(sum(st, (f) => f.recvQueueBytes));
    out.push(`  ${st.padEnd(12)} ${n(c).padStart(9)} ${sq.padStart(15)} ${rq.padStart(15)} ${n(sum(st, (f) => f.orphanSockets)).padStart(9)}`);
  }
  out.push('');

  const fw1 = sum('fin_wait1', (f) => f.sockets);
  const fw1Bytes = sum('fin_wait1', (f) => f.sendQueueBytes);
  const f = s.forensics;
  if (fw1 === 0) {
    out.push('No socket is in FIN-WAIT-1: nothing is stuck behind closed connections.');
  } else {
    const orphans = sum('fin_wait1', (x) => x.orphanSockets);
    const persist = sum('fin_wait1', (x) => x.timers.persist);
    const retrans = sum('fin_wait1', (x) => x.timers.retransmit);
    const persistMax = Math.max(...FAMILIES.map((fam) => table[fam]?.fin_wait1.persistMaxSeconds ?? 0));
    out.push(`FIN-WAIT-1: ${n(fw1)} sockets hold ${bytes(fw1Bytes)} (${n(fw1Bytes)} bytes) their peers have not acknowledged.`);
    const unknown = sum('fin_wait1', (x) => x.inodeUnknown);
    if (unknown > 0) out.push(`  Orphans: unknown for ${n(unknown)} of them (the capture shows no ino:; take it with ss -e).`);
    if (orphans > 0 || unknown === 0) {
      out.push(`  ${n(orphans)} of them are orphans: the application already closed them; no process owns them any more.`);
    }
    if (timersShown(table)) {
      out.push(`  ${n(persist)} wait on a zero receive window (persist timer; longest wait until the next probe ${persistMax.toFixed(1)} s).`);
    } else {
      out.push('  Zero-window waits: unknown (the capture shows no timers; take it with ss -o).');
    }
    if (retrans > 0) out.push(`  ${n(retrans)} retransmit unacknowledged data (retransmit timer): peers unreachable or a lossy path.`);
    if (f !== undefined) {
      // Exact, from every socket's Send-Q (nearest rank), not a bucket bound.
      const sq = s.peers?.sendQueues;
      if (sq !== undefined && sq.length > 0) {
        out.push(`  Send-Q per socket: median ${n(nearestRank(sq, 0.5)!)} bytes, 99th percentile ${n(nearestRank(sq, 0.99)!)} bytes, largest ${n(sq[sq.length - 1]!)}.`);
      } else {
        out.push(`  Send-Q per socket: median ${quantileBound(f.sendQueue, 0.5)} bytes, 99th percentile ${quantileBound(f.sendQueue, 0.99)} bytes.`);
      }
      if (f.wmemQueued !== undefined) {
        out.push(`  Memory pinned by their write queues (skmem w): ${bytes(f.wmemQueued.sum)}, more than Send-Q because of buffer overhead.`);
      }
      if (f.backoff !== undefined) {
        // At the cap exactly: each socket's max(RTO, 200 ms) × 2^backoff against tcp_rto_max (docs/kernel-and-ss.md#backoff).
        const intervals = f.probeIntervals.fin_wait1;
        const cap = s.kernel.rtoMaxSeconds ?? TCP_RTO_MAX_SECONDS;
        const atCap = intervals === undefined ? 'how many at the cap: unknown (no RTO in the capture)' : `${n(cappedSockets(intervals, cap))} at the ${cap} s probe-interval cap (peers closed for minutes)`;
        out.push(`  Probe backoff: median ${quantileBound(f.backoff, 0.5)}; ${atCap}.`);
      }
      const ports = [...f.ports].filter(([, v]) => v.fin_wait1.sockets > 0).sort(([, a], [, b]) => b.fin_wait1.sendQueueBytes - a.fin_wait1.sendQueueBytes);
      if (ports.length > 0) {
        out.push('  By local port (server side; "other" = client sockets or ports beyond the top 10):');
        for (const [p, v] of ports.slice(0, 5)) out.push(`    ${p.padEnd(6)} ${n(v.fin_wait1.sockets).padStart(9)} sockets ${bytes(v.fin_wait1.sendQueueBytes).padStart(12)}${ownersOf(p)}`);
        if (listenerOwners !== undefined && listenerOwners.scan.denied > 0) {
          out.push(`    (${n(listenerOwners.scan.denied)} processes' descriptors not readable: another user's; run as root or with CAP_SYS_PTRACE to see all owners)`);
        }
      }
    }
    if (s.netns !== undefined) {
      out.push('  By network namespace (netns inode; "other" = beyond --netns.max):');
      out.push(`    ${'netns'.padEnd(11)} ${'sockets'.padStart(9)} ${'FIN-WAIT-1'.padStart(10)} ${'bytes'.padStart(12)}  who`);
      for (const r of netnsRows(s.netns).filter((x) => x.finWait1Sockets > 0 || x.netns !== 'other').slice(0, 10)) {
        const who = [r.name, r.podUid === '' ? '' : `pod ${r.podUid}`, r.pid === '' ? '' : `pid ${r.pid} (${r.comm})`].filter((x) => x !== '').join(', ');
        out.push(`    ${r.netns.padEnd(11)} ${n(r.sockets).padStart(9)} ${n(r.finWait1Sockets).padStart(10)} ${bytes(r.finWait1SendQueueBytes).padStart(12)}  ${who}`);
      }
    }
    const nets = s.peers?.networks;
    if (nets !== undefined && nets.top.length > 0) {
      out.push(`  Peer networks (IPv4 /${nets.ipv4Prefix}, IPv6 /${nets.ipv6Prefix}; ${n(nets.networks)} in all) holding the most:`);
      for (const x of nets.top) out.push(`    ${x.network.padEnd(40)} ${n(x.sockets).padStart(9)} sockets ${bytes(x.bytes).padStart(12)} (${n(x.bytes)} bytes)`);
    }
    const peers = s.peers?.top.slice(0, 5) ?? [];
    if (peers.length > 0) {
      out.push('  Peers holding the most:');
      for (const p of peers) out.push(`    ${p.peer.padEnd(40)} ${n(p.sockets).padStart(9)} sockets ${bytes(p.bytes).padStart(12)}`);
    }
    out.push('');
    out.push('What it means:');
    out.push('  Applications closed these connections while data was still queued. Linux enters FIN-WAIT-1 at once and');
    out.push('  queues the FIN behind the data (Send-Q counts it as +1). A peer that does not read advertises a zero');
    out.push('  window, so nothing moves: the kernel sends zero-window probes on a timer that doubles up to 120 s.');
    out.push('  tcp_fin_timeout does not apply: it only limits orphaned FIN-WAIT-2. With defaults (Linux >= 3.18) an');
    out.push('  orphan is aborted about 325 s after the window closed (tcp_orphan_retries: 0 means 8 probes at the');
    out.push('  cap while the peer is alive); kernels <= 3.17, or tcp_retries2 <= 8, can keep it forever. Until then');
    out.push('  it pins memory and an orphan slot; past tcp_max_orphans or tcp_mem max the kernel resets orphans.');
    out.push('What to do:');
    out.push('  Find why the peers above stop reading (overloaded clients, a proxy, slow networks) and bound what the');
    out.push('  application writes to them (send timeouts, TCP_USER_TIMEOUT, dropping dead clients). Raising');
    out.push('  tcp_max_orphans only buys time. To free memory now: ss -K state fin-wait-1 dst <peer>.');
    const worst = f?.top.fin_wait1?.bySendQueue[0];
    if (worst !== undefined) {
      const host = worst.peer.replace(/^\[/, '').replace(/\]?:\d+$/, '');
      const port = Number(worst.local.replace(/^.*:/, ''));
      // Only an IP literal goes into a command line, and it goes quoted.
      if (isIP(host) !== 0 && Number.isInteger(port)) {
        out.push(`Watch the worst peer (${worst.peer}, ${n(worst.sendQueue)} bytes queued${worst.netns === undefined ? '' : `, network namespace ${worst.netns}`}):`);
        // In another namespace the peer is only reachable from inside it: enter it through its process.
        const pid = worst.netns === undefined ? undefined : s.netns?.namespaces.find((x) => x.netns === worst.netns)?.info?.pid;
        const enter = worst.netns === undefined || pid === undefined || pid === '' || s.netns?.namespaces.find((x) => x.netns === worst.netns)?.own === true ? '' : `nsenter -t ${pid} -n `;
        out.push(`  ${enter}tcpdump -ni any ${shellQuote(`host ${host} and tcp port ${port}`)}`);
        out.push('  (look for "win 0" from the peer and the probes answering it)');
      }
    }
  }
  const k = s.kernel;
  if (k.orphans !== undefined && k.orphansLimit !== undefined) {
    out.push('');
    out.push(`Orphans host-wide: ${n(k.orphans)} of tcp_max_orphans ${n(k.orphansLimit)} (${((100 * k.orphans) / k.orphansLimit).toFixed(1)}%;`);
    out.push('  the kernel counts stalled orphans 2× or 4×, so trouble starts at 25-50% of the limit).');
  }
  if (k.memoryBytes !== undefined && k.memoryLimitBytes !== undefined) {
    out.push(`TCP memory host-wide: ${bytes(k.memoryBytes)}; tcp_mem pressure ${bytes(k.memoryLimitBytes.pressure)}, max ${bytes(k.memoryLimitBytes.max)}.`);
  }
  if (d.parseErrors > 0) out.push(`(${n(d.parseErrors)} unparsable lines were skipped${d.firstParseError ? `; first: ${d.firstParseError.reason}` : ''}.)`);
  return `${stripControl(out.join('\n'))}\n`;
}

/** One POSIX shell word: bare when it is plainly safe, else single-quoted. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_./:=@%+-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, "'\\''")}'`;
}

/**
 * Control characters (but newline), DEL, C1 controls and the bidirectional overrides become '?':
 * a crafted capture or file name must not drive the terminal the report is read on.
 */
export function stripControl(text: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g, '?');
}
