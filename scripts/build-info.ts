// Writes dist/build-info.json after `tsc` (npm's postbuild): the version from package.json and the
// git commit the build was made from, so that --version and tcpstate_build_info say which code runs.
// The commit comes from TCPSTATE_BUILD_REVISION when set (the image build passes it as an ARG: its
// context has no .git), else `git rev-parse HEAD` (with "-dirty" for uncommitted changes), else
// "unknown" (a source tarball outside git). Nothing of this is committed.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';

const root = new URL('../', import.meta.url);
const git = (...args: string[]): string => execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();

function revision(): string {
  const given = process.env.TCPSTATE_BUILD_REVISION?.trim();
  if (given) return given;
  try {
    const head = git('rev-parse', 'HEAD');
    const dirty = git('status', '--porcelain', '--untracked-files=no') !== '';
    return dirty ? `${head}-dirty` : head;
  } catch {
    return 'unknown';
  }
}

const { version } = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { version: string };
const info = { version, revision: revision() };
mkdirSync(new URL('dist/', root), { recursive: true });
writeFileSync(new URL('dist/build-info.json', root), `${JSON.stringify(info, null, 2)}\n`);
process.stdout.write(`dist/build-info.json: ${info.version} ${info.revision}\n`);
