// Zombies when the exporter is PID 1 (a container without an init): the netlink helper is killed
// at --ss.timeout, and any process it forked outlived it, was reparented to PID 1 and never
// reaped. The helper must leave nothing behind when it is killed mid-round. Needs root (unshare).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { DEFAULT_NETLINK_HELPER } from '../../src/config.ts';

const SCRIPT = new URL('../fixtures/pid1-helper-kills.ts', import.meta.url).pathname;

describe('netlink helper killed mid-round under a PID 1 that never reaps', () => {
  it('leaves no zombie (100 kills; the forking helper left 17-97)', () => {
    const out = execFileSync(
      'unshare',
      ['--pid', '--fork', '--mount-proc', process.execPath, '--import', 'tsx', SCRIPT, DEFAULT_NETLINK_HELPER, '100'],
      { encoding: 'utf8', timeout: 60_000 },
    );
    const r = JSON.parse(out.trim()) as { pid: number; zombies: number };
    assert.equal(r.pid, 1, 'the script must run as PID 1');
    assert.equal(r.zombies, 0);
  });
});
