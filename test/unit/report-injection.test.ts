// `report` reads captures copied off production machines, which a compromised host may have
// crafted: what it prints must never carry shell code or terminal control sequences.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseSsEndpoint } from '../../src/parsers/ss.ts';
import { renderReport, reportFromFiles } from '../../src/report/report.ts';
import { shellQuote } from '../../src/report/text.ts';

const dir = mkdtempSync(join(tmpdir(), `tcpstate-report-${process.pid}-`));
after(() => rmSync(dir, { recursive: true, force: true }));

const HEADER = 'State      Recv-Q Send-Q Local Address:Port  Peer Address:Port Process';
const fw1 = (peer: string, sendQ = 26625) => `FIN-WAIT-1 0      ${sendQ}      127.0.0.1:17001    ${peer} timer:(persist,820ms,1) ino:0 sk:9a9`;

async function textOf(lines: string[], name = 'cap.txt'): Promise<{ text: string; parseErrors: number }> {
  const path = join(dir, name);
  writeFileSync(path, `${[HEADER, 'LISTEN     0      128    127.0.0.1:17001    0.0.0.0:*', ...lines].join('\n')}\n`);
  const data = await reportFromFiles([{ kind: 'ss', path }], undefined);
  return { text: await renderReport(data, 'text', 'test'), parseErrors: data.parseErrors };
}

// C0 but \n, DEL, C1, and the bidirectional overrides that reorder what a terminal shows.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

describe('report output injection', () => {
  it('a peer carrying shell code is not an address: the line is a parse error, nothing of it is printed', async () => {
    const evil = "1.2.3.4'$(touch${IFS}/tmp/pwned)'x:80";
    const r = await textOf([fw1('10.0.0.9:41000', 1000), fw1(evil, 999_999)]);
    assert.equal(r.parseErrors, 1);
    assert.doesNotMatch(r.text, /pwned|\$\(/);
    assert.match(r.text, /tcpdump -ni any 'host 10\.0\.0\.9 and tcp port 17001'/);
  });
  it('a peer carrying terminal escapes is not an address', async () => {
    const r = await textOf([fw1('\x1b]0;owned\x07\x1b[2J1.2.3.4:80')]);
    assert.equal(r.parseErrors, 1);
    assert.doesNotMatch(r.text, CONTROL);
  });
  it('no control character reaches the text output, whatever the input names', async () => {
    const r = await textOf([fw1('10.0.0.9:41000')], 'cap\x1b[31m\u202e.txt');
    assert.doesNotMatch(r.text, CONTROL);
    assert.match(r.text, /cap\?\[31m\?\.txt/);
  });
  it('endpoints: IP literals, * and host names only', () => {
    for (const ok of ['1.2.3.4:80', '[::1]:80', ':::22', '*:22', '::ffff:1.2.3.4:80', '[fe80::1]%eth0:22', 'fe80::1%eth0:22', 'db-1.example.com:https']) {
      assert.notEqual(parseSsEndpoint(ok), undefined, ok);
    }
    for (const bad of ["a'b:80", 'a;b:80', '$(x):80', 'a b:80', '\x1b[2J:80', 'a`b`:80', '[1.2.3.4:80', '999.1.1.1:80', '-oProxy:80']) {
      assert.equal(parseSsEndpoint(bad), undefined, JSON.stringify(bad));
    }
  });
  it('shell arguments are quoted', () => {
    assert.equal(shellQuote('host 1.2.3.4 and tcp port 80'), "'host 1.2.3.4 and tcp port 80'");
    assert.equal(shellQuote("it's"), "'it'\\''s'");
    assert.equal(shellQuote('plain'), 'plain');
  });
});
