import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isWallClockInterval } from '../../src/poller/schedule.ts';
import { ConfigError, DEFAULT_NETLINK_HELPER, DEFAULT_PORT, parseConfig, parseDuration } from '../../src/config.ts';

const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseConfig(argv, env, '1.2.3');

function rejects(argv: string[], pattern: RegExp, env: NodeJS.ProcessEnv = {}) {
  assert.throws(() => parse(argv, env), (e: unknown) => e instanceof ConfigError && pattern.test(e.message));
}

describe('config', () => {
  it('has production defaults', () => {
    assert.deepEqual(parse([]), {
      listenHost: '', listenPort: DEFAULT_PORT, telemetryPath: '/metrics', webConfigFile: undefined, webSockets: false, procfs: '/proc', logLevel: 'info',
      logFormat: 'json', source: 'auto', pollIntervalMs: 15000, pollTimeoutMs: 30000, ssPath: 'ss', ssTimeoutMs: 10000,
      netlinkHelper: DEFAULT_NETLINK_HELPER, netlinkTimeoutMs: 10000, netns: { mode: 'own' }, netnsMax: 20,
      forensics: { stuckAfterSeconds: 60, maxTracked: 100000, ports: undefined, topPorts: 10, topSockets: 100 },
      peers: { ipv4Prefix: 24, ipv6Prefix: 64, top: 10, metricsTop: 0 },
      ownersTimeoutMs: 1000,
    });
  });
  it('reads every flag', () => {
    const c = parse([
      '--web.listen-address', '[::1]:9999', '--web.telemetry-path', '/m', '--path.procfs', '/host/proc', '--log.level', 'debug',
      '--log.format', 'logfmt', '--source', 'proc', '--poll.interval', '1m', '--ss.path', '/sbin/ss', '--ss.timeout', '2500ms',
      '--netlink.helper', '/opt/tcpstate-diag',
    ]);
    assert.deepEqual(
      [c.listenHost, c.listenPort, c.telemetryPath, c.procfs, c.logLevel, c.logFormat, c.source, c.pollIntervalMs, c.ssPath, c.ssTimeoutMs, c.netlinkHelper],
      ['::1', 9999, '/m', '/host/proc', 'debug', 'logfmt', 'proc', 60000, '/sbin/ss', 2500, '/opt/tcpstate-diag'],
    );
  });
  it('--netlink.timeout governs the netlink helper; without it --ss.timeout does, as before', () => {
    assert.deepEqual([parse(['--ss.timeout', '3s']).ssTimeoutMs, parse(['--ss.timeout', '3s']).netlinkTimeoutMs], [3000, 3000]);
    const c = parse(['--ss.timeout', '3s', '--netlink.timeout', '500ms']);
    assert.deepEqual([c.ssTimeoutMs, c.netlinkTimeoutMs], [3000, 500]);
    assert.equal(parse([], { TCPSTATE_NETLINK_TIMEOUT: '2s' }).netlinkTimeoutMs, 2000);
    rejects(['--netlink.timeout', 'soon'], /--netlink\.timeout: "soon" is not a duration/);
  });
  it('--stuck.after, and its old spelling --stuck-after (command line) and TCPSTATE_STUCK_AFTER', () => {
    assert.equal(parse(['--stuck.after', '90s']).forensics.stuckAfterSeconds, 90);
    assert.equal(parse(['--stuck-after', '90s']).forensics.stuckAfterSeconds, 90);
    assert.equal(parse([], { TCPSTATE_STUCK_AFTER: '30s' }).forensics.stuckAfterSeconds, 30);
    assert.equal(parse(['--stuck-after', '2m'], { TCPSTATE_STUCK_AFTER: '30s' }).forensics.stuckAfterSeconds, 120);
    assert.equal(parse(['--stuck-after', '2m', '--stuck.after', '3m']).forensics.stuckAfterSeconds, 180);
    rejects(['--stuck-after', 'x'], /--stuck-after: "x" is not a duration/);
    rejects(['--stuck.after', 'x'], /--stuck\.after: "x" is not a duration/);
  });
  it('reads the forensics flags', () => {
    const c = parse(['--stuck-after', '2m', '--stuck.max-tracked', '500', '--ports', '443, 80,443', '--sockets.top', '5']);
    assert.deepEqual(c.forensics, { stuckAfterSeconds: 120, maxTracked: 500, ports: [443, 80], topPorts: 10, topSockets: 5 });
  });
  it('web: an empty host is all interfaces; --web.sockets and --web.config.file', () => {
    assert.equal(parse(['--web.listen-address', ':9100']).listenHost, '');
    assert.equal(parse(['--web.listen-address', '0.0.0.0:9100']).listenHost, '0.0.0.0');
    assert.equal(parse(['--web.sockets']).webSockets, true);
    assert.equal(parse(['--web.sockets=false']).webSockets, false);
    assert.equal(parse([], { TCPSTATE_WEB_SOCKETS: 'true' }).webSockets, true);
    // commander would read any set variable of a boolean flag as true: "false" must mean false.
    assert.equal(parse([], { TCPSTATE_WEB_SOCKETS: 'false' }).webSockets, false);
    assert.equal(parse(['--web.config.file', '/etc/tcpstate/web.yml']).webConfigFile, '/etc/tcpstate/web.yml');
    assert.equal(parse([], { TCPSTATE_WEB_CONFIG_FILE: 'web.yml' }).webConfigFile, 'web.yml');
  });
  it('takes TCPSTATE_* environment variables, flags win', () => {
    const env = { TCPSTATE_SOURCE: 'ss', TCPSTATE_POLL_INTERVAL: '5s', TCPSTATE_WEB_LISTEN_ADDRESS: '127.0.0.1:1234' };
    const c = parse([], env);
    assert.deepEqual([c.source, c.pollIntervalMs, c.listenHost, c.listenPort], ['ss', 5000, '127.0.0.1', 1234]);
    assert.equal(parse(['--source', 'proc'], env).source, 'proc');
    assert.equal(parse(['--source', 'netlink']).source, 'netlink');
    assert.equal(parse([], { TCPSTATE_NETLINK_HELPER: '/usr/libexec/tcpstate-diag' }).netlinkHelper, '/usr/libexec/tcpstate-diag');
  });
  it('names the bad setting', () => {
    rejects(['--source', 'inet_diag'], /--source must be auto, netlink, ss or proc/);
    rejects(['--netlink.helper', ''], /--netlink\.helper must not be empty/);
    rejects(['--poll.interval', 'often'], /--poll\.interval: "often" is not a duration/);
    rejects(['--poll.interval', '7s'], /--poll\.interval must be whole seconds dividing a minute/);
    rejects(['--poll.interval', '1500ms'], /--poll\.interval must be/);
    rejects(['--ss.timeout', '0s'], /--ss\.timeout/);
    rejects(['--web.listen-address', 'localhost'], /--web\.listen-address: "localhost" is not host:port/);
    rejects(['--web.listen-address', ':99999'], /--web\.listen-address/);
    rejects(['--web.telemetry-path', 'metrics'], /--web\.telemetry-path must start with \//);
    rejects(['--web.telemetry-path', '/readyz'], /clashes/);
    // Issue 10 item 9: /sockets was a stack trace at start (two routes on one path).
    rejects(['--web.telemetry-path', '/sockets'], /--web\.telemetry-path clashes with a built-in route \(\/, \/healthz, \/readyz, \/sockets are taken\)/);
    rejects(['--web.telemetry-path', '/metrics/:name'], /--web\.telemetry-path must start with \/ and be a plain path/);
    rejects(['--web.telemetry-path', '/m*'], /--web\.telemetry-path must start with \/ and be a plain path/);
    rejects(['--web.sockets=maybe'], /--web\.sockets: "maybe" is not true or false/);
    rejects(['--log.level', 'loud'], /--log\.level must be one of/);
    rejects(['--log.format', 'xml'], /--log\.format must be json or logfmt/);
    rejects([], /--source must be/, { TCPSTATE_SOURCE: 'bogus' });
    rejects(['--ports', '80,http'], /--ports: "80,http" is not a comma-separated list/);
    rejects(['--ports', Array.from({ length: 51 }, (_, i) => i + 1).join(',')], /at most 50 ports/);
    rejects(['--ports.top', '51'], /--ports\.top must be a whole number from 0 to 50/);
    rejects(['--stuck-after', 'soon'], /--stuck-after/);
    rejects(['--stuck.max-tracked', '-1'], /--stuck\.max-tracked must be a whole number from 0 to 10000000/);
    rejects(['--sockets.top', 'many'], /--sockets\.top/);
  });
  it('reports several bad settings at once', () => {
    assert.throws(() => parse(['--source', 'x', '--log.level', 'y']), (e: unknown) => e instanceof ConfigError && /--source/.test(e.message) && /--log\.level/.test(e.message));
  });
});

describe('parseDuration / isWallClockInterval', () => {
  it('parses Prometheus durations', () => {
    assert.equal(parseDuration('15s'), 15000);
    assert.equal(parseDuration('1m30s'), 90000);
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('2h'), 7200000);
    for (const bad of ['', '15', 's', '1.5s', '15 s', '-1s', '1d']) assert.equal(parseDuration(bad), undefined, bad);
  });
  it('accepts intervals that divide their wall-clock field', () => {
    for (const ms of [1000, 2000, 15000, 30000, 60000, 300000, 1_200_000, 1_800_000, 3600000, 2 * 3600000, 8 * 3600000, 24 * 3600000]) assert.equal(isWallClockInterval(ms), true, String(ms));
    for (const bad of [0, -1000, 500, 1500, 7000, 45000, 90000, 420000, 40 * 60000, 5 * 3600000, 48 * 3600000]) assert.equal(isWallClockInterval(bad), false, String(bad));
  });
});
