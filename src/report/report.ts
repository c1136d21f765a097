// `tcpstate-exporter report`: a one-shot diagnosis, live or from files copied off a production box.
// Same parsers, aggregates and metrics as the daemon; only the presentation is its own.

import { Command, CommanderError, Option } from 'commander';
import { pino } from 'pino';
import type { Forensics } from '../aggregate/forensics.ts';
import { DEFAULT_PEER_NETWORKS, type PeerNetworkOptions } from '../aggregate/peers.ts';
import { ConfigError, DEFAULT_NETNS_MAX, addDaemonFlags, checkDaemonFlags } from '../config.ts';
import { createRegistry } from '../metrics/registry.ts';
import { FAMILIES, TCP_STATES, type SourceMode, type TcpState } from '../model.ts';
import { stateFromName } from '../parsers/ss.ts';
import type { NetnsSelection } from '../netns/discover.ts';
import { NetnsPoller } from '../netns/poll.ts';
import { Poller } from '../poller/poller.ts';
import type { PollerStats, SnapshotView } from '../snapshot.ts';
import { netnsRows, reportTable } from './data.ts';
import { captureTimeMs, fileSources, type Input, type InputKind } from '../sources/files.ts';
import { liveSources } from '../sources/live.ts';
import { DEFAULT_OWNER_LIMITS, findOwners, ownedInodes, ownersOfListeners } from '../sources/owners.ts';
import type { PollSources } from '../sources/source.ts';
import { timersShown, type ReportData } from './data.ts';
import { explain, stripControl } from './text.ts';
import { FinWait1ExitTally } from '../aggregate/forensics.ts';

export type { ReportData } from './data.ts';

export class ReportError extends Error {}

const FIXED_STATS: PollerStats = { pollsTotal: 1, pollsSkippedTotal: 0, parseErrorsTotal: new Map(), untrackedTotal: 0, finWait1Exits: new FinWait1ExitTally().view() };

const HINTS: Readonly<Record<InputKind, string>> = {
  ss: 'Is it `ss -t…` output? A capture filtered to one state needs --state.',
  proc: 'Is it a copy of /proc/net/tcp?',
  netlink: 'Is it the output of tcpstate-diag (raw netlink messages)?',
};

/** One poll of these sources by the daemon's poller (peers counted); its snapshot and outcomes. */
async function pollOnce(sources: PollSources, peerNetworks: PeerNetworkOptions, netns?: NetnsPoller) {
  const poller = new Poller({ sources, intervalMs: 1000, logger: pino({ level: 'silent' }), countPeers: true, peerNetworks, ...(netns !== undefined && { netns }) });
  await poller.poll();
  await poller.stop(); // ends the netlink helper
  return { snapshot: poller.snapshot(), outcomes: poller.outcomes() };
}

/** Reads capture files: the daemon's poller over file-backed sources. */
export async function reportFromFiles(inputs: readonly Input[], state: TcpState | undefined, peerNetworks: PeerNetworkOptions = DEFAULT_PEER_NETWORKS): Promise<ReportData> {
  let sources: PollSources;
  try {
    sources = await fileSources(inputs, state);
  } catch (e) {
    throw new ReportError((e as Error).message);
  }
  const { snapshot, outcomes } = await pollOnce(sources, peerNetworks);
  let parseErrors = 0;
  let firstParseError: ReportData['firstParseError'];
  outcomes.forEach((o, i) => {
    const input = inputs[i]!;
    if (o.records === 0 && o.parseErrors > 0) {
      throw new ReportError(
        `${input.path}: no socket recognised (${o.parseErrors} unparsable lines; first: ${o.firstParseError?.reason ?? '?'}). ${HINTS[input.kind]}`,
      );
    }
    if (o.error !== undefined) throw new ReportError(o.error.message);
    parseErrors += o.parseErrors;
    firstParseError ??= o.firstParseError;
  });
  if (snapshot === undefined) throw new ReportError('no input read');
  // The capture's own time when the files tell it; else (stdin) the time this report read it, said as such.
  const captured = await captureTimeMs(inputs);
  const takenAt = captured === undefined ? { ms: snapshot.takenAtMs, kind: 'run' as const } : { ms: captured, kind: 'capture' as const };
  return { source: inputs.map((i) => `${i.kind}:${i.path}`).join(', '), snapshot, takenAt, parseErrors, firstParseError };
}

/** One live poll of this host, exactly as the daemon does it. */
export async function reportLive(opts: {
  source: SourceMode;
  procfs: string;
  ssPath: string;
  ssTimeoutMs: number;
  netlinkHelper: string;
  netlinkTimeoutMs: number;
  netns?: NetnsSelection;
  netnsMax?: number;
}, peerNetworks: PeerNetworkOptions = DEFAULT_PEER_NETWORKS, ownersTimeoutMs = DEFAULT_OWNER_LIMITS.timeMs): Promise<ReportData> {
  const ss = { path: opts.ssPath, timeoutMs: opts.ssTimeoutMs };
  const sources = liveSources({ mode: opts.source, netlink: { path: opts.netlinkHelper, timeoutMs: opts.netlinkTimeoutMs }, ss, procfs: opts.procfs });
  const selection = opts.netns ?? { mode: 'own' };
  const netns =
    selection.mode === 'own'
      ? undefined
      : new NetnsPoller({
          selection,
          max: opts.netnsMax ?? DEFAULT_NETNS_MAX,
          procfs: opts.procfs,
          source: opts.source,
          ...(sources.netlink !== undefined && { netlink: sources.netlink }),
          ss,
          logger: pino({ level: 'silent' }),
        });
  const { snapshot, outcomes } = await pollOnce(sources, peerNetworks, netns);
  if (snapshot === undefined || Object.keys(snapshot.table).length === 0) {
    const failed = outcomes.filter((s) => !s.up).map((s) => `${s.source}: ${s.error?.message ?? '?'}`).join('; ');
    throw new ReportError(`could not read this host's socket table (${failed === '' ? 'no source' : failed})`);
  }
  const parseErrors = outcomes.reduce((a, o) => a + o.parseErrors, 0);
  const firstParseError = outcomes.find((o) => o.firstParseError !== undefined)?.firstParseError;
  // Owners of the listeners and worst sockets, from this host's /proc (bounded: sources/owners.ts).
  const owners = ownersTimeoutMs === 0 ? undefined : await findOwners(opts.procfs, ownedInodes(snapshot.forensics), { ...DEFAULT_OWNER_LIMITS, timeMs: ownersTimeoutMs });
  return { source: `live (${snapshot.sources.map((s) => s.source).join(', ')})`, snapshot, takenAt: { ms: snapshot.takenAtMs, kind: 'live' }, ...(owners !== undefined && { owners }), parseErrors, firstParseError };
}

export async function renderReport(data: ReportData, format: 'text' | 'json' | 'prometheus', version: string): Promise<string> {
  const unreadable = data.snapshot.netns?.unreadable;
  const stats: PollerStats = unreadable === undefined ? FIXED_STATS : { ...FIXED_STATS, netnsFailuresTotal: unreadable };
  const view: SnapshotView = { snapshot: () => data.snapshot, stats: () => stats };
  if (format === 'prometheus') return createRegistry({ view, version, defaultMetrics: false }).metrics();
  if (format === 'json') return `${JSON.stringify(jsonReport(data), null, 2)}\n`;
  return explain(data);
}

const TAKEN_AT_IS: Readonly<Record<ReportData['takenAt']['kind'], string>> = {
  live: 'the live poll',
  capture: "the newest input file's modification time (the capture's, if the copy kept it)",
  run: 'when this report ran: standard input has no capture time',
};

function jsonReport(d: ReportData) {
  const s = d.snapshot;
  const table = reportTable(s);
  const states: Record<string, unknown> = {};
  const timers = timersShown(table);
  for (const st of TCP_STATES) {
    const per = FAMILIES.map((f) => table[f]?.[st]).filter((x) => x !== undefined);
    states[st] = {
      sockets: per.reduce((a, x) => a + x.sockets, 0),
      sendQueueBytes: st === 'listen' ? null : per.reduce((a, x) => a + x.sendQueueBytes, 0),
      recvQueueBytes: st === 'listen' ? null : per.reduce((a, x) => a + x.recvQueueBytes, 0),
      orphanSockets: per.reduce((a, x) => a + x.orphanSockets, 0),
      orphanSendQueueBytes: per.reduce((a, x) => a + x.orphanSendQueueBytes, 0),
      // null: the input shows no timers (ss without -o), so they are unknown, not 0.
      persistTimers: timers ? per.reduce((a, x) => a + x.timers.persist, 0) : null,
      persistMaxSeconds: timers ? Math.max(0, ...per.map((x) => x.persistMaxSeconds)) : null,
    };
  }
  const f: Forensics | undefined = s.forensics;
  return {
    source: d.source,
    takenAt: new Date(d.takenAt.ms).toISOString(),
    takenAtIs: TAKEN_AT_IS[d.takenAt.kind],
    parseErrors: d.parseErrors,
    states,
    kernel: { ...s.kernel, tcpExt: s.kernel.tcpExt === undefined ? undefined : Object.fromEntries(s.kernel.tcpExt) },
    ...(s.netns !== undefined && { netns: netnsRows(s.netns) }),
    finWait1: f && {
      backoff: f.backoff,
      sendQueue: f.sendQueue,
      writeMemory: f.wmemQueued,
      ports: Object.fromEntries([...f.ports].map(([p, v]) => [p, v.fin_wait1])),
      topPeers: s.peers?.top ?? [],
      peerNetworks: s.peers?.networks ?? null,
      // One poll: how long a socket has been in its state is not known (null, not 0).
      worstSockets: (f.top.fin_wait1?.bySendQueue.slice(0, 10) ?? []).map((x) => ({
        ...x,
        ageSeconds: null,
        owners: d.owners === undefined || x.inode === null || x.inode === 0 ? null : (d.owners.owners.get(x.inode) ?? []),
      })),
    },
    // Processes listening on the attributed ports (null: not looked up, e.g. from a capture).
    listeners: d.owners === undefined ? null : ownersOfListeners(f, d.owners).listeners,
    ownerScan: d.owners === undefined ? null : ownersOfListeners(f, d.owners).scan,
  };
}

/** The daemon's flags a live report reads with (same spelling, environment variable and default). */
const LIVE_FLAGS = ['source', 'path.procfs', 'ss.path', 'ss.timeout', 'netlink.helper', 'netlink.timeout', 'netns', 'netns.max', 'owners.timeout'] as const;
/** How FIN-WAIT-1 peers are grouped, live or from files (the daemon's flags). */
const PEER_FLAGS = ['peers.ipv4Prefix', 'peers.ipv6Prefix', 'peers.top'] as const;

/** Parses `report` arguments and runs it; returns the process exit status. */
export async function runReport(argv: readonly string[], version: string): Promise<number> {
  const program = new Command('tcpstate-exporter report')
    .description(
      'One-shot diagnosis of TCP socket state: live (default) or from capture files.\n' +
        'Examples:\n' +
        '  tcpstate-exporter report\n' +
        '  tcpstate-exporter report --input ss:ss-tanoem.txt\n' +
        '  tcpstate-exporter report --input ss:fw1.txt --state fin-wait-1\n' +
        '  ss -tnoem state fin-wait-1 | tcpstate-exporter report --input ss:- --state fin-wait-1\n' +
        '  tcpstate-exporter report --input proc:tcp --input proc:tcp6 --format json\n' +
        '  tcpstate-exporter report --input netlink:dump.bin      # from build/tcpstate-diag 1fee 10:42 > dump.bin',
    )
    .exitOverride()
    .allowExcessArguments(false)
    .addOption(
      new Option(
        '--input <kind:file>',
        'ss:FILE (any `ss -t…` output, old or new iproute2), proc:FILE (a copy of /proc/net/tcp or tcp6) or netlink:FILE (raw tcpstate-diag output); FILE - is standard input (ss, netlink); repeatable',
      )
        .argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]),
    )
    .option('--state <name>', 'with --input ss:FILE: state of every socket in an ss capture filtered to one state (no State column), e.g. fin-wait-1')
    .addOption(new Option('--format <format>', 'text, json or prometheus (exactly what /metrics would serve, minus process metrics)').choices(['text', 'json', 'prometheus']).default('text'));
  addDaemonFlags(program, LIVE_FLAGS, 'live: ');
  addDaemonFlags(program, PEER_FLAGS);
  try {
    program.parse([...argv], { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2; // --help 0; a usage error 2, as bad input
    throw e;
  }
  const o = program.opts<{ input?: string[]; state?: string; format: 'text' | 'json' | 'prometheus' }>();
  try {
    let state: TcpState | undefined;
    if (o.state !== undefined) {
      state = stateFromName(o.state);
      if (state === undefined) throw new ReportError(`--state: unknown state "${o.state}" (e.g. fin-wait-1, established, time-wait)`);
    }
    const p = checkDaemonFlags(program.opts(), PEER_FLAGS);
    const peerNetworks: PeerNetworkOptions = { ipv4Prefix: p['peers.ipv4Prefix'], ipv6Prefix: p['peers.ipv6Prefix'], top: p['peers.top'], metricsTop: 0 };
    let data: ReportData;
    if (o.input === undefined && state !== undefined) {
      throw new ReportError('--state describes an ss capture filtered to one state and needs --input ss:FILE (or ss:- for standard input); a live report reads every state');
    }
    if (o.input === undefined) {
      const f = checkDaemonFlags(program.opts(), LIVE_FLAGS);
      data = await reportLive({
        source: f.source,
        procfs: f['path.procfs'],
        ssPath: f['ss.path'],
        ssTimeoutMs: f['ss.timeout'],
        netlinkHelper: f['netlink.helper'],
        netlinkTimeoutMs: f['netlink.timeout'] ?? f['ss.timeout'],
        netns: f.netns,
        netnsMax: f['netns.max'],
      }, peerNetworks, f['owners.timeout']);
    } else {
      const inputs = o.input.map((spec): Input => {
        const m = /^(ss|proc|netlink):(.+)$/.exec(spec);
        if (!m) throw new ReportError(`--input ${spec}: expected ss:FILE, proc:FILE or netlink:FILE`);
        return { kind: m[1] as InputKind, path: m[2]! };
      });
      data = await reportFromFiles(inputs, state, peerNetworks);
    }
    process.stdout.write(await renderReport(data, o.format, version));
    if (data.parseErrors > 0) process.stderr.write(`tcpstate-exporter report: ${data.parseErrors} unparsable lines skipped\n`);
    return 0;
  } catch (e) {
    if (e instanceof ReportError || e instanceof ConfigError) {
      process.stderr.write(`tcpstate-exporter report: ${stripControl(e.message)}\n`);
      return 2;
    }
    throw e;
  }
}
