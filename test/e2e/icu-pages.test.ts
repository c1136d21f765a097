// The daemon as it ships maps none of the node binary's ICU date and locale data. node-cron, the
// scheduler until 0.1.x, formatted the date with Intl.DateTimeFormat at every tick, which paged in
// ~5 MiB of ICU data (and as much ICU code) in every exporter process (docs/performance.md,
// "Memory"). A bare node running one formatToParts() is the control: it shows the probe sees ICU.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { startDaemon, waitForPoll, type Daemon } from '../helpers/daemon.ts';
import { icuData, icuResidentKiB } from '../helpers/icu-pages.ts';

/** KiB of ICU data resident in a bare node (this test's binary) after running `code`. */
async function bareNode(code: string): Promise<number> {
  const child = spawn(process.execPath, ['-e', `${code}; console.log('ready'); setInterval(() => {}, 1000)`], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise((resolve, reject) => {
      child.stdout.once('data', resolve);
      child.once('exit', (code) => reject(new Error(`node -e exited with ${code}`)));
    });
    return icuResidentKiB(child.pid!, process.execPath);
  } finally {
    child.kill();
  }
}

describe('footprint: no ICU date or locale data in the daemon', () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon(['--poll.interval', '1s', '--log.level', 'debug']);
    for (let i = 0; i < 3; i++) await waitForPoll(d); // the first poll and two ticks of the schedule
  });
  after(async () => d.stop());

  it('pages in less than half the ICU data that one date formatting pages in (a bare node is the base)', async () => {
    const icu = icuData(process.execPath);
    assert.ok(icu.size > 8 * 1024 * 1024, `icudt: ${icu.size} bytes`);
    const idle = await bareNode('');
    const formatted = await bareNode("new Intl.DateTimeFormat('en-US', { hour: '2-digit', weekday: 'short', hour12: false }).formatToParts(new Date())");
    for (let i = 0; i < 20; i++) await (await fetch(`${d.url}/metrics`)).text();
    const daemon = icuResidentKiB(d.child.pid!, process.execPath, icu);
    const figures = `ICU data resident: bare node ${idle} KiB, after one formatToParts ${formatted} KiB, daemon after 3 polls and 20 scrapes ${daemon} KiB`;
    assert.ok(formatted - idle >= 2048, `the control does not show ICU pages: ${figures}`);
    assert.ok(daemon - idle < (formatted - idle) / 2, figures);
  });
});
