// README "What privileges, exactly", measured: the release tarball's `report` reads a socket lab
// in a network namespace of its own (root's sockets, orphans on zero-window peers) as root, as root
// without any capability, as an unprivileged user, and as root without each capability that could
// plausibly matter; with every source. Each must see what root sees: every socket, other users'
// owners and inodes (orphans are told by inode 0), tcp_info/skmeminfo (backoff, write memory) and
// the kernel-wide files. Prints the table it measured.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { installReleaseWithLab, type InstalledWithLab } from '../helpers/release.ts';

const NETNS = `tcpstate-priv-${process.pid}`;
const FW1 = 4;

const NOBODY = ['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups', '--bounding-set=-all', '--inh-caps=-all', '--no-new-privs', '--'];
const IDENTITIES: Record<string, string[]> = {
  root: [],
  'root, no capabilities': ['setpriv', '--bounding-set=-all', '--inh-caps=-all', '--'],
  'uid 65534, no capabilities': NOBODY,
  ...Object.fromEntries(
    ['net_admin', 'sys_admin', 'sys_ptrace', 'syslog', 'dac_override', 'dac_read_search'].map((c) => [`root without CAP_${c.toUpperCase()}`, ['setpriv', `--bounding-set=-${c}`, `--inh-caps=-${c}`, '--']]),
  ),
};

interface Report {
  states: Record<string, { sockets: number; sendQueueBytes: number; recvQueueBytes: number; orphanSockets: number; persistTimers: number }>;
  kernel: Record<string, unknown>;
  finWait1: { worstSockets: unknown[]; backoff?: { count: number }; writeMemory?: { count: number } };
}

/** What must not depend on privilege: counts, bytes, orphans, timers, tcp_info fields, kernel files read. */
function summary(r: Report) {
  const states = Object.fromEntries(
    Object.entries(r.states).map(([s, f]) => [s, [f.sockets, f.sendQueueBytes, f.recvQueueBytes, f.orphanSockets, f.persistTimers]]),
  );
  const f = r.finWait1;
  // Sockets with a backoff / write memory read from tcp_info / skmeminfo (absent with /proc).
  return { states, kernel: Object.keys(r.kernel).sort(), worst: f.worstSockets.length, backoff: f.backoff?.count ?? 0, writeMemory: f.writeMemory?.count ?? 0 };
}

describe('privileges: what each source sees, by identity', { timeout: 300_000 }, () => {
  let setup: InstalledWithLab;
  const table: string[] = [];

  const privateCwd = mkdtempSync(join(tmpdir(), `tcpstate-priv-cwd-${process.pid}-`)); // mode 0700
  before(async () => {
    setup = await installReleaseWithLab(NETNS, FW1);
  });
  after(async () => {
    rmSync(privateCwd, { recursive: true, force: true });
    await setup?.stop();
    process.stdout.write(`# privileges measured (kptr_restrict=${readFileSync('/proc/sys/kernel/kptr_restrict', 'utf8').trim()}):\n${table.map((l) => `# ${l}\n`).join('')}`);
  });

  const report = (prefix: string[], args: string[]): Report => {
    const cmd = ['ip', 'netns', 'exec', NETNS, ...prefix, process.execPath, `${setup.rel.dir}/dist/main.js`, 'report', '--format', 'json', ...args];
    // Started from a directory only root may enter (a checkout under /root, as on a fresh machine):
    // the unprivileged identities must still be able to run ss and the helper.
    return JSON.parse(execFileSync(cmd[0]!, cmd.slice(1), { cwd: privateCwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })) as Report;
  };

  for (const source of ['netlink', 'ss', 'proc'] as const) {
    it(`--source ${source}: every identity sees what root sees`, () => {
      const want = summary(report([], ['--source', source]));
      // The lab is there, owned by root, orphans told apart.
      assert.equal(want.states['fin_wait1']![0], FW1);
      assert.equal(want.states['fin_wait1']![3], FW1, 'orphans (inode 0) recognised');
      assert.equal(want.states['fin_wait1']![4], FW1, 'persist timers');
      if (source !== 'proc') assert.equal(want.backoff, FW1, 'tcp_info backoff of root\'s sockets');
      for (const [who, prefix] of Object.entries(IDENTITIES)) {
        const got = summary(report(prefix, ['--source', source]));
        assert.deepEqual(got, want, `${source} as ${who}`);
        table.push(`${source}: ${who}: ${got.states['fin_wait1']![0]} FIN-WAIT-1, ${got.states['fin_wait1']![3]} orphans, backoff on ${got.backoff}, kernel files ${got.kernel.length}: same as root`);
      }
    });
  }

  it('/proc/net/tcp shows other users\' owners, inodes and (kptr_restrict permitting) socket pointers unprivileged', () => {
    const rows = (prefix: string[]) =>
      execFileSync('ip', ['netns', 'exec', NETNS, ...prefix, 'cat', '/proc/net/tcp'], { encoding: 'utf8' })
        .split('\n')
        .slice(1)
        .filter((l) => l.trim() !== '')
        .map((l) => l.trim().split(/\s+/));
    const asRoot = rows([]);
    const asNobody = rows(NOBODY);
    assert.equal(asNobody.length, asRoot.length);
    // uid (column 8) and inode (column 10) of root's established sockets, as root sees them.
    const key = (r: string[]) => `${r[1]} ${r[2]} ${r[3]} ${r[7]} ${r[9]}`;
    assert.deepEqual(asNobody.map(key).sort(), asRoot.map(key).sort());
    const kptr = readFileSync('/proc/sys/kernel/kptr_restrict', 'utf8').trim();
    const pointers = asNobody.filter((r) => !/^0+$/.test(r[11] ?? '0')).length;
    table.push(`/proc/net/tcp as uid 65534: ${asNobody.length} rows, owners and inodes as root sees them; non-zero socket pointers ${pointers} (kptr_restrict=${kptr})`);
    if (kptr === '0') assert.equal(pointers, asNobody.length);
  });

  it('--path.procfs: kernel-wide files readable unprivileged; the table and tcp_mem follow the network namespace', () => {
    // A "container" with its own network namespace reading /proc: it sees its namespace's sockets,
    // and the host-wide tcp_mem / tcp_max_orphans files do not exist there.
    const r = report(NOBODY, ['--source', 'proc', '--path.procfs', '/proc']);
    assert.equal(r.states['fin_wait1']!.sockets, FW1, 'the namespace\'s own table');
    assert.equal(r.kernel['memoryLimitBytes'], undefined, 'tcp_mem only in the initial namespace');
    assert.equal(r.kernel['orphansLimit'], undefined, 'tcp_max_orphans only in the initial namespace');
    assert.equal(typeof r.kernel['orphans'], 'number', 'sockstat (host-wide orphans) is readable');
    table.push('--path.procfs=/proc in a network namespace, uid 65534: its own sockets; sockstat read; tcp_mem, tcp_max_orphans absent (host namespace only)');
  });
});
