// Re-makes test/fixtures/captures/lab_ss_{main,detail}.v61 and lab_ss_figures.json: the two real ss
// passes the exporter runs (SS_ARGS, SS_DETAIL_ARGS), of a small lab in a fresh network namespace,
// with the lab's own measurement. test/fixtures/bin/ss-lab replays them, each for its own pass.
// Root. `npx tsx test/lab/capture-ss.ts`

import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { SS_ARGS, SS_DETAIL_ARGS } from '../../src/sources/ss.ts';
import { captureLab } from './capture.ts';

const OUT = new URL('../fixtures/captures/', import.meta.url);
const { taken, figures } = await captureLab((ns) => {
  const ss = (args: readonly string[]) =>
    execFileSync('ip', ['netns', 'exec', ns, 'ss', ...args], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C', COLUMNS: '200' } });
  return { main: ss(SS_ARGS), detail: ss(SS_DETAIL_ARGS) };
});
writeFileSync(new URL('lab_ss_main.v61', OUT), taken.main);
writeFileSync(new URL('lab_ss_detail.v61', OUT), taken.detail);
writeFileSync(new URL('lab_ss_figures.json', OUT), `${JSON.stringify(figures)}\n`);
console.log(`ss ${SS_ARGS.join(' ')}: ${taken.main.split('\n').length} lines; ss ${SS_DETAIL_ARGS.join(' ')}: ${taken.detail.split('\n').length} lines; lab ${JSON.stringify(figures)}`);
