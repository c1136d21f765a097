import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readProc } from '../../src/sources/proc.ts';
import { readSs } from '../../src/sources/ss.ts';

const FIX = new URL('../fixtures/', import.meta.url).pathname;
const signal = new AbortController().signal;

describe('ss source', () => {
  it('reads a whole capture through the streaming parser', async () => {
    const r = await readSs({ path: `${FIX}bin/ss-v61`, timeoutMs: 5000 }, signal);
    assert.equal(r.up, true);
    assert.equal(r.table!.ipv4!.listen.sockets + r.table!.ipv6!.listen.sockets, 6);
    assert.equal(r.parseErrors, 0);
  });
  it('kills ss at the timeout and reports it', async () => {
    const started = Date.now();
    const r = await readSs({ path: `${FIX}bin/ss-hang`, timeoutMs: 300 }, signal);
    assert.equal(r.up, false);
    assert.match(r.error!.message, /killed after --ss\.timeout=300ms/);
    assert.equal(r.table, undefined);
    assert.ok(Date.now() - started < 5000);
  });
  it('names a missing binary', async () => {
    const r = await readSs({ path: '/nonexistent/ss', timeoutMs: 1000 }, signal);
    assert.equal(r.up, false);
    assert.match(r.error!.message, /ss not found at --ss\.path=\/nonexistent\/ss/);
  });
  it('reports exit status and stderr of a failing ss', async () => {
    const r = await readSs({ path: `${FIX}bin/ss-broken`, timeoutMs: 1000 }, signal);
    assert.equal(r.up, false);
    assert.match(r.error!.message, /exit code 1.*Cannot open netlink socket/s);
  });
  it('is cancelled by the abort signal (shutdown)', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const r = await readSs({ path: `${FIX}bin/ss-hang`, timeoutMs: 10_000 }, ac.signal);
    assert.equal(r.up, false);
    assert.match(r.error!.message, /cancelled/);
  });
});

describe('proc source', () => {
  it('reads tcp and tcp6 as two sources', async () => {
    const [v4, v6] = await readProc(`${FIX}proc`, signal);
    assert.deepEqual([v4!.source, v4!.up, v6!.source, v6!.up], ['proc_tcp', true, 'proc_tcp6', true]);
    assert.equal(v4!.table!.ipv4!.listen.sockets, 4);
    assert.equal(v6!.table!.ipv6!.listen.sockets, 2);
  });
  it('a missing tcp6 (IPv6 disabled) is up and empty', async () => {
    const [, v6] = await readProc(`${FIX}proc-no-ipv6`, signal);
    assert.deepEqual([v6!.up, v6!.absent, v6!.table!.ipv6!.established.sockets], [true, true, 0]);
  });
  it('a missing tcp is a failure naming the path', async () => {
    const [v4] = await readProc(`${FIX}nonexistent`, signal);
    assert.equal(v4!.up, false);
    assert.match(v4!.error!.message, /reading .*nonexistent\/net\/tcp: ENOENT/);
  });
  it('a broken file: bad lines counted, good lines kept', async () => {
    const [v4] = await readProc(`${FIX}proc-broken`, signal);
    assert.equal(v4!.up, true);
    assert.equal(v4!.parseErrors, 2);
    assert.match(v4!.firstParseError!.reason, /truncated/);
    assert.equal(v4!.table!.ipv4!.listen.sockets, 1);
    assert.equal(v4!.table!.ipv4!.time_wait.sockets, 1);
  });
});
