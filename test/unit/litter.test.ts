// Tests clean up after themselves: the test files that make temporary files, run with a private
// TMPDIR, must leave it empty (each `npm test` left /tmp/tcpstate-netlink-* directories behind).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../helpers/daemon.ts';

const MAKERS = ['test/unit/sources.test.ts', 'test/unit/report-injection.test.ts', 'test/e2e/rules-cli.test.ts'];

describe('test litter', () => {
  it(`${MAKERS.join(', ')} leave no temporary files`, () => {
    const dir = mkdtempSync(join(tmpdir(), `tcpstate-litter-${process.pid}-`));
    try {
      // TAP named: Node >= 23 prints the spec reporter by default even to a pipe (the count below is TAP's).
      // Without NODE_TEST_CONTEXT: set by this runner, it would make the inner runner run nothing.
      const env = { ...process.env };
      delete env.NODE_TEST_CONTEXT;
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', '--test-concurrency=1', ...MAKERS], {
        cwd: ROOT, encoding: 'utf8', timeout: 120_000, env: { ...env, TMPDIR: dir },
      });
      assert.equal(r.status, 0, r.stdout.slice(-2000));
      assert.match(r.stdout, new RegExp(`^# pass [1-9]`, 'm'));
      // tsx keeps its compile cache there (tsx-<uid>): the tool's, reused, not a test's litter.
      assert.deepEqual(readdirSync(dir).filter((f) => !/^tsx-\d+$/.test(f)), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
