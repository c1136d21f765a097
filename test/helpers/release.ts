// The documented install path for tests: scripts/release-tarball.sh, unpacked under /var/tmp (not
// /tmp, which the unit sandbox replaces; readable by an unprivileged uid, unlike a checkout under
// /root may be).

import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, createNetns, deleteNetns } from '../lab/lab.ts';
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

export interface InstalledWithLab {
  rel: Installed;
  lab: Lab;
  /** Stops the lab, deletes its namespace, removes the release. */
  stop(): Promise<void>;
}

/**
 * The release installed as above, and a lab of `finWait1` orphaned FIN-WAIT-1 sockets and 3
 * established connections in a network namespace created here (`netns`, unique per process).
 * What was set up is torn down again if a later step fails.
 */
export async function installReleaseWithLab(netns: string, finWait1: number): Promise<InstalledWithLab> {
  let rel: Installed | undefined;
  let lab: Lab | undefined;
  const stop = async (): Promise<void> => {
    await lab?.stop();
    await deleteNetns(netns);
    rel?.remove();
  };
  try {
    rel = installRelease();
    await createNetns(netns);
    lab = await Lab.start({ finWait1, established: 3, timeWait: 0, netns });
    return { rel, lab, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
