import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { spawnSync } from 'node:child_process';

const SCRIPT = new URL('../fixtures/last-resort.ts', import.meta.url).pathname;

function run(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', SCRIPT, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, lines: r.stdout.split('\n').filter((l) => l !== ''), stderr: r.stderr };
}

describe('last-resort handlers', () => {
  it('log an unhandled rejection as one line and keep the process', () => {
    const r = run();
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.lines.length, 2, r.lines.join('\n'));
    assert.match(r.lines[0]!, /"level":50,.*"msg":"bug: unhandled promise rejection: lost"/);
    assert.equal(r.lines[1], 'still serving');
    assert.equal(r.stderr, '');
  });
  it('log an uncaught exception as one line and exit 1', () => {
    const r = run('throw');
    assert.equal(r.status, 1);
    assert.equal(r.lines.length, 3, r.lines.join('\n'));
    assert.match(r.lines[2]!, /"level":60,.*"msg":"bug: uncaught exception, exiting: boom"/);
    assert.equal(r.stderr, '');
  });
});

describe('--log.format logfmt', () => {
  it('prints errors and lists as text, never [object Object]', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', new URL('../fixtures/logfmt.ts', import.meta.url).pathname], { encoding: 'utf8', timeout: 20_000 });
    const lines = r.stdout.split('\n').filter((l) => l !== '');
    assert.equal(lines.length, 2, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout, /\[object Object\]/);
    assert.match(lines[0]!, /level=error .*err="ss killed after --ss.timeout=200ms: Command timed out" msg="source down"/);
    assert.match(lines[1]!, /level=debug .*sources="\[{\\"source\\":\\"ss\\",\\"up\\":true},{\\"source\\":\\"proc_tcp\\",\\"up\\":false}\]"/);
  });
});
