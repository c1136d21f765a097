// `tcpstate-exporter report`: a one-shot diagnosis, live or from files copied off a production box.
// Same parsers, aggregates and metrics as the daemon; only the presentation is its own.

import { readFile } from 'node:fs/promises';
import { Command, CommanderError, Option } from 'commander';
import { pino } from 'pino';
import { DEFAULT_FORENSICS, ForensicsCollector, type Forensics } from '../aggregate/forensics.ts';
import { TableAggregator, mergeTables, type SocketTable } from '../aggregate/table.ts';
import { createRegistry } from '../metrics/registry.ts';
import { FAMILIES, TCP_STATES, type Family, type SocketRecord, type TcpState } from '../model.ts';
import { InetDiagParser } from '../parsers/inet-diag.ts';
import { ProcNetTcpParser } from '../parsers/proc-net-tcp.ts';
import type { ParseSink } from '../parsers/sink.ts';
import { SsParser, stateFromName } from '../parsers/ss.ts';
import { Poller } from '../poller/poller.ts';
import type { PollerStats, Snapshot, SnapshotView, SourceMode } from '../snapshot.ts';
import { LineSplitter } from '../sources/lines.ts';
import { DEFAULT_NETLINK_HELPER } from '../sources/netlink.ts';
import { explain } from './text.ts';

export class ReportError extends Error {}

export interface Input {
  kind: 'ss' | 'proc' | 'netlink';
  path: string;
}

/** Peers of FIN-WAIT-1 sockets: report-only (one shot), capped so a huge capture stays bounded. */
export class PeerCounter {
  static readonly MAX = 100_000;
  readonly peers = new Map<string, { sockets: number; bytes: number; port: number }>();
  overflow = 0;
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
  top(n: number): Array<{ peer: string; sockets: number; bytes: number; port: number }> {
    return [...this.peers.entries()]
      .map(([peer, v]) => ({ peer, ...v }))
      .sort((a, b) => b.bytes - a.bytes || b.sockets - a.sockets)
      .slice(0, n);
  }
}

export interface ReportData {
  source: string;
  snapshot: Snapshot;
  peers: PeerCounter;
  parseErrors: number;
  firstParseError: { reason: string; line: string } | undefined;
}

const FIXED_STATS: PollerStats = { pollsTotal: 1, pollsSkippedTotal: 0, parseErrorsTotal: new Map(), untrackedTotal: 0 };

/** Is this /proc/net/tcp text IPv6 (tcp6)? Decided by the header or the first address's width. */
function procFamily(text: string): Family | undefined {
  for (const line of text.split('\n', 5)) {
    if (line.includes('remote_address')) return 'ipv6';
    if (line.includes('rem_address')) return 'ipv4';
    const m = /^\s*\d+:\s+([0-9A-Fa-f]+):/.exec(line);
    if (m) return m[1]!.length === 32 ? 'ipv6' : m[1]!.length === 8 ? 'ipv4' : undefined;
  }
  return undefined;
}

const HINTS: Readonly<Record<Input['kind'], string>> = {
  ss: 'Is it `ss -t…` output? A capture filtered to one state needs --state.',
  proc: 'Is it a copy of /proc/net/tcp?',
  netlink: 'Is it the output of tcpstate-diag (raw netlink messages)?',
};

/** Reads capture files through the daemon's parsers into one snapshot. */
export async function reportFromFiles(inputs: readonly Input[], state: TcpState | undefined): Promise<ReportData> {
  const tables: SocketTable[] = [];
  const forensics = new ForensicsCollector({ nowMs: Date.now(), firstSeen: new Map(), listening: new Set(), options: DEFAULT_FORENSICS });
  const peers = new PeerCounter();
  let parseErrors = 0;
  let firstParseError: ReportData['firstParseError'];
  const sources: Array<{ source: string; up: boolean; durationSeconds: number }> = [];
  for (const input of inputs) {
    const started = process.hrtime.bigint();
    let bytes: Buffer;
    try {
      bytes = await readFile(input.path);
    } catch (e) {
      throw new ReportError(`cannot read ${input.path}: ${(e as Error).message}`);
    }
    const text = input.kind === 'netlink' ? '' : bytes.toString('utf8');
    let family: Family | undefined;
    if (input.kind === 'proc') {
      family = procFamily(text);
      if (family === undefined) throw new ReportError(`${input.path} does not look like /proc/net/tcp or tcp6`);
    }
    const agg = new TableAggregator(family === undefined ? FAMILIES : [family]);
    let records = 0;
    let errors = 0;
    const sink: ParseSink = {
      record: (r) => {
        records++;
        agg.add(r);
        forensics.add(r);
        peers.add(r);
      },
      error: (reason, line) => {
        errors++;
        firstParseError ??= { reason, line: line.slice(0, 200) };
      },
    };
    if (input.kind === 'netlink') {
      const parser = new InetDiagParser(sink);
      parser.push(bytes);
      parser.end();
    } else {
      const parser = input.kind === 'ss' ? new SsParser(sink, state === undefined ? {} : { state }) : new ProcNetTcpParser(sink, family!);
      const splitter = new LineSplitter((l) => parser.line(l));
      splitter.push(text);
      splitter.end();
      parser.end();
    }
    if (records === 0 && errors > 0) {
      throw new ReportError(
        `${input.path}: no socket recognised (${errors} unparsable lines; first: ${firstParseError?.reason ?? '?'}). ` +
          HINTS[input.kind],
      );
    }
    parseErrors += errors;
    tables.push(agg.result());
    sources.push({ source: `${input.kind}:${input.path}`, up: true, durationSeconds: Number(process.hrtime.bigint() - started) / 1e9 });
  }
  const snapshot: Snapshot = {
    takenAtMs: Date.now(),
    pollDurationSeconds: sources.reduce((a, s) => a + s.durationSeconds, 0),
    table: mergeTables(tables),
    forensics: forensics.result(),
    kernel: {},
    sources,
  };
  return { source: inputs.map((i) => `${i.kind}:${i.path}`).join(', '), snapshot, peers, parseErrors, firstParseError };
}

/** One live poll of this host, exactly as the daemon does it. */
export async function reportLive(opts: { source: SourceMode; procfs: string; ssPath: string; netlinkHelper: string }): Promise<ReportData> {
  const peers = new PeerCounter();
  const poller = new Poller({
    mode: opts.source,
    netlink: { path: opts.netlinkHelper, timeoutMs: 60_000 },
    ss: { path: opts.ssPath, timeoutMs: 60_000 },
    procfs: opts.procfs,
    cronExpression: '* * * * * *',
    logger: pino({ level: 'silent' }),
    observe: (r) => peers.add(r),
  });
  await poller.poll();
  await poller.stop(); // ends the netlink helper
  const snapshot = poller.snapshot();
  if (snapshot === undefined || Object.keys(snapshot.table).length === 0) {
    const failed = snapshot?.sources.filter((s) => !s.up).map((s) => s.source).join(', ') ?? 'all';
    throw new ReportError(`could not read this host's socket table (failed: ${failed})`);
  }
  let parseErrors = 0;
  for (const n of poller.stats().parseErrorsTotal.values()) parseErrors += n;
  return { source: `live (${snapshot.sources.map((s) => s.source).join(', ')})`, snapshot, peers, parseErrors, firstParseError: undefined };
}

export async function renderReport(data: ReportData, format: 'text' | 'json' | 'prometheus', version: string): Promise<string> {
  const view: SnapshotView = { snapshot: () => data.snapshot, stats: () => FIXED_STATS };
  if (format === 'prometheus') return createRegistry({ view, version, defaultMetrics: false }).metrics();
  if (format === 'json') return `${JSON.stringify(jsonReport(data), null, 2)}\n`;
  return explain(data);
}

function jsonReport(d: ReportData) {
  const s = d.snapshot;
  const states: Record<string, unknown> = {};
  for (const st of TCP_STATES) {
    const per = FAMILIES.map((f) => s.table[f]?.[st]).filter((x) => x !== undefined);
    states[st] = {
      sockets: per.reduce((a, x) => a + x.sockets, 0),
      sendQueueBytes: st === 'listen' ? null : per.reduce((a, x) => a + x.sendQueueBytes, 0),
      recvQueueBytes: st === 'listen' ? null : per.reduce((a, x) => a + x.recvQueueBytes, 0),
      orphanSockets: per.reduce((a, x) => a + x.orphanSockets, 0),
      orphanSendQueueBytes: per.reduce((a, x) => a + x.orphanSendQueueBytes, 0),
      persistTimers: per.reduce((a, x) => a + x.timers.persist, 0),
      persistMaxSeconds: Math.max(0, ...per.map((x) => x.persistMaxSeconds)),
    };
  }
  const f: Forensics | undefined = s.forensics;
  return {
    source: d.source,
    takenAt: new Date(s.takenAtMs).toISOString(),
    parseErrors: d.parseErrors,
    states,
    kernel: { ...s.kernel, tcpExt: s.kernel.tcpExt === undefined ? undefined : Object.fromEntries(s.kernel.tcpExt) },
    finWait1: f && {
      backoff: f.backoff,
      sendQueue: f.sendQueue,
      writeMemory: f.wmemQueued,
      ports: Object.fromEntries([...f.ports].map(([p, v]) => [p, v.fin_wait1])),
      topPeers: d.peers.top(10),
      worstSockets: f.top.fin_wait1?.bySendQueue.slice(0, 10) ?? [],
    },
  };
}

/** Parses `report` arguments and runs it; returns the process exit status. */
export async function runReport(argv: readonly string[], version: string): Promise<number> {
  const program = new Command('tcpstate-exporter report')
    .description(
      'One-shot diagnosis of TCP socket state: live (default) or from capture files.\n' +
        'Examples:\n' +
        '  tcpstate-exporter report\n' +
        '  tcpstate-exporter report --input ss:ss-tanoem.txt\n' +
        '  tcpstate-exporter report --input ss:fw1.txt --state fin-wait-1\n' +
        '  tcpstate-exporter report --input proc:tcp --input proc:tcp6 --format json\n' +
        '  tcpstate-exporter report --input netlink:dump.bin      # from build/tcpstate-diag 1fee 10:42 > dump.bin',
    )
    .exitOverride()
    .allowExcessArguments(false)
    .addOption(
      new Option(
        '--input <kind:file>',
        'ss:FILE (any `ss -t…` output, old or new iproute2), proc:FILE (a copy of /proc/net/tcp or tcp6) or netlink:FILE (raw tcpstate-diag output); repeatable',
      )
        .argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]),
    )
    .option('--state <name>', 'state of every socket in an ss capture filtered to one state (no State column), e.g. fin-wait-1')
    .addOption(new Option('--format <format>', 'text, json or prometheus (exactly what /metrics would serve, minus process metrics)').choices(['text', 'json', 'prometheus']).default('text'))
    .addOption(new Option('--source <source>', 'live: auto, netlink, ss or proc').choices(['auto', 'netlink', 'ss', 'proc']).default('auto'))
    .option('--path.procfs <dir>', 'live: procfs mount point', '/proc')
    .option('--ss.path <path>', 'live: the ss binary', 'ss')
    .option('--netlink.helper <path>', 'live: the tcpstate-diag binary', DEFAULT_NETLINK_HELPER);
  try {
    program.parse([...argv], { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    throw e;
  }
  const o = program.opts<{ input?: string[]; state?: string; format: 'text' | 'json' | 'prometheus'; source: SourceMode; 'path.procfs': string; 'ss.path': string; 'netlink.helper': string }>();
  try {
    let state: TcpState | undefined;
    if (o.state !== undefined) {
      state = stateFromName(o.state);
      if (state === undefined) throw new ReportError(`--state: unknown state "${o.state}" (e.g. fin-wait-1, established, time-wait)`);
    }
    let data: ReportData;
    if (o.input === undefined) data = await reportLive({ source: o.source, procfs: o['path.procfs'], ssPath: o['ss.path'], netlinkHelper: o['netlink.helper'] });
    else {
      const inputs = o.input.map((spec): Input => {
        const m = /^(ss|proc|netlink):(.+)$/.exec(spec);
        if (!m) throw new ReportError(`--input ${spec}: expected ss:FILE, proc:FILE or netlink:FILE`);
        return { kind: m[1] as Input['kind'], path: m[2]! };
      });
      data = await reportFromFiles(inputs, state);
    }
    process.stdout.write(await renderReport(data, o.format, version));
    if (data.parseErrors > 0) process.stderr.write(`tcpstate-exporter report: ${data.parseErrors} unparsable lines skipped\n`);
    return 0;
  } catch (e) {
    if (e instanceof ReportError) {
      process.stderr.write(`tcpstate-exporter report: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}
