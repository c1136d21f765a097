// gzip for /metrics when the client asks for it (Prometheus sends `Accept-Encoding: gzip`): the
// exposition is repetitive text and shrinks about tenfold. node:zlib, not a plugin: one route,
// one encoding.
//
// Most of the exposition comes from the latest snapshot and is the same for every scrape until the
// next poll; only prom-client's process/Node.js metrics and the snapshot's age change per scrape.
// The body therefore arrives in pieces (metrics/registry.ts), and a piece shared by many scrapes is
// compressed once: each piece becomes raw deflate blocks of its own, ended by a sync flush (which
// leaves the output on a byte boundary without ending the stream), and a response is one gzip
// member (RFC 1952 §2.3): header, the pieces' blocks in order, an empty final block, then the CRC-32
// and length of the whole text. A fresh compressor never refers back before its own input, so the
// pieces' blocks joined are one valid deflate stream (RFC 1951 §3.2.4). One member, not one member per
// piece: RFC 1952 allows several, but curl --compressed and browsers stop at the first.

import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { constants, deflateRaw as deflateRawCallback, deflateRawSync, gzip as gzipCallback } from 'node:zlib';

const gzip = promisify(gzipCallback);
const deflateRaw = promisify(deflateRawCallback);

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

/** A piece of a response body. */
export interface BodyPiece {
  readonly bytes: Buffer;
  /**
   * The same Buffer object is served by many responses (until the next snapshot): its compressed
   * form is kept while the Buffer lives. A piece made for one response is compressed each time.
   */
  readonly shared: boolean;
}

/**
 * zlib.crc32 came in Node.js 20.15 / 22.2; before it, the whole body is compressed per response.
 * (Read from the namespace: a named import of it would not even load on an older Node.js.)
 */
const crc32: ((data: Buffer, value?: number) => number) | undefined = typeof zlib.crc32 === 'function' ? zlib.crc32 : undefined;

/** ID1 ID2, CM = deflate, no flags, no modification time, XFL 0, OS = Unix (RFC 1952 §2.3.1). */
const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
/** An empty final block: what a compressor writes when it finishes with no input left. */
const FINAL_BLOCK = deflateRawSync(Buffer.alloc(0));
const SYNC_FLUSH = { finishFlush: constants.Z_SYNC_FLUSH };

/** Compressed forms of shared pieces, by identity (dropped with the piece). */
const deflatedShared = new WeakMap<Buffer, Promise<Buffer>>();

function deflated(piece: BodyPiece): Promise<Buffer> {
  // A piece of one response is a few kilobytes: compressed here at once (tens of microseconds,
  // less than a trip through the thread pool).
  if (!piece.shared) return Promise.resolve(deflateRawSync(piece.bytes, SYNC_FLUSH));
  let d = deflatedShared.get(piece.bytes);
  if (d === undefined) {
    // Tens of kilobytes once per snapshot: on the thread pool, off the event loop.
    d = deflateRaw(piece.bytes, SYNC_FLUSH);
    deflatedShared.set(piece.bytes, d);
    // A failure is not kept: the next response tries again.
    d.catch(() => deflatedShared.delete(piece.bytes));
  }
  return d;
}

/** The pieces joined, as one gzip member; shared pieces are compressed once. */
export async function gzipPieces(pieces: readonly BodyPiece[]): Promise<Buffer> {
  if (crc32 === undefined) return gzip(Buffer.concat(pieces.map((p) => p.bytes)));
  // Empty pieces add nothing, and are left out: on Node.js 20.20, zlib.crc32(buf, crc) answered 0,
  // not crc, for a zero-length Buffer that zlib had compressed before (test/unit/compression.test.ts).
  const nonEmpty = pieces.filter((p) => p.bytes.length > 0);
  const blocks = await Promise.all(nonEmpty.map(deflated));
  let crc = 0;
  let length = 0;
  for (const p of nonEmpty) {
    crc = crc32(p.bytes, crc);
    length += p.bytes.length;
  }
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  // ISIZE: the length modulo 2^32.
  trailer.writeUInt32LE(length % 2 ** 32, 4);
  return Buffer.concat([GZIP_HEADER, ...blocks, FINAL_BLOCK, trailer]);
}
