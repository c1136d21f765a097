// Comments, README and tests point to docs/kernel-and-ss.md#<anchor>: every such anchor exists, and
// nothing in the repository cites a document that is not in it.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ROOT } from '../helpers/daemon.ts';

const DOC = 'docs/kernel-and-ss.md';

describe('docs/kernel-and-ss.md references', () => {
  const doc = readFileSync(`${ROOT}${DOC}`, 'utf8');
  const anchors = new Set([...doc.matchAll(/<a id="([^"]+)"><\/a>/g)].map((m) => m[1]!));

  it('every #anchor used anywhere in the repository exists', () => {
    const hits = execFileSync('git', ['grep', '-n', '-o', '-E', 'kernel-and-ss\\.md#[a-z0-9-]+'], { cwd: ROOT, encoding: 'utf8' });
    const used = hits.split('\n').filter(Boolean);
    assert.ok(used.length > 5, 'the code points to the document');
    for (const line of used) {
      const anchor = line.slice(line.lastIndexOf('#') + 1);
      assert.ok(anchors.has(anchor), `${line}: no <a id="${anchor}"> in ${DOC}`);
    }
    for (const m of doc.matchAll(/\]\(#([a-z0-9-]+)\)/g)) assert.ok(anchors.has(m[1]!), `internal link #${m[1]}`);
  });

  it('every source file the document names exists', () => {
    for (const m of doc.matchAll(/`((?:src|test|native)\/[^`\s]+)`/g)) assert.ok(existsSync(`${ROOT}${m[1]}`), m[1]);
  });

  it('nothing cites the reference notes the project was written from (they are not in the repository)', () => {
    const name = ['DOM', 'AIN'].join('');
    let hits = '';
    try {
      hits = execFileSync('git', ['grep', '-n', name], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch (e) {
      // git grep exits 1 when nothing matches.
      if ((e as { status?: number }).status !== 1) throw e;
    }
    assert.equal(hits, '');
  });
});
