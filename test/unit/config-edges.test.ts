// Configuration edges: exit statuses, environment variables named in errors, typos in TCPSTATE_*
// names, empty numbers, an unreadable --path.procfs, readiness with every source down.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { ConfigError, parseConfig, unknownEnvironment } from '../../src/config.ts';
import { buildApp } from '../../src/http/app.ts';
import { createRegistry } from '../../src/metrics/registry.ts';
import { Poller } from '../../src/poller/poller.ts';
import { ROOT, startDaemon } from '../helpers/daemon.ts';
import { failedReader } from '../helpers/readers.ts';

const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseConfig(argv, env, '1.2.3');
function message(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    parse(argv, env);
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  return '';
}

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    cwd: ROOT, encoding: 'utf8', timeout: 20_000, env: { ...process.env, ...env },
  });
  return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}

describe('configuration edges', () => {
  it('usage errors exit 2, as the README says; --help exits 0', () => {
    for (const args of [['--no-such-flag'], ['--poll.interval'], ['report', '--format', 'xml'], ['report', '--bogus']]) {
      const r = cli(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    }
    assert.equal(cli(['--help']).status, 0);
    assert.equal(cli(['report', '--help']).status, 0);
  });
  it('an error from an environment variable names the variable', () => {
    assert.match(message([], { TCPSTATE_POLL_INTERVAL: '7s' }), /--poll\.interval must be .* \(set by TCPSTATE_POLL_INTERVAL\)/);
    assert.match(message([], { TCPSTATE_SS_TIMEOUT: 'soon' }), /--ss\.timeout: "soon" is not a duration.* \(set by TCPSTATE_SS_TIMEOUT\)/);
    assert.doesNotMatch(message(['--poll.interval', '7s']), /set by/);
  });
  it('misspelled TCPSTATE_* variables are reported, with the closest name', () => {
    assert.deepEqual(unknownEnvironment({ TCPSTATE_POLL_INTERVL: '5s', TCPSTATE_SOURCE: 'ss', TCPSTATE_NATIVE_REQUIRED: '1', PATH: '/bin' }), [
      'environment variable TCPSTATE_POLL_INTERVL is not a setting and is ignored (did you mean TCPSTATE_POLL_INTERVAL?)',
    ]);
  });
  it('the daemon logs that warning at start', async () => {
    const d = await startDaemon(['--path.procfs', `${ROOT}test/fixtures/proc`, '--source', 'proc'], { env: { TCPSTATE_LOG_LEVL: 'debug' } });
    try {
      assert.match(d.logs(), /"level":"warn".*"msg":"environment variable TCPSTATE_LOG_LEVL is not a setting and is ignored \(did you mean TCPSTATE_LOG_LEVEL\?\)"/);
    } finally {
      assert.equal(await d.stop(), 0);
    }
  });
  it('an empty number is an error, not 0', () => {
    for (const flag of ['--sockets.top', '--ports.top', '--stuck.max-tracked']) {
      assert.match(message([`${flag}=`]), new RegExp(`${flag.replace('.', '\\.')} must be a whole number .*\\(got ""\\)`), flag);
      assert.match(message([`${flag}=1.5`]), /must be a whole number/, flag);
    }
    assert.equal(parse(['--sockets.top=0']).forensics.topSockets, 0);
  });
  it('an unreadable --path.procfs stops the exporter at start, naming the flag', () => {
    const r = cli(['--path.procfs', '/nonexistent-procfs']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--path\.procfs=\/nonexistent-procfs: cannot read \/nonexistent-procfs\/net \(ENOENT\)/);
  });
  it('/readyz is 503 while every source fails', async () => {
    const failing = new Poller({
      sources: {
        table: [{ name: 'proc', readers: [failedReader('proc_tcp', 'EACCES', ['ipv4']), failedReader('proc_tcp6', 'EACCES', ['ipv6'])] }],
        kernel: [{ source: 'sockstat', read: () => Promise.reject(new Error('ENOENT')) }],
      },
      intervalMs: 1000,
      logger: pino({ level: 'silent' }),
    });
    const app = buildApp({ registry: createRegistry({ view: failing, version: 't' }), view: failing, telemetryPath: '/metrics', version: 't', logger: pino({ level: 'silent' }) });
    await failing.poll();
    const res = await app.inject('/readyz');
    assert.equal(res.statusCode, 503);
    assert.equal(res.body, 'not ready: every source failed in the latest poll (see the log)\n');
    await app.close();
  });
});
