// The documented install path for tests: scripts/release-tarball.sh, unpacked under /var/tmp (not
// /tmp, which the unit sandbox replaces; readable by an unprivileged uid, unlike a checkout under
// /root may be).

import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './daemon.ts';

export interface Installed {
  /** The unpacked tarball's top directory (what /opt/tcpstate-exporter holds). */
  dir: string;
  tarball: string;
  remove(): void;
}

export function installRelease(): Installed {
  const work = mkdtempSync(`/var/tmp/tcpstate-release-${process.pid}-`);
  chmodSync(work, 0o755);
  const tarball = execFileSync('sh', ['scripts/release-tarball.sh', join(work, 'out')], { cwd: ROOT, encoding: 'utf8' }).trim();
  execFileSync('tar', ['-C', work, '-xzf', tarball]);
  const top = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n')[0]!.replace(/\/$/, '');
  return { dir: join(work, top), tarball, remove: () => rmSync(work, { recursive: true, force: true }) };
}
