// `npm run lab` changes the network it runs in: never the host's unless told so in so many words.

import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { ROOT } from '../helpers/daemon.ts';

const CLI = ['--import', 'tsx', 'test/lab/cli.ts'];
const namespaces = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });

describe('npm run lab', () => {
  it('refuses to run without --netns or --host, and builds nothing', () => {
    const r = spawnSync(process.execPath, [...CLI, '--fin-wait1', '5'], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--netns +in a private network namespace/);
    assert.match(r.stderr, /--host .*THIS HOST's loopback/);
    assert.equal(r.stdout, '');
  });

  it('--netns builds the lab in a namespace of its own, and Ctrl-C deletes it', async () => {
    const child = spawn(process.execPath, [...CLI, '--netns', '--fin-wait1', '3', '--established', '2', '--time-wait', '0'], { cwd: ROOT });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise<number | null>((r) => child.once('exit', r));
    const netns = `tcpstate-lab-${child.pid}`;
    const until = Date.now() + 30_000;
    while (!out.includes('the exporter should show') && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    assert.match(out, new RegExp(`ip netns exec ${netns} npm start`));
    assert.match(out, /tcpstate_sockets\{state="fin_wait1"\} +\+3/);
    assert.match(namespaces(), new RegExp(`^${netns}\\b`, 'm'));
    const hostLab = execFileSync('ss', ['-Htn', 'state', 'fin-wait-1', '( sport = :17001 )'], { encoding: 'utf8' });
    assert.equal(hostLab, '', 'no lab socket on the host');
    child.kill('SIGINT');
    assert.equal(await exited, 0, out);
    assert.doesNotMatch(namespaces(), new RegExp(`^${netns}\\b`, 'm'));
  });
});
