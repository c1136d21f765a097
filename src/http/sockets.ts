// GET /sockets: the worst sockets of the latest poll (kept as a bounded top N per state while
// streaming, never a list of all sockets), as JSON, or as an HTML table for browsers.
// Peer addresses appear here, never in metric labels. Beside the sockets: the peer networks of
// FIN-WAIT-1 (counted by every poll) and the processes owning the listeners and the sockets listed
// (looked up on demand, once per poll at most, bounded: sources/owners.ts).

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { SocketSample } from '../aggregate/forensics.ts';
import type { PeerNetworks } from '../aggregate/peers.ts';
import { TCP_STATES, type TcpState } from '../model.ts';
import { stateFromUserName } from '../parsers/ss.ts';
import type { Snapshot, SnapshotView } from '../snapshot.ts';
import { ownedInodes, ownersOfListeners, type ListenerOwners, type Owner, type OwnerLookup } from '../sources/owners.ts';

export interface SocketsOptions {
  /** Finds the processes holding these socket inodes (sources/owners.ts over --path.procfs); without it no owners are shown. */
  findOwners?: (inodes: ReadonlySet<number>) => Promise<OwnerLookup>;
}

/** A listed socket with its owners: null for an orphan or when the source shows no inode; [] when not found. */
type ListedSocket = SocketSample & { owners: readonly Owner[] | null };

interface Query {
  sort?: 'send_queue' | 'age';
  state?: TcpState;
  port?: string;
  /** A network namespace inode (with --netns other than own, each socket says where it was read). */
  netns?: string;
  limit?: number;
}

const querySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    sort: { type: 'string', enum: ['send_queue', 'age'] },
    // Any spelling stateFromUserName() knows (fin_wait1, fin-wait-1, FIN-WAIT-1); checked in the handler.
    state: { type: 'string', maxLength: 32 },
    port: { type: 'string', pattern: '^([0-9]{1,5}|other)$' },
    netns: { type: 'string', pattern: '^[0-9]{1,20}$' },
    limit: { type: 'integer', minimum: 1 },
  },
} as const;

/** Most sockets one answer lists: a larger `limit` is lowered to this (the answer says so). */
export const SOCKETS_LIMIT_MAX = 1000;
export const SOCKETS_LIMIT_DEFAULT = 50;

/** Text made safe for HTML (peer addresses and capture text are untrusted). */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The kept sockets of this one snapshot that match the query (never another poll's: see the route). */
export function selectSockets(snap: Snapshot, q: Query): SocketSample[] {
  const top = snap.forensics?.top;
  if (top === undefined) return [];
  const sort = q.sort ?? 'send_queue';
  const out: SocketSample[] = [];
  for (const state of q.state === undefined ? TCP_STATES : [q.state]) {
    const t = top[state];
    if (t === undefined) continue;
    for (const s of sort === 'age' ? t.byAge : t.bySendQueue) if ((q.port === undefined || s.port === q.port) && (q.netns === undefined || s.netns === q.netns)) out.push(s);
  }
  const key = (s: SocketSample) => (sort === 'age' ? (s.ageSeconds ?? -1) : s.sendQueue);
  return out.sort((a, b) => key(b) - key(a)).slice(0, Math.min(q.limit ?? SOCKETS_LIMIT_DEFAULT, SOCKETS_LIMIT_MAX));
}

const COLUMNS: ReadonlyArray<[string, (s: SocketSample) => string]> = [
  ['netns', (s) => s.netns ?? ''],
  ['state', (s) => s.state],
  ['local', (s) => s.local],
  ['peer', (s) => s.peer],
  ['port', (s) => s.port],
  ['Recv-Q', (s) => String(s.recvQueue)],
  ['Send-Q', (s) => String(s.sendQueue)],
  ['timer', (s) => s.timer ?? ''],
  ['next probe/expiry (s)', (s) => (s.timerSeconds === null ? '' : String(s.timerSeconds))],
  ['backoff', (s) => (s.backoff === null ? '' : String(s.backoff))],
  ['write memory', (s) => (s.wmemQueued === null ? '' : String(s.wmemQueued))],
  ['age (s)', (s) => (s.ageSeconds === null ? '' : s.ageSeconds.toFixed(0))],
  ['orphan', (s) => (s.orphan ? 'yes' : '')],
];

const ownerText = (owners: readonly Owner[] | null) => (owners === null ? '' : owners.length === 0 ? '?' : owners.map((o) => `${o.comm} (${o.pid})`).join(', '));

/** Per-socket owners from one lookup. */
function withOwners(sockets: SocketSample[], lookup: OwnerLookup | undefined): ListedSocket[] {
  return sockets.map((s) => ({ ...s, owners: s.inode === null || s.inode === 0 || lookup === undefined ? null : (lookup.owners.get(s.inode) ?? []) }));
}

function peersHtml(p: PeerNetworks | undefined): string {
  if (p === undefined) return '';
  const rows = p.top.map((n) => `<tr><td>${escapeHtml(n.network)}</td><td>${n.sockets}</td><td>${n.bytes}</td></tr>`).join('\n');
  return `<h2>Peer networks of FIN-WAIT-1 sockets (IPv4 /${p.ipv4Prefix}, IPv6 /${p.ipv6Prefix})</h2>
<p>${p.sockets} FIN-WAIT-1 sockets, ${p.bytes} bytes, in ${p.networks} networks${p.uncounted > 0 ? ` (${p.uncounted} sockets not counted per network)` : ''}; the ${p.top.length} holding the most bytes:</p>
<table><thead><tr><th>network</th><th>sockets</th><th>Send-Q bytes</th></tr></thead><tbody>
${rows}
</tbody></table>`;
}

function ownersHtml(o: ListenerOwners | undefined): string {
  if (o === undefined) return '';
  const rows = o.listeners.map((l) => `<tr><td>${escapeHtml(l.port)}</td><td>${escapeHtml(l.owners === null ? 'no inode shown' : ownerText(l.owners))}</td></tr>`).join('\n');
  const scan = o.scan;
  return `<h2>Processes listening on the attributed ports</h2>
<p>Looked up in ${scan.scannedProcesses} of ${scan.processes} processes (${scan.scannedFds} descriptors, ${scan.elapsedMs.toFixed(0)} ms)${scan.stoppedBy === null ? '' : `, stopped early by the ${escapeHtml(scan.stoppedBy)} limit`}${scan.denied > 0 ? `; ${scan.denied} processes not readable (another user's: needs CAP_SYS_PTRACE), their sockets show ?` : ''}.</p>
<table><thead><tr><th>port</th><th>process (pid)</th></tr></thead><tbody>
${rows}
</tbody></table>`;
}


/** A link to /sockets with these parameters (undefined ones left out). */
function href(q: Query): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined) p.set(k, String(v));
  const qs = p.toString();
  return escapeHtml(qs === '' ? '/sockets' : `/sockets?${qs}`);
}

/** Sort and filter links: each keeps the other parameters of the current view. */
function links(sockets: SocketSample[], q: Query): string {
  const a = (label: string, to: Query, current: boolean) => (current ? `<b>${escapeHtml(label)}</b>` : `<a href="${href(to)}">${escapeHtml(label)}</a>`);
  const sort = q.sort ?? 'send_queue';
  const states = [...new Set(sockets.map((s) => s.state))];
  if (q.state !== undefined && !states.includes(q.state)) states.push(q.state);
  const ports = [...new Set(sockets.map((s) => s.port))];
  if (q.port !== undefined && !ports.includes(q.port)) ports.push(q.port);
  return [
    `<p>Sort: ${a('Send-Q', { ...q, sort: 'send_queue' }, sort === 'send_queue')} · ${a('age', { ...q, sort: 'age' }, sort === 'age')}</p>`,
    `<p>State: ${[a('all', { ...q, state: undefined }, q.state === undefined), ...states.map((st) => a(st, { ...q, state: st }, q.state === st))].join(' · ')}</p>`,
    `<p>Port: ${[a('all', { ...q, port: undefined }, q.port === undefined), ...ports.map((pt) => a(pt, { ...q, port: pt }, q.port === pt))].join(' · ')}</p>`,
    ...netnsLinks(sockets, q, a),
  ].join('\n');
}

/** With --netns other than own: a link per network namespace of the sockets shown. */
function netnsLinks(sockets: SocketSample[], q: Query, a: (label: string, to: Query, current: boolean) => string): string[] {
  const all = [...new Set(sockets.map((s) => s.netns).filter((n): n is string => n !== undefined))];
  if (q.netns !== undefined && !all.includes(q.netns)) all.push(q.netns);
  if (all.length === 0) return [];
  return [`<p>Network namespace: ${[a('all', { ...q, netns: undefined }, q.netns === undefined), ...all.map((n) => a(n, { ...q, netns: n }, q.netns === n))].join(' · ')}</p>`];
}

function html(sockets: ListedSocket[], q: Query, takenAt: string, peers: PeerNetworks | undefined, owners: ListenerOwners | undefined): string {
  // The namespace column only when sockets were read in several (--netns other than own).
  const columns = sockets.some((s) => s.netns !== undefined) ? COLUMNS : COLUMNS.filter(([h]) => h !== 'netns');
  const head = [...columns.map(([h]) => `<th>${escapeHtml(h)}</th>`), '<th>owner (pid)</th>'].join('');
  const rows = sockets.map((s) => `<tr>${columns.map(([, f]) => `<td>${escapeHtml(f(s))}</td>`).join('')}<td>${escapeHtml(ownerText(s.owners))}</td></tr>`).join('\n');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>tcpstate-exporter: worst sockets</title>
<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}</style>
</head><body>
<h1>Worst sockets of the latest poll</h1>
<p>Poll: ${escapeHtml(takenAt)}. Sorted by ${q.sort === 'age' ? 'age' : 'Send-Q'}${q.state ? `, state ${escapeHtml(q.state)}` : ''}${q.port ? `, port ${escapeHtml(q.port)}` : ''}${q.netns ? `, network namespace ${escapeHtml(q.netns)}` : ''}.
Parameters: <code>sort=send_queue|age</code>, <code>state=fin_wait1</code>, <code>port=443|other</code>, <code>netns=INODE</code> (with --netns), <code>limit=N</code> (at most ${SOCKETS_LIMIT_MAX}).
At most --sockets.top sockets per state are kept at each poll. <a href="/">home</a></p>
${links(sockets, q)}
<table><thead><tr>${head}</tr></thead><tbody>
${rows}
</tbody></table>
${peersHtml(peers)}
${ownersHtml(owners)}
</body></html>
`;
}

/** The accepted spellings, for the 400 answer. */
const STATE_HELP =
  `state must be one of ${TCP_STATES.join(', ')} ` + '(ss spellings are accepted too: fin-wait-1, FIN-WAIT-1, syn-recv, ESTAB, ...)';

export function registerSocketsRoute(app: FastifyInstance, view: SnapshotView, options: SocketsOptions = {}): void {
  // One owner lookup per poll at most, shared by the requests that come in meanwhile.
  let cached: { snapshot: Snapshot; lookup: Promise<OwnerLookup> } | undefined;
  const lookupFor = (snap: Snapshot): Promise<OwnerLookup> | undefined => {
    const find = options.findOwners;
    if (find === undefined) return undefined;
    if (cached?.snapshot !== snap) cached = { snapshot: snap, lookup: find(ownedInodes(snap.forensics)) };
    return cached.lookup;
  };
  app.get('/sockets', { schema: { querystring: querySchema } }, async (req: FastifyRequest<{ Querystring: Omit<Query, 'state'> & { state?: string } }>, reply: FastifyReply) => {
    let state: TcpState | undefined;
    if (req.query.state !== undefined) {
      state = stateFromUserName(req.query.state);
      if (state === undefined) return reply.code(400).type('text/plain; charset=utf-8').send(`${STATE_HELP}\n`);
    }
    const q: Query = { ...req.query, state };
    const snap = view.snapshot();
    if (snap === undefined) return reply.code(503).type('text/plain; charset=utf-8').send('not ready: no poll has completed yet\n');
    // Everything below reads `snap`: a poll may complete while the owners are looked up, and the
    // list, its owners and takenAt must all be of the same poll.
    const lookup = await lookupFor(snap);
    const sockets = withOwners(selectSockets(snap, q), lookup);
    const owners = lookup === undefined ? undefined : ownersOfListeners(snap.forensics, lookup);
    const takenAt = new Date(snap.takenAtMs).toISOString();
    if (req.headers.accept?.includes('text/html') === true) return reply.type('text/html; charset=utf-8').send(html(sockets, q, takenAt, snap.peers?.networks, owners));
    const limit = Math.min(q.limit ?? SOCKETS_LIMIT_DEFAULT, SOCKETS_LIMIT_MAX);
    return reply.send({
      takenAt,
      sort: q.sort ?? 'send_queue',
      state: q.state ?? null,
      port: q.port ?? null,
      ...(q.netns !== undefined && { netns: q.netns }),
      limit,
      sockets,
      peerNetworks: snap.peers?.networks ?? null,
      listeners: owners?.listeners ?? null,
      ownerScan: owners?.scan ?? null,
    });
  });
}
