import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LineSplitter, MAX_LINE } from '../../src/sources/lines.ts';
import { ssReader } from '../../src/sources/ss.ts';
import { runReader } from '../helpers/readers.ts';

const FIX = new URL('../fixtures/', import.meta.url).pathname;

function split(chunks: string[], max = 10) {
  const lines: string[] = [];
  const tooLong: string[] = [];
  const s = new LineSplitter((l) => lines.push(l), (start) => tooLong.push(start), max);
  let held = 0;
  for (const c of chunks) {
    s.push(c);
    held = Math.max(held, s.pending);
  }
  s.end();
  return { lines, tooLong, held };
}

describe('LineSplitter', () => {
  const cases: Array<{ name: string; chunks: string[]; lines: string[]; tooLong: number }> = [
    { name: 'lines across chunks', chunks: ['ab', 'c\nde', 'f\n'], lines: ['abc', 'def'], tooLong: 0 },
    { name: 'CRLF', chunks: ['ab\r\ncd\r\n'], lines: ['ab', 'cd'], tooLong: 0 },
    { name: 'last line without newline', chunks: ['ab\ncd'], lines: ['ab', 'cd'], tooLong: 0 },
    { name: 'a line of exactly the cap', chunks: ['0123456789\nx\n'], lines: ['0123456789', 'x'], tooLong: 0 },
    { name: 'an over-long line inside one chunk', chunks: ['01234567890\nx\n'], lines: ['x'], tooLong: 1 },
    { name: 'an over-long line across chunks, skipped to its end', chunks: ['012345', '6789012', '345', '67\nok\n'], lines: ['ok'], tooLong: 1 },
    { name: 'an endless last line', chunks: ['ok\n', '0123456789', '0123456789', '0123'], lines: ['ok'], tooLong: 1 },
    { name: 'two over-long lines', chunks: ['01234567890123\n', 'abcdefghijklmn\nend'], lines: ['end'], tooLong: 2 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = split(c.chunks);
      assert.deepEqual(r.lines, c.lines);
      assert.equal(r.tooLong.length, c.tooLong);
    });
  }
  it('never holds more than the cap, however long the line', () => {
    const chunk = 'x'.repeat(65_536);
    const r = split(Array.from({ length: 200 }, () => chunk), MAX_LINE);
    assert.ok(r.held <= MAX_LINE, `held ${r.held}`);
    assert.equal(r.tooLong.length, 1);
    assert.equal(r.tooLong[0], 'x'.repeat(200));
  });
});

describe('an endless line from ss', () => {
  it('is one parse error, and the rest of the table is read', async () => {
    const r = await runReader(ssReader({ path: `${FIX}bin/ss-endless-line`, timeoutMs: 20_000 }), new AbortController().signal);
    assert.equal(r.up, true, r.error?.message);
    assert.equal(r.parseErrors, 2); // once per pass: the fake prints it to both
    assert.match(r.firstParseError!.reason, /line longer than 65536 characters/);
    assert.equal(r.firstParseError!.line, 'x'.repeat(200));
    assert.equal(r.table!.ipv4!.listen.sockets + r.table!.ipv6!.listen.sockets, 6);
  });
});
