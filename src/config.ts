// Flags (Prometheus exporter conventions where they overlap), their TCPSTATE_* environment
// equivalents, and validation: a bad setting is named and the process exits non-zero.

import { Command, CommanderError, Option } from 'commander';
import { z } from 'zod';
import type { ForensicsOptions } from './aggregate/forensics.ts';
import { DEFAULT_NETLINK_HELPER } from './build-paths.ts';
import { MAX_PEER_METRICS_TOP, MAX_PEER_TOP, type PeerNetworkOptions } from './aggregate/peers.ts';
import type { SourceMode } from './model.ts';
import { parseNetnsFlag, type NetnsSelection } from './netns/discover.ts';
import { isWallClockInterval } from './poller/schedule.ts';

export { DEFAULT_NETLINK_HELPER };

/** Hard cap on attributed ports: each adds 15 series (9 states of tcpstate_port_sockets, 6 of tcpstate_port_send_queue_bytes). */
export const MAX_PORTS = 50;

/** --netns.max default: 20 namespaces × 176 socket-table series ≈ 3 500 series at most, beside the host's. */
export const DEFAULT_NETNS_MAX = 20;

/** Most namespaces --netns.max may give their own series (each adds 176 socket-table series). */
export const MAX_NETNS = 1000;

/** 9812: in the exporter range, not taken on the Prometheus default-port allocation page. */
export const DEFAULT_PORT = 9812;

/** Routes of the HTTP server --web.telemetry-path must not take. */
export const RESERVED_PATHS: readonly string[] = ['/', '/healthz', '/readyz', '/sockets'];

export interface Config {
  /** '' = all interfaces (`::` dual-stack, or 0.0.0.0 without IPv6; see http/server.ts listen). */
  listenHost: string;
  listenPort: number;
  telemetryPath: string;
  /** --web.config.file: TLS, basic auth, headers (exporter-toolkit format); undefined = plain HTTP, no auth. */
  webConfigFile: string | undefined;
  /** --web.sockets: serve /sockets (peer addresses). */
  webSockets: boolean;
  procfs: string;
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  logFormat: 'json' | 'logfmt';
  source: SourceMode;
  /** --poll.interval: polls fire at the wall clock's multiples of it (poller/schedule.ts). */
  pollIntervalMs: number;
  /** --poll.timeout: every source and file read of one poll must be done by then. */
  pollTimeoutMs: number;
  ssPath: string;
  ssTimeoutMs: number;
  netlinkHelper: string;
  /** --netlink.timeout, else --ss.timeout (which governed the helper before the flag existed). */
  netlinkTimeoutMs: number;
  forensics: ForensicsOptions;
  /** --peers.*: how FIN-WAIT-1 peers are grouped into networks, listed, and (opt-in) labelled. */
  peers: PeerNetworkOptions;
  /** --owners.timeout: time budget of one owner lookup (/sockets, report); 0: owners are never looked up. */
  ownersTimeoutMs: number;
  /** --netns: own (default), all, or a list of ip netns names and inodes. */
  netns: NetnsSelection;
  /** --netns.max: namespaces besides the host's with their own series. */
  netnsMax: number;
}

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Prometheus-style duration: `500ms`, `15s`, `1m`, `1h30m`. */
export function parseDuration(text: string): number | undefined {
  const re = /(\d+)(ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    matched = re.lastIndex;
  }
  return matched === text.length && text.length > 0 ? total : undefined;
}

const duration = (flag: string) =>
  z.string().transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === undefined || ms === 0) {
      ctx.addIssue({ code: 'custom', message: `${flag}: "${v}" is not a duration like 500ms, 15s, 1m` });
      return z.NEVER;
    }
    return ms;
  });

/** Decimal digits only: an empty value (`--sockets.top=`) is an error, not 0. */
const wholeNumber = (message: string, min: number, max: number) =>
  z.string().transform((v, ctx) => {
    const n = /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
    if (!(n >= min && n <= max)) {
      ctx.addIssue({ code: 'custom', message: `${message} (got "${v}")` });
      return z.NEVER;
    }
    return n;
  });

const fields = z.object({
    'web.listenAddress': z.string().transform((v, ctx) => {
      const colon = v.lastIndexOf(':');
      const port = Number(v.slice(colon + 1));
      let host = colon < 0 ? '' : v.slice(0, colon);
      if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
      if (colon < 0 || !Number.isInteger(port) || port < 0 || port > 65535 || v.slice(colon + 1) === '') {
        ctx.addIssue({ code: 'custom', message: `--web.listen-address: "${v}" is not host:port (e.g. :${DEFAULT_PORT}, 127.0.0.1:${DEFAULT_PORT}, [::1]:${DEFAULT_PORT})` });
        return z.NEVER;
      }
      return { host, port };
    }),
    'web.telemetryPath': z
      .string()
      .refine((v) => /^\/[A-Za-z0-9._~\-/]+$/.test(v), {
        message: '--web.telemetry-path must start with / and be a plain path of letters, digits and . _ ~ - / (not "/")',
      })
      .refine((v) => !RESERVED_PATHS.includes(v), {
        message: `--web.telemetry-path clashes with a built-in route (${RESERVED_PATHS.join(', ')} are taken)`,
      }),
    'web.config.file': z.string(),
    'web.sockets': z
      .union([z.boolean(), z.string()])
      .transform((v, ctx) => {
        if (typeof v === 'boolean') return v;
        if (['true', '1', 'yes'].includes(v)) return true;
        if (['false', '0', 'no', ''].includes(v)) return false;
        ctx.addIssue({ code: 'custom', message: `--web.sockets: "${v}" is not true or false` });
        return z.NEVER;
      }),
    'path.procfs': z.string().min(1, '--path.procfs must not be empty'),
    'log.level': z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal'], {
      message: '--log.level must be one of trace, debug, info, warn, error, fatal',
    }),
    'log.format': z.enum(['json', 'logfmt'], { message: '--log.format must be json or logfmt' }),
    source: z.enum(['auto', 'netlink', 'ss', 'proc'], { message: '--source must be auto, netlink, ss or proc' }),
    'poll.interval': duration('--poll.interval'),
    'poll.timeout': duration('--poll.timeout'),
    'ss.path': z.string().min(1, '--ss.path must not be empty'),
    'ss.timeout': duration('--ss.timeout'),
    'netlink.helper': z.string().min(1, '--netlink.helper must not be empty'),
    'netlink.timeout': duration('--netlink.timeout').optional(),
    'stuck.after': duration('--stuck.after'),
    /** --stuck-after, the spelling before --stuck.after (command line only). */
    stuckAfter: duration('--stuck-after').optional(),
    'stuck.maxTracked': wholeNumber('--stuck.max-tracked must be a whole number from 0 to 10000000', 0, 10_000_000),
    ports: z.string().transform((v, ctx) => {
      if (v.trim() === '') return undefined;
      const ports = v.split(',').map((p) => Number(p.trim()));
      if (ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) {
        ctx.addIssue({ code: 'custom', message: `--ports: "${v}" is not a comma-separated list of ports (1-65535)` });
        return z.NEVER;
      }
      if (new Set(ports).size > MAX_PORTS) {
        ctx.addIssue({ code: 'custom', message: `--ports: at most ${MAX_PORTS} ports (each adds 15 series)` });
        return z.NEVER;
      }
      return [...new Set(ports)];
    }),
    'ports.top': wholeNumber(`--ports.top must be a whole number from 0 to ${MAX_PORTS}`, 0, MAX_PORTS),
    'sockets.top': wholeNumber('--sockets.top must be a whole number from 0 to 10000', 0, 10_000),
    'owners.timeout': z.string().transform((v, ctx) => {
      const ms = v.trim() === '0' ? 0 : parseDuration(v);
      if (ms === undefined) {
        ctx.addIssue({ code: 'custom', message: `--owners.timeout: "${v}" is not a duration like 500ms, 1s, or 0 (never look owners up)` });
        return z.NEVER;
      }
      return ms;
    }),
    'peers.ipv4Prefix': wholeNumber('--peers.ipv4-prefix must be a prefix length from 0 to 32', 0, 32),
    'peers.ipv6Prefix': wholeNumber('--peers.ipv6-prefix must be a prefix length from 0 to 128', 0, 128),
    'peers.top': wholeNumber(`--peers.top must be a whole number from 0 to ${MAX_PEER_TOP}`, 0, MAX_PEER_TOP),
    'peers.metricsTop': wholeNumber(`--peers.metrics-top must be a whole number from 0 to ${MAX_PEER_METRICS_TOP}`, 0, MAX_PEER_METRICS_TOP),
    netns: z.string().transform((v, ctx) => {
      try {
        return parseNetnsFlag(v);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
        return z.NEVER;
      }
    }),
    'netns.max': wholeNumber(`--netns.max must be a whole number from 0 to ${MAX_NETNS}`, 0, MAX_NETNS),
  });

const schema = fields.transform((o, ctx): Config => {
    if (!isWallClockInterval(o['poll.interval'])) {
      ctx.addIssue({
        code: 'custom',
        message:
          '--poll.interval must be whole seconds dividing a minute (1s…30s), whole minutes dividing an hour, or whole hours dividing a day, so polls fire at a steady cadence',
      });
      return z.NEVER;
    }
    return {
      listenHost: o['web.listenAddress'].host,
      listenPort: o['web.listenAddress'].port,
      telemetryPath: o['web.telemetryPath'],
      webConfigFile: o['web.config.file'] === '' ? undefined : o['web.config.file'],
      webSockets: o['web.sockets'],
      procfs: o['path.procfs'],
      logLevel: o['log.level'],
      logFormat: o['log.format'],
      source: o.source,
      pollIntervalMs: o['poll.interval'],
      pollTimeoutMs: o['poll.timeout'],
      ssPath: o['ss.path'],
      ssTimeoutMs: o['ss.timeout'],
      netlinkHelper: o['netlink.helper'],
      netlinkTimeoutMs: o['netlink.timeout'] ?? o['ss.timeout'],
      forensics: {
        stuckAfterSeconds: (o.stuckAfter ?? o['stuck.after']) / 1000,
        maxTracked: o['stuck.maxTracked'],
        ports: o.ports,
        topPorts: o['ports.top'],
        topSockets: o['sockets.top'],
      },
      ownersTimeoutMs: o['owners.timeout'],
      peers: { ipv4Prefix: o['peers.ipv4Prefix'], ipv6Prefix: o['peers.ipv6Prefix'], top: o['peers.top'], metricsTop: o['peers.metricsTop'] },
      netns: o.netns,
      netnsMax: o['netns.max'],
    };
  });

/** Flag, env var, default, help — the single table --help and the README follow. `key` is commander's camel-cased name. */
const FLAGS: ReadonlyArray<{ flag: string; env: string; def: string | undefined; help: string }> = [
  { flag: '--web.listen-address <host:port>', env: 'TCPSTATE_WEB_LISTEN_ADDRESS', def: `:${DEFAULT_PORT}`, help: 'address to serve /metrics on (empty host = all interfaces, IPv6 and IPv4; prefer 127.0.0.1 or the node IP)' },
  { flag: '--web.telemetry-path <path>', env: 'TCPSTATE_WEB_TELEMETRY_PATH', def: '/metrics', help: 'path under which to expose metrics' },
  { flag: '--web.config.file <file>', env: 'TCPSTATE_WEB_CONFIG_FILE', def: '', help: 'TLS, basic auth and headers, in Prometheus exporter-toolkit\'s web-config format (re-read on change and on SIGHUP)' },
  { flag: '--web.sockets [bool]', env: 'TCPSTATE_WEB_SOCKETS', def: 'false', help: 'serve /sockets: the worst sockets with their peer addresses (off by default; behind the web config\'s auth)' },
  { flag: '--path.procfs <dir>', env: 'TCPSTATE_PATH_PROCFS', def: '/proc', help: 'procfs mount point (a host /proc mounted into a container, or a fixture tree)' },
  { flag: '--log.level <level>', env: 'TCPSTATE_LOG_LEVEL', def: 'info', help: 'trace, debug, info, warn, error, fatal' },
  { flag: '--log.format <format>', env: 'TCPSTATE_LOG_FORMAT', def: 'json', help: 'json or logfmt' },
  { flag: '--source <source>', env: 'TCPSTATE_SOURCE', def: 'auto', help: 'socket table source: auto (netlink when its helper is built, else ss, else /proc), netlink, ss, proc' },
  { flag: '--poll.interval <duration>', env: 'TCPSTATE_POLL_INTERVAL', def: '15s', help: 'how often to read the socket table (e.g. 5s, 15s, 1m)' },
  { flag: '--poll.timeout <duration>', env: 'TCPSTATE_POLL_TIMEOUT', def: '30s', help: 'deadline of one poll: a source or file read still running then is reported down (a FIFO or a stalled mount under --path.procfs)' },
  { flag: '--ss.path <path>', env: 'TCPSTATE_SS_PATH', def: 'ss', help: 'the ss binary (iproute2)' },
  { flag: '--ss.timeout <duration>', env: 'TCPSTATE_SS_TIMEOUT', def: '10s', help: 'kill ss when its runs of a poll take longer than this (also the netlink helper\'s, without --netlink.timeout)' },
  { flag: '--netlink.helper <path>', env: 'TCPSTATE_NETLINK_HELPER', def: DEFAULT_NETLINK_HELPER, help: 'the tcpstate-diag binary built by npm ci (npm run build:native)' },
  { flag: '--netlink.timeout <duration>', env: 'TCPSTATE_NETLINK_TIMEOUT', def: undefined, help: 'kill the netlink helper when a poll\'s dumps take longer than this (default: --ss.timeout)' },
  { flag: '--stuck.after <duration>', env: 'TCPSTATE_STUCK_AFTER', def: '60s', help: 'a FIN-WAIT-1 socket older than this counts in tcpstate_stuck_sockets (old spelling --stuck-after still works)' },
  { flag: '--stuck.max-tracked <n>', env: 'TCPSTATE_STUCK_MAX_TRACKED', def: '100000', help: 'most FIN-WAIT-1 sockets followed across polls (bounds memory)' },
  { flag: '--ports <list>', env: 'TCPSTATE_PORTS', def: '', help: `listening ports to attribute sockets to, comma-separated (default: the top --ports.top by FIN-WAIT-1 bytes); at most ${MAX_PORTS}` },
  { flag: '--ports.top <k>', env: 'TCPSTATE_PORTS_TOP', def: '10', help: `without --ports, how many listening ports get their own series (0-${MAX_PORTS})` },
  { flag: '--owners.timeout <duration>', env: 'TCPSTATE_OWNERS_TIMEOUT', def: '1s', help: 'time budget of one lookup of the processes owning the sockets /sockets and report show (/proc/PID/fd, like ss -p; at most once per poll); 0: never look them up' },
  { flag: '--peers.ipv4-prefix <bits>', env: 'TCPSTATE_PEERS_IPV4_PREFIX', def: '24', help: 'FIN-WAIT-1 peers are grouped into IPv4 networks of this prefix length (/sockets, report)' },
  { flag: '--peers.ipv6-prefix <bits>', env: 'TCPSTATE_PEERS_IPV6_PREFIX', def: '64', help: 'the same for IPv6 peers (IPv4-mapped ::ffff:a.b.c.d peers count as IPv4)' },
  { flag: '--peers.top <k>', env: 'TCPSTATE_PEERS_TOP', def: '10', help: `peer networks listed on /sockets and in the report, most FIN-WAIT-1 bytes first (0-${MAX_PEER_TOP})` },
  { flag: '--peers.metrics-top <k>', env: 'TCPSTATE_PEERS_METRICS_TOP', def: '0', help: `opt-in: also export the top k peer networks as network labels of tcpstate_peer_network_* (0, the default: never; at most ${MAX_PEER_METRICS_TOP}, i.e. ${2 * (MAX_PEER_METRICS_TOP + 1)} series)` },
  { flag: '--sockets.top <n>', env: 'TCPSTATE_SOCKETS_TOP', def: '100', help: 'worst sockets kept per state for /sockets' },
  { flag: '--netns <own|all|list>', env: 'TCPSTATE_NETNS', def: 'own', help: 'network namespaces to read: own (this process\'s), all (every one on the host: needs CAP_SYS_ADMIN and CAP_SYS_PTRACE, see docs/netns.md), or a comma-separated list of ip netns names and namespace inodes (own always included); other than own adds a netns label' },
  { flag: '--netns.max <n>', env: 'TCPSTATE_NETNS_MAX', def: String(DEFAULT_NETNS_MAX), help: `with --netns other than own, how many namespaces besides the host's get their own series (most FIN-WAIT-1 bytes first); the rest are summed into netns="other" (0-${MAX_NETNS})` },
];

export class ConfigError extends Error {}

/**
 * Parses argv (without node and script) and the environment. Returns the config, or throws
 * ConfigError with every problem named; --help/--version print and throw CommanderError
 * (exit code 0).
 */
export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv, version: string): Config {
  const program = new Command('tcpstate-exporter')
    .description(
      'Prometheus exporter for Linux TCP socket state (FIN-WAIT-1 send queues, persist timers, orphans).\n' +
        'One-shot diagnosis instead of the daemon: tcpstate-exporter report --help',
    )
    .version(version, '--version', 'print the version and exit')
    .helpOption('-h, --help', 'show this help and exit')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) })
    .allowExcessArguments(false)
    .showHelpAfterError('(run with --help for all flags)');
  for (const f of FLAGS) program.addOption(flagOption(f));
  // The spelling before --stuck.after (0.1.0): still accepted on the command line, not shown.
  program.addOption(new Option('--stuck-after <duration>').hideHelp());
  // commander reads option env vars from process.env; parse against the given environment.
  const saved = process.env;
  process.env = env;
  try {
    program.parse([...argv], { from: 'user' });
  } finally {
    process.env = saved;
  }
  const raw = program.opts<Record<string, string | undefined>>();
  // Both spellings on the command line: the new one wins.
  if (program.getOptionValueSource('stuck.after') === 'cli') delete raw.stuckAfter;
  const result = schema.safeParse(raw);
  if (!result.success) {
    const fromEnv = (message: string): string => {
      // A value that came from the environment is fixed there: name the variable too.
      for (const o of program.options) {
        if (o.long === undefined || o.envVar === undefined || !message.startsWith(o.long)) continue;
        if (program.getOptionValueSource(o.attributeName()) === 'env') return `${message} (set by ${o.envVar})`;
      }
      return message;
    };
    throw new ConfigError(`invalid configuration:\n${result.error.issues.map((i) => `  ${fromEnv(i.message)}`).join('\n')}`);
  }
  return result.data;
}

/** Command line wins over the environment, which wins over the default. */
function flagOption(f: (typeof FLAGS)[number]): Option {
  const o = new Option(f.flag, f.help).env(f.env);
  return f.def === undefined ? o : o.default(f.def);
}

type Fields = z.infer<typeof fields>;
type FlagKey = Extract<keyof Fields, string>;

/** The flag of a key: 'path.procfs' → '--path.procfs'. */
const flagOf = (key: string) => FLAGS.find((f) => f.flag.split(' ')[0]!.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) === key)!;

/** Adds these daemon flags (same spelling, help, environment variable and default) to another command. */
export function addDaemonFlags(program: Command, keys: readonly FlagKey[], helpPrefix = ''): void {
  for (const k of keys) {
    const f = flagOf(k);
    program.addOption(flagOption({ ...f, help: helpPrefix + f.help }));
  }
}

/** Validates the values of some daemon flags as the daemon does; throws ConfigError naming every problem. */
export function checkDaemonFlags<K extends FlagKey>(raw: Record<string, unknown>, keys: readonly K[]): Pick<Fields, K> {
  const mask: Partial<Record<FlagKey, true>> = Object.fromEntries(keys.map((k) => [k, true]));
  const result = fields.pick(mask).safeParse(raw);
  if (!result.success) throw new ConfigError(`invalid flags:\n${result.error.issues.map((i) => `  ${i.message}`).join('\n')}`);
  return result.data;
}

/** TCPSTATE_* variables that are not settings (used by the build and the tests). */
const OTHER_ENV = new Set(['TCPSTATE_NATIVE_REQUIRED', 'TCPSTATE_TEST_NETNS']);

/**
 * Warnings for TCPSTATE_* variables that set nothing (a typo is otherwise silently ignored),
 * with the closest real name.
 */
export function unknownEnvironment(env: NodeJS.ProcessEnv): string[] {
  const known = FLAGS.map((f) => f.env);
  const warnings: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('TCPSTATE_') || known.includes(name) || OTHER_ENV.has(name)) continue;
    let best = known[0]!;
    for (const k of known) if (editDistance(name, k) < editDistance(name, best)) best = k;
    const hint = editDistance(name, best) <= 3 ? ` (did you mean ${best}?)` : '';
    warnings.push(`environment variable ${name} is not a setting and is ignored${hint}`);
  }
  return warnings;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

export { CommanderError };
