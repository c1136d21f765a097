// Composition root: config → logger → poller → metrics → HTTP, and the signal handling.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, parseConfig, CommanderError, unknownEnvironment, type Config } from './config.ts';
import { buildApp } from './http/app.ts';
import { WebSecurity } from './http/security.ts';
import { listen, serverParts, shutdown as closeServer } from './http/server.ts';
import { WebConfigError } from './http/web-config.ts';
import { createLogger, installLastResort } from './log.ts';
import { createRegistry } from './metrics/registry.ts';
import { PollThread } from './poller/thread.ts';
import { DEFAULT_OWNER_LIMITS, findOwners } from './sources/owners.ts';
import { stopSignalHandler } from './shutdown.ts';
import { REVISION, VERSION, VERSION_LINE } from './version.ts';

function loadConfig(argv: readonly string[]): Config {
  try {
    return parseConfig(argv, process.env, VERSION_LINE);
  } catch (e) {
    // --help and --version exit 0; a usage error (unknown flag, missing value) 2, as a bad value.
    if (e instanceof CommanderError) process.exit(e.exitCode === 0 ? 0 : 2);
    if (e instanceof ConfigError) {
      process.stderr.write(`tcpstate-exporter: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
}

/** Every file the exporter reads is under --path.procfs: a wrong one is a setting to fix now. */
function checkProcfs(procfs: string): void {
  const net = join(procfs, 'net');
  try {
    readdirSync(net);
  } catch (e) {
    process.stderr.write(`tcpstate-exporter: invalid configuration:\n  --path.procfs=${procfs}: cannot read ${net} (${(e as NodeJS.ErrnoException).code ?? String(e)})\n`);
    process.exit(2);
  }
}

async function main(): Promise<void> {
  const config = loadConfig(process.argv.slice(2));
  checkProcfs(config.procfs);
  const logger = createLogger(config);
  installLastResort(logger);
  for (const warning of unknownEnvironment(process.env)) logger.warn(warning);
  const httpLogger = logger.child({ component: 'http' });
  let security: WebSecurity;
  try {
    security = new WebSecurity(config.webConfigFile, httpLogger);
  } catch (e) {
    if (!(e instanceof WebConfigError)) throw e;
    process.stderr.write(`tcpstate-exporter: invalid configuration:\n  --web.config.file ${config.webConfigFile}: ${e.message}\n`);
    process.exit(2);
  }
  const parts = serverParts(security, httpLogger);
  const selection = config.netns;
  // Polls run in a thread of their own (poller/thread.ts): parsing never holds up a scrape.
  const poller = new PollThread({ config, logger: logger.child({ component: 'poller' }), restartDelayMs: config.pollIntervalMs });
  const registry = createRegistry({ view: poller, version: VERSION, revision: REVISION });
  const app = buildApp({
    registry,
    view: poller,
    telemetryPath: config.telemetryPath,
    version: VERSION,
    logger: httpLogger,
    // Three missed polls, each allowed its whole deadline: by then the figures are not the host's.
    maxSnapshotAgeMs: 3 * (config.pollIntervalMs + config.pollTimeoutMs),
    onClose: () => poller.stop(),
    sockets: config.webSockets,
    // Owners of the listeners and of the sockets listed, looked up when /sockets asks (sources/owners.ts).
    ...(config.ownersTimeoutMs > 0 && { findOwners: (inodes: ReadonlySet<number>) => findOwners(config.procfs, inodes, { ...DEFAULT_OWNER_LIMITS, timeMs: config.ownersTimeoutMs }) }),
    security,
    serverFactory: parts.factory,
  });

  // First SIGTERM/SIGINT: stop accepting, close idle connections, give requests in flight
  // DEFAULT_LIMITS.shutdownGraceMs, stop the poller, exit 0. A second signal, or a shutdown still
  // running after 10 s, exits at once (status 1).
  const shutdown = stopSignalHandler({ stop: () => closeServer(app, parts), logger, deadlineMs: 10_000, exit: (code) => process.exit(code) });
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // SIGHUP re-reads --web.config.file (it is also re-read when it changes); it never stops the exporter.
  process.on('SIGHUP', () => {
    if (config.webConfigFile === undefined) logger.info('SIGHUP: no --web.config.file to re-read');
    else security.reload('SIGHUP');
  });

  let address: string;
  try {
    address = await listen(app, config.listenHost, config.listenPort);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    logger.fatal({ code }, `cannot listen on --web.listen-address ${config.listenHost}:${config.listenPort}${code === undefined ? '' : ` (${code})`}`);
    logger.flush();
    process.exit(1);
  }
  logger.info(
    {
      version: VERSION,
      revision: REVISION,
      listen: address,
      tls: security.tls,
      basicAuth: (security.current()?.config.users.size ?? 0) > 0,
      sockets: config.webSockets,
      telemetryPath: config.telemetryPath,
      source: config.source,
      pollIntervalMs: config.pollIntervalMs,
      procfs: config.procfs,
      netns: selection.mode === 'list' ? [...selection.names, ...selection.inodes].join(',') : selection.mode,
    },
    'tcpstate-exporter started',
  );
  await poller.start();
}

const argv = process.argv.slice(2);
const run =
  argv[0] === 'report'
    ? import('./report/report.ts').then(({ runReport }) => runReport(argv.slice(1), VERSION)).then((code) => process.exit(code))
    : main();
run.catch((err: unknown) => {
  process.stderr.write(`tcpstate-exporter: fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
