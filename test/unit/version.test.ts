// --version and tcpstate_build_info carry the commit: scripts/build-info.ts records it at build time
// (git, an override for image builds, "unknown" outside git); src/version.ts reads it back.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, it } from 'node:test';
import { createRegistry } from '../../src/metrics/registry.ts';
import { readRevision } from '../../src/version.ts';
import { ROOT } from '../helpers/daemon.ts';
import { FinWait1ExitTally } from '../../src/aggregate/forensics.ts';

const dir = mkdtempSync(join(tmpdir(), `tcpstate-version-${process.pid}-`));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs scripts/build-info.ts from a copy in `root` (with its package.json); returns what it wrote. */
function buildInfo(root: string, env: NodeJS.ProcessEnv = {}): { version: string; revision: string } {
  mkdirSync(join(root, 'scripts'), { recursive: true });
  copyFileSync(`${ROOT}scripts/build-info.ts`, join(root, 'scripts/build-info.ts'));
  copyFileSync(`${ROOT}package.json`, join(root, 'package.json'));
  const clean = { ...process.env, TCPSTATE_BUILD_REVISION: '', GIT_DIR: undefined, ...env };
  execFileSync(process.execPath, ['--import', 'tsx', join(root, 'scripts/build-info.ts')], { cwd: ROOT, env: clean, stdio: 'pipe' });
  return JSON.parse(readFileSync(join(root, 'dist/build-info.json'), 'utf8')) as { version: string; revision: string };
}

describe('build info', () => {
  it('records git HEAD in a checkout', () => {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const root = join(dir, 'checkout');
    mkdirSync(root);
    execFileSync('git', ['init', '-q'], { cwd: root });
    const info = buildInfo(root);
    // A fresh repository without commits has no HEAD: "unknown", never a crash.
    assert.equal(info.revision, 'unknown');
    execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '--allow-empty', '-m', 'x'], { cwd: root });
    const sub = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    assert.match(buildInfo(root).revision, new RegExp(`^${sub}(-dirty)?$`));
    assert.notEqual(sub, head);
  });

  it('takes TCPSTATE_BUILD_REVISION first (image builds have no .git)', () => {
    const root = join(dir, 'arg');
    assert.equal(buildInfo(root, { TCPSTATE_BUILD_REVISION: 'abc1234' }).revision, 'abc1234');
  });

  it('says "unknown" outside git, with the package version', () => {
    const root = join(dir, 'plain');
    const info = buildInfo(root, { GIT_CEILING_DIRECTORIES: dir });
    assert.equal(info.revision, 'unknown');
    assert.equal(info.version, (JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version: string }).version);
  });

  it('readRevision: the recorded revision, else "unknown"', () => {
    const f = join(dir, 'info.json');
    writeFileSync(f, '{"version":"1.2.3","revision":"deadbeef"}');
    assert.equal(readRevision(pathToFileURL(f)), 'deadbeef');
    writeFileSync(f, '{"revision":""}');
    assert.equal(readRevision(pathToFileURL(f)), 'unknown');
    writeFileSync(f, 'not json');
    assert.equal(readRevision(pathToFileURL(f)), 'unknown');
    assert.equal(readRevision(pathToFileURL(join(dir, 'missing.json'))), 'unknown');
  });

  it('tcpstate_build_info carries the revision', async () => {
    const view = { snapshot: () => undefined, stats: () => ({ pollsTotal: 0, pollsSkippedTotal: 0, parseErrorsTotal: new Map(), untrackedTotal: 0, finWait1Exits: new FinWait1ExitTally().view() }) } as unknown as Parameters<typeof createRegistry>[0]['view'];
    const text = await createRegistry({ view, version: '9.9.9', revision: 'cafe', defaultMetrics: false }).metrics();
    assert.match(text, /^tcpstate_build_info\{version="9\.9\.9",revision="cafe",nodejs="v[^"]+"\} 1$/m);
  });
});
