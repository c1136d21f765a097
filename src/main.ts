// Composition root: config → logger → poller → metrics → HTTP, and the signal handling.

import { ConfigError, parseConfig, CommanderError, type Config } from './config.ts';
import { buildApp } from './http/app.ts';
import { createLogger } from './log.ts';
import { createRegistry } from './metrics/registry.ts';
import { Poller } from './poller/poller.ts';
import { liveSources } from './sources/live.ts';
import { VERSION } from './version.ts';

function loadConfig(argv: readonly string[]): Config {
  try {
    return parseConfig(argv, process.env, VERSION);
  } catch (e) {
    if (e instanceof CommanderError) process.exit(e.exitCode); // --help, --version, unknown flag
    if (e instanceof ConfigError) {
      process.stderr.write(`tcpstate-exporter: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
}

async function main(): Promise<void> {
  const config = loadConfig(process.argv.slice(2));
  const logger = createLogger(config);
  const poller = new Poller({
    sources: liveSources({
      mode: config.source,
      netlink: { path: config.netlinkHelper, timeoutMs: config.netlinkTimeoutMs },
      ss: { path: config.ssPath, timeoutMs: config.ssTimeoutMs },
      procfs: config.procfs,
    }),
    cronExpression: config.cronExpression,
    forensics: config.forensics,
    logger: logger.child({ component: 'poller' }),
  });
  const registry = createRegistry({ view: poller, version: VERSION });
  const app = buildApp({
    registry,
    view: poller,
    telemetryPath: config.telemetryPath,
    version: VERSION,
    logger: logger.child({ component: 'http' }),
    onClose: () => poller.stop(),
  });

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    app.close().then(
      () => {
        logger.flush();
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'error while shutting down');
        logger.flush();
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  try {
    await app.listen({ host: config.listenHost, port: config.listenPort });
  } catch (err) {
    logger.fatal({ err }, `cannot listen on ${config.listenHost}:${config.listenPort}`);
    logger.flush();
    process.exit(1);
  }
  logger.info(
    {
      version: VERSION,
      listen: `${config.listenHost}:${config.listenPort}`,
      telemetryPath: config.telemetryPath,
      source: config.source,
      pollIntervalMs: config.pollIntervalMs,
      procfs: config.procfs,
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
