// Re-makes test/fixtures/netlink/{lab-*.bin,figures.json}: a real inet_diag dump of a small lab in a
// fresh network namespace, with the lab's own measurement. Root. `npx tsx test/lab/capture-netlink.ts`

import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { DEFAULT_NETLINK_HELPER } from '../../src/config.ts';
import { NETLINK_DUMPS } from '../../src/sources/netlink.ts';
import { captureLab } from './capture.ts';

const OUT = new URL('../fixtures/netlink/', import.meta.url);
// One file per dump, named after it (test/fixtures/bin/netlink-lab replays them).
const { taken: dumps, figures } = await captureLab((ns) => NETLINK_DUMPS.map((d) => [d, execFileSync('ip', ['netns', 'exec', ns, DEFAULT_NETLINK_HELPER, d])] as const));
for (const [d, bytes] of dumps) writeFileSync(new URL(`lab-${d.replace(':', '-')}.bin`, OUT), bytes);
writeFileSync(new URL('figures.json', OUT), `${JSON.stringify(figures)}\n`);
console.log(`dumps ${dumps.map(([d, b]) => `${d}: ${b.length} bytes`).join(', ')}; lab ${JSON.stringify(figures)}`);
