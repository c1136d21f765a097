// The confinement of deploy/systemd/tcpstate-exporter.service, rebuilt without systemd as PID 1
// (none on these machines) from the unit's own lines, so a test can run the exporter under it:
//   SystemCallFilter= / SystemCallErrorNumber=  → a seccomp allow-list (test/helpers/seccomp-exec.py),
//     the groups expanded by `systemd-analyze syscall-filter`, as systemd 252 expands them;
//   RestrictAddressFamilies=                    → seccomp on socket()/socketpair();
//   RestrictNamespaces=yes                      → seccomp on unshare/setns/clone(CLONE_NEW*)/clone3;
//   MemoryDenyWriteExecute=yes (when asked)     → seccomp on mmap/mprotect/pkey_mprotect/shmat;
//   DynamicUser=, CapabilityBoundingSet= (empty), NoNewPrivileges= → setpriv: an unused uid/gid,
//     no supplementary groups, empty bounding/inheritable sets, no_new_privs;
//   PrivateUsers=yes                            → unshare --user (only that uid mapped);
//   with a drop-in (deploy/systemd/netns.conf): CapabilityBoundingSet=/AmbientCapabilities= listing
//     capabilities → those in the bounding, inheritable and ambient sets; PrivateUsers=no → no user
//     namespace; RestrictNamespaces=TYPE... → seccomp refusing every other namespace type;
//   ProtectSystem=strict, PrivateTmp=yes        → a private mount namespace: / read-only, /tmp a tmpfs.
// Not rebuilt (see docs/deploy-hardening.md): ProtectProc/ProcSubset (hidepid needs a new procfs),
// PrivateDevices, ProtectKernel*/ProtectClock/ProtectHostname/ProtectControlGroups (read-only or
// absent paths and capability checks the exporter never reaches), LockPersonality.

import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { ROOT } from './daemon.ts';

export const UNIT = `${ROOT}deploy/systemd/tcpstate-exporter.service`;

/**
 * test/helpers/seccomp-exec.py, copied under /var/tmp: the sandbox mounts a tmpfs over /tmp
 * (PrivateTmp=yes), which would hide the script when the checkout itself lives under /tmp.
 */
let seccompExec: string | undefined;
function seccompExecPath(): string {
  if (seccompExec !== undefined) return seccompExec;
  const dir = mkdtempSync(`/var/tmp/tcpstate-seccomp-${process.pid}-`);
  chmodSync(dir, 0o755);
  const path = `${dir}/seccomp-exec.py`;
  copyFileSync(`${ROOT}test/helpers/seccomp-exec.py`, path);
  chmodSync(path, 0o644);
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  seccompExec = path;
  return path;
}

/** Values of one setting in the [Service] section, in order (a setting may repeat). */
export function unitSettings(text: string, key: string): string[] {
  const out: string[] = [];
  let inService = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('[')) inService = line === '[Service]';
    else if (inService && line.startsWith(`${key}=`)) out.push(line.slice(key.length + 1));
  }
  return out;
}

function expandGroup(name: string, seen = new Set<string>()): string[] {
  if (!name.startsWith('@')) return [name];
  if (seen.has(name)) return [];
  seen.add(name);
  const out = execFileSync('systemd-analyze', ['syscall-filter', name], { encoding: 'utf8' });
  return out
    .split('\n')
    .slice(1)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .flatMap((l) => expandGroup(l, seen));
}

/**
 * The allow-list SystemCallFilter= lines make, read as systemd reads them: the first line decides
 * allow-list (no ~) or deny-list; later lines add (no ~) or remove (~) names and groups.
 */
export function allowedSyscalls(lines: readonly string[]): Set<string> {
  if (lines.length === 0 || lines[0]!.startsWith('~')) throw new Error('SystemCallFilter: expected an allow-list first');
  const allowed = new Set<string>();
  for (const line of lines) {
    const deny = line.startsWith('~');
    for (const item of (deny ? line.slice(1) : line).split(/\s+/).filter((x) => x !== '')) {
      for (const call of expandGroup(item)) {
        if (deny) allowed.delete(call);
        else allowed.add(call);
      }
    }
  }
  return allowed;
}

export interface SandboxOptions {
  /** The unit's text (default: the shipped unit). */
  unit?: string;
  /** Drop these system calls from the unit's allow-list (a control that the filter applies). */
  without?: readonly string[];
  /** Add MemoryDenyWriteExecute=yes's filter. */
  denyWriteExecute?: boolean;
  uid?: number;
}

/** A command line running `cmd` under the unit's confinement (needs root to set it up). */
export function sandboxed(cmd: readonly string[], o: SandboxOptions = {}): string[] {
  const unit = o.unit ?? readFileSync(UNIT, 'utf8');
  const calls = allowedSyscalls(unitSettings(unit, 'SystemCallFilter'));
  for (const c of o.without ?? []) calls.delete(c);
  const errnoName = unitSettings(unit, 'SystemCallErrorNumber')[0] ?? 'EPERM';
  const errnoValue = { EPERM: 1, EACCES: 13 }[errnoName];
  if (errnoValue === undefined) throw new Error(`SystemCallErrorNumber=${errnoName}: not known to this helper`);
  const families = unitSettings(unit, 'RestrictAddressFamilies').join(' ').split(/\s+/).filter((x) => x !== '');
  const uid = String(o.uid ?? 65534);
  // The last value of a setting wins, as a drop-in's does in systemd.
  const last = (key: string) => unitSettings(unit, key).at(-1);
  const caps = (last('AmbientCapabilities') ?? '').split(/\s+/).filter((c) => c !== '').map((c) => c.toLowerCase().replace(/^cap_/, ''));
  const bounding = (last('CapabilityBoundingSet') ?? '').split(/\s+/).filter((c) => c !== '').map((c) => c.toLowerCase().replace(/^cap_/, ''));
  for (const c of caps) if (!bounding.includes(c)) throw new Error(`AmbientCapabilities=${c} outside CapabilityBoundingSet=`);
  const capArgs =
    caps.length === 0
      ? ['--inh-caps=-all', '--bounding-set=-all']
      : [`--inh-caps=-all,${caps.map((c) => `+${c}`).join(',')}`, `--ambient-caps=-all,${caps.map((c) => `+${c}`).join(',')}`, `--bounding-set=-all,${bounding.map((c) => `+${c}`).join(',')}`];
  const restrictNs = last('RestrictNamespaces');
  const nsArgs = restrictNs === 'yes' ? ['--no-namespaces'] : restrictNs === undefined || restrictNs === 'no' ? [] : ['--namespaces', restrictNs.split(/\s+/).join(',')];
  // `cd /`: a system unit's working directory (WorkingDirectory= unset); the caller's may be hidden
  // by the private /tmp (a checkout under /tmp), and a child spawned from a vanished cwd fails with ENOENT.
  const mounts = 'mount -o remount,bind,ro / && mount -t tmpfs -o mode=1777 tmpfs /tmp && cd / && exec "$@"';
  return [
    'unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', mounts, 'sh',
    'setpriv', '--reuid', uid, '--regid', uid, '--clear-groups', ...capArgs, '--no-new-privs', '--',
    ...(last('PrivateUsers') === 'no' ? [] : ['unshare', '--user', '--map-current-user', '--']),
    '/usr/bin/python3', seccompExecPath(), '--allow', [...calls].join(','), '--errno', String(errnoValue),
    ...(families.length > 0 ? ['--families', families.join(',')] : []),
    ...nsArgs,
    ...(o.denyWriteExecute === true ? ['--deny-wx'] : []),
    '--', ...cmd,
  ];
}
