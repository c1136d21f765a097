// gzip for /metrics when the client asks for it (Prometheus sends `Accept-Encoding: gzip`): the
// exposition is repetitive text and shrinks about tenfold. node:zlib, not a plugin: one route,
// one encoding, and the compression runs on libuv's thread pool, off the event loop.

import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';

const gzip = promisify(gzipCallback);

/**
 * Whether an Accept-Encoding header value (RFC 9110 §12.5.3) accepts gzip: `gzip` or `x-gzip`
 * with a q-value above 0, or `*` above 0 when gzip itself is not refused. Malformed q-values count
 * as refusals (identity is always a safe answer).
 */
export function acceptsGzip(header: string | readonly string[] | undefined): boolean {
  if (header === undefined) return false;
  const value = typeof header === 'string' ? header : header.join(',');
  let star: boolean | undefined;
  for (const part of value.split(',')) {
    const [coding = '', ...params] = part.split(';').map((p) => p.trim().toLowerCase());
    if (coding === '') continue;
    let q = 1;
    for (const p of params) {
      const m = /^q\s*=\s*(\S+)$/.exec(p);
      if (m !== null) q = /^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(m[1]!) ? Number(m[1]) : 0;
    }
    if (coding === 'gzip' || coding === 'x-gzip') return q > 0;
    if (coding === '*') star = q > 0;
  }
  return star === true;
}

export async function gzipText(body: string): Promise<Buffer> {
  return gzip(Buffer.from(body, 'utf8'));
}
