// scripts/build-native.sh: a compiler that warns more than today's must not fail an install or an
// image build (TCPSTATE_NATIVE_REQUIRED=1), while this repository's own code stays warning-free
// under the compiler CI uses.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

const ROOT = new URL('../../', import.meta.url).pathname;
const compiler = ['cc', 'gcc'].find((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0);

describe('build-native.sh', () => {
  const dir = mkdtempSync(join(tmpdir(), `tcpstate-build-native-${process.pid}-`));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('has a C compiler to test with (scripts/debian-setup.sh installs gcc)', () => {
    assert.ok(compiler, 'no cc or gcc on PATH');
  });

  it('native/tcpstate-diag.c compiles without a warning (-Wall -Wextra -Werror)', () => {
    execFileSync(compiler ?? 'cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-std=c11', '-fsyntax-only', join(ROOT, 'native/tcpstate-diag.c')], {
      stdio: 'pipe',
    });
  });

  it('a newer compiler warning is printed, not a failed build, even when the helper is required', () => {
    // A copy of the script and the source; the "newer compiler" adds a warning -Wall reports.
    mkdirSync(join(dir, 'scripts'));
    cpSync(join(ROOT, 'scripts/build-native.sh'), join(dir, 'scripts/build-native.sh'));
    cpSync(join(ROOT, 'native'), join(dir, 'native'), { recursive: true });
    writeFileSync(join(dir, 'extra.h'), 'static int tcpstate_new_warning(void) { return 0; }\n');
    const cc = join(dir, 'newer-cc');
    writeFileSync(cc, `#!/bin/sh\nexec ${compiler ?? 'cc'} -include ${join(dir, 'extra.h')} "$@"\n`);
    chmodSync(cc, 0o755);
    const r = spawnSync('sh', [join(dir, 'scripts/build-native.sh')], {
      env: { ...process.env, CC: cc, TCPSTATE_NATIVE_REQUIRED: '1' },
      encoding: 'utf8',
    });
    assert.match(r.stderr, /tcpstate_new_warning/, 'the warning is shown');
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(join(dir, 'build/tcpstate-diag')));
  });
});
