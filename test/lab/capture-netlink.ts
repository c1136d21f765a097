// Re-makes test/fixtures/netlink/{lab-*.bin,figures.json}: a real inet_diag dump of a small lab in a
// fresh network namespace, with the lab's own measurement. Root. `npx tsx test/lab/capture-netlink.ts`

import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { DEFAULT_NETLINK_HELPER } from '../../src/config.ts';
import { NETLINK_DUMPS } from '../../src/sources/netlink.ts';
import { Lab, createNetns, deleteNetns } from './lab.ts';

const OUT = new URL('../fixtures/netlink/', import.meta.url);
const ns = `tcpstate-capture-${process.pid}`;
await createNetns(ns);
const lab = await Lab.start({ finWait1: 5, established: 3, timeWait: 4, netns: ns });
try {
  await new Promise((r) => setTimeout(r, 1500));
  const before = await lab.measure();
  // One file per dump, named after it (test/fixtures/bin/netlink-lab replays them).
  const dumps = NETLINK_DUMPS.map((d) => [d, execFileSync('ip', ['netns', 'exec', ns, DEFAULT_NETLINK_HELPER, d])] as const);
  const after = await lab.measure();
  if (JSON.stringify(before) !== JSON.stringify(after)) throw new Error('lab moved during capture');
  for (const [d, bytes] of dumps) writeFileSync(new URL(`lab-${d.replace(':', '-')}.bin`, OUT), bytes);
  writeFileSync(new URL('figures.json', OUT), `${JSON.stringify(after)}\n`);
  console.log(`dumps ${dumps.map(([d, b]) => `${d}: ${b.length} bytes`).join(', ')}; lab ${JSON.stringify(after)}`);
} finally {
  await lab.stop();
  await deleteNetns(ns);
}
