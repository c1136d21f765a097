// Re-makes test/fixtures/captures/lab_ss_{main,detail}.v61 and lab_ss_figures.json: the two real ss
// passes the exporter runs (SS_ARGS, SS_DETAIL_ARGS), of a small lab in a fresh network namespace,
// with the lab's own measurement. test/fixtures/bin/ss-lab replays them, each for its own pass.
// Root. `npx tsx test/lab/capture-ss.ts`

import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { SS_ARGS, SS_DETAIL_ARGS } from '../../src/sources/ss.ts';
import { Lab, createNetns, deleteNetns } from './lab.ts';

const OUT = new URL('../fixtures/captures/', import.meta.url);
const ns = `tcpstate-capture-${process.pid}`;
await createNetns(ns);
const lab = await Lab.start({ finWait1: 5, established: 3, timeWait: 4, netns: ns });
try {
  await new Promise((r) => setTimeout(r, 1500));
  const before = await lab.measure();
  const ss = (args: readonly string[]) => execFileSync('ip', ['netns', 'exec', ns, 'ss', ...args], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C', COLUMNS: '200' } });
  const main = ss(SS_ARGS);
  const detail = ss(SS_DETAIL_ARGS);
  const after = await lab.measure();
  if (JSON.stringify(before) !== JSON.stringify(after)) throw new Error('lab moved during capture');
  writeFileSync(new URL('lab_ss_main.v61', OUT), main);
  writeFileSync(new URL('lab_ss_detail.v61', OUT), detail);
  writeFileSync(new URL('lab_ss_figures.json', OUT), `${JSON.stringify(after)}\n`);
  console.log(`ss ${SS_ARGS.join(' ')}: ${main.split('\n').length} lines; ss ${SS_DETAIL_ARGS.join(' ')}: ${detail.split('\n').length} lines; lab ${JSON.stringify(after)}`);
} finally {
  await lab.stop();
  await deleteNetns(ns);
}
