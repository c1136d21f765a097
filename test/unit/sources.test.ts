import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { promisify } from 'node:util';
import { DEFAULT_NETLINK_HELPER } from '../../src/config.ts';
import type { ParseSink } from '../../src/model.ts';
import { NETLINK_DUMPS, NetlinkHelper, netlinkHelperInstalled, netlinkReader } from '../../src/sources/netlink.ts';
import { procReaders } from '../../src/sources/proc.ts';
import { SS_ARGS, SS_DETAIL_ARGS, ssReader } from '../../src/sources/ss.ts';
import { runChild } from '../../src/sources/child.ts';
import { errorText } from '../../src/log.ts';
import { runReader } from '../helpers/readers.ts';

const FIX = new URL('../fixtures/', import.meta.url).pathname;
const signal = new AbortController().signal;

/** A netlink helper whose first start runs `firstStart` (sh) instead; later starts replay the lab. */
function helperFailingOnce(firstStart: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'tcpstate-netlink-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'netlink-helper');
  const marker = join(dir, 'started');
  writeFileSync(path, `#!/bin/sh\nif [ ! -e ${marker} ]; then touch ${marker}; ${firstStart}; fi\nexec ${FIX}bin/netlink-lab "$@"\n`);
  chmodSync(path, 0o755);
  return path;
}

describe('ss source', () => {
  it('reads a whole capture through the streaming parser', async () => {
    const r = await runReader(ssReader({ path: `${FIX}bin/ss-v61`, timeoutMs: 5000 }), signal);
    assert.equal(r.up, true);
    assert.equal(r.table!.ipv4!.listen.sockets + r.table!.ipv6!.listen.sockets, 6);
    assert.equal(r.parseErrors, 0);
  });
  it('kills ss at the timeout and reports it', async () => {
    const started = Date.now();
    const r = await runReader(ssReader({ path: `${FIX}bin/ss-hang`, timeoutMs: 300 }), signal);
    assert.equal(r.up, false);
    assert.match(r.error!.message, /killed after --ss\.timeout=300ms/);
    assert.equal(r.table, undefined);
    assert.ok(Date.now() - started < 5000);
  });
  it('names a missing binary', async () => {
    const r = await runReader(ssReader({ path: '/nonexistent/ss', timeoutMs: 1000 }), signal);
    assert.equal(r.up, false);
    assert.match(r.error!.message, /ss not found at --ss\.path=\/nonexistent\/ss/);
  });
  it('a missing binary reads the same whichever pass found it: one log line when ss goes missing between two passes', async () => {
    // The fault matrix removes ss while the daemon polls: one poll's detail pass found it gone, the
    // next poll's main pass; the log dedupes by the text, which named each pass's arguments.
    const run = (args: string[]) =>
      runChild({ path: '/nonexistent/ss', args, deadline: Date.now() + 1000, signal, pathFlag: '--ss.path', timeoutFlag: '--ss.timeout', timeoutMs: 1000, missingHint: 'install iproute2' }, () => undefined);
    const [main, detail] = await Promise.all([run([...SS_ARGS]), run([...SS_DETAIL_ARGS])]);
    assert.equal(errorText(main!), 'ss not found at --ss.path=/nonexistent/ss (install iproute2)');
    assert.equal(errorText(detail!), errorText(main!));
  });
  it('reports exit status and stderr of a failing ss', async () => {
    const r = await runReader(ssReader({ path: `${FIX}bin/ss-broken`, timeoutMs: 1000 }), signal);
    assert.equal(r.up, false);
    assert.match(r.error!.message, /exit code 1.*Cannot open netlink socket/s);
  });
  it('is cancelled by the abort signal (shutdown)', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const r = await runReader(ssReader({ path: `${FIX}bin/ss-hang`, timeoutMs: 10_000 }), ac.signal);
    assert.equal(r.up, false);
    assert.match(r.error!.message, /cancelled/);
  });
});

describe('netlink source', () => {
  // The helper stays up until its owner stops it: every test stops its own.
  const helper = (path: string, timeoutMs = 5000) => {
    const h = new NetlinkHelper({ path, timeoutMs });
    after(() => h.stop());
    return h;
  };
  const read = (h: NetlinkHelper) => runReader(netlinkReader(h));

  it('reads a real dump of the lab through the binary parser, poll after poll, with one helper', async () => {
    const h = helper(`${FIX}bin/netlink-lab`);
    const fig = JSON.parse(readFileSync(`${FIX}netlink/figures.json`, 'utf8')) as Record<string, number>;
    for (let poll = 0; poll < 3; poll++) {
      const r = await read(h);
      assert.equal(r.up, true, r.error?.message);
      assert.equal(r.parseErrors, 0);
      assert.equal(r.table!.ipv4!.fin_wait1.orphanSockets, fig.fin_wait1);
      assert.equal(r.table!.ipv4!.fin_wait1.sendQueueBytes, fig.fin_wait1_send_queue_without_fin! + fig.fin_wait1!);
      assert.equal(r.table!.ipv4!.established.sockets, fig.established);
      assert.equal(r.table!.ipv6!.established.sockets, 0);
    }
  });
  it('a helper that dies inside a dump: a failure, not a smaller table; the next poll starts a new one', async () => {
    // The first helper dies after half a dump; the one started after it works.
    const h = helper(helperFailingOnce(`read -r _; head -c 1000 ${FIX}netlink/lab-1fee.bin; exit 3`));
    const r = await read(h);
    assert.equal(r.up, false);
    assert.match(r.error!.message, /exit code 3/);
    const again = await read(h);
    assert.equal(again.up, true, again.error?.message);
  });
  it('a helper killed at the timeout does not end the round of the one started after it', async () => {
    const slow = helperFailingOnce('exec sleep 30');
    const r = await read(helper(slow, 300));
    assert.match(r.error!.message, /killed after --netlink\.timeout=300ms/);
    const h = helper(slow);
    for (let poll = 0; poll < 3; poll++) {
      const again = await read(h);
      assert.equal(again.up, true, again.error?.message);
    }
  });
  it('keeps nothing of a round once it is over (the helper lives on, poll data must not)', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const h = helper(`${FIX}bin/netlink-lab`);
    const refs: Array<WeakRef<ParseSink>> = [];
    for (let poll = 0; poll < 5; poll++) {
      let records = 0;
      const sink: ParseSink = { record: () => void records++, error: () => undefined };
      refs.push(new WeakRef(sink));
      await h.read(sink);
      assert.ok(records > 0);
    }
    await new Promise((r) => setImmediate(r));
    gc();
    assert.deepEqual(refs.slice(0, 4).map((r) => r.deref() === undefined), [true, true, true, true]);
  });
  it('names a missing helper and how to build it', async () => {
    const h = helper('/nonexistent/tcpstate-diag', 1000);
    const r = await read(h);
    assert.equal(r.up, false);
    assert.match(r.error!.message, /tcpstate-diag not found at --netlink\.helper=\/nonexistent\/tcpstate-diag \(build it with `npm run build:native`/);
    assert.equal(await h.installed(), false);
  });
  it('reports exit status and stderr of a failing helper', async () => {
    const r = await read(helper(`${FIX}bin/netlink-broken`, 1000));
    assert.equal(r.up, false);
    assert.match(r.error!.message, /exit code 2.*inet_diag dump \(IPv4\): No such file or directory/s);
  });
  it('kills a hanging helper at --netlink.timeout', async () => {
    const started = Date.now();
    const r = await read(helper(`${FIX}bin/ss-hang`, 300));
    assert.equal(r.up, false);
    assert.match(r.error!.message, /ss-hang killed after --netlink\.timeout=300ms/);
    assert.ok(Date.now() - started < 5000);
  });
  it('stop() ends the helper and the round in progress; no later round starts it again', async () => {
    const h = helper(`${FIX}bin/ss-hang`, 10_000);
    const reading = read(h);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(h.running, true);
    await h.stop();
    const r = await reading;
    assert.equal(r.up, false);
    assert.match(r.error!.message, /cancelled/);
    assert.equal(h.running, false);
    assert.match((await read(h)).error!.message, /cancelled/);
    assert.equal(h.running, false);
  });
  it('a poll\'s signal cancels its round', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const r = await runReader(netlinkReader(helper(`${FIX}bin/ss-hang`, 10_000)), ac.signal);
    assert.equal(r.up, false);
    assert.match(r.error!.message, /cancelled/);
  });
  it('the helper is built (npm ci runs scripts/build-native.sh; needs gcc and libc6-dev) and serves this host', async () => {
    assert.ok(await netlinkHelperInstalled(DEFAULT_NETLINK_HELPER), `${DEFAULT_NETLINK_HELPER} missing: run npm run build:native`);
    const h = helper(DEFAULT_NETLINK_HELPER);
    for (let poll = 0; poll < 2; poll++) {
      const r = await read(h);
      assert.equal(r.up, true, r.error?.message);
      assert.equal(r.parseErrors, 0);
    }
  });
  it('the helper: one-shot dumps equal one --serve round; usage errors', async () => {
    const run = promisify(execFile);
    const oneShot = await run(DEFAULT_NETLINK_HELPER, ['400'], { encoding: 'buffer' }); // LISTEN only: stable
    const served = await run('sh', ['-c', `echo | ${DEFAULT_NETLINK_HELPER} --serve 400 400 3>/dev/null`], { encoding: 'buffer' });
    const types = (b: Buffer) => {
      const t: number[] = [];
      for (let o = 0; o + 16 <= b.length; o += b.readUInt32LE(o)) t.push(b.readUInt16LE(o + 4));
      return t;
    };
    assert.deepEqual(types(served.stdout), types(oneShot.stdout));
    assert.equal(types(oneShot.stdout).filter((t) => t === 3).length, 2, 'one NLMSG_DONE per family');
    await assert.rejects(run(DEFAULT_NETLINK_HELPER, ['10:zz']), (e: { code?: number; stderr?: string }) => e.code === 1 && /bad dump spec '10:zz'/.test(e.stderr ?? ''));
    await assert.rejects(run('sh', ['-c', `echo | ${DEFAULT_NETLINK_HELPER} --serve 400 400 3>&-`]), (e: { code?: number; stderr?: string }) => e.code === 1 && /needs fd 3 open/.test(e.stderr ?? ''));
    const { stdout } = await run(DEFAULT_NETLINK_HELPER, ['--help']);
    assert.match(stdout, /usage: tcpstate-diag \[--serve \| --netns NSFILE\] STATES\[:EXT\]/);
    assert.deepEqual(NETLINK_DUMPS, ['1fee', '10:42'], 'test/fixtures/bin/netlink-lab replays these dumps');
  });
});

describe('proc source', () => {
  it('reads tcp and tcp6 as two sources', async () => {
    const [v4, v6] = await Promise.all(procReaders(`${FIX}proc`).map((r) => runReader(r)));
    assert.deepEqual([v4!.source, v4!.up, v6!.source, v6!.up], ['proc_tcp', true, 'proc_tcp6', true]);
    assert.equal(v4!.table!.ipv4!.listen.sockets, 4);
    assert.equal(v6!.table!.ipv6!.listen.sockets, 2);
  });
  it('a missing tcp6 (IPv6 disabled) is up and empty', async () => {
    const v6 = await runReader(procReaders(`${FIX}proc-no-ipv6`)[1]!);
    assert.deepEqual([v6.up, v6.absent, v6.table!.ipv6!.established.sockets], [true, true, 0]);
  });
  it('a missing tcp is a failure naming the path', async () => {
    const v4 = await runReader(procReaders(`${FIX}nonexistent`)[0]!);
    assert.equal(v4.up, false);
    assert.match(v4.error!.message, /reading .*nonexistent\/net\/tcp: ENOENT/);
  });
  it('a broken file: bad lines counted, good lines kept', async () => {
    const v4 = await runReader(procReaders(`${FIX}proc-broken`)[0]!);
    assert.equal(v4.up, true);
    assert.equal(v4.parseErrors, 2);
    assert.match(v4.firstParseError!.reason, /truncated/);
    assert.equal(v4.table!.ipv4!.listen.sockets, 1);
    assert.equal(v4.table!.ipv4!.time_wait.sockets, 1);
  });
});
