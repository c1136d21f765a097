/**
 * Longest line kept, in characters. Real lines are far shorter (an `ss -tnoeim` socket with its
 * continuation is ~700 characters, a /proc/net/tcp6 line 177): anything longer is garbage, and
 * holding it would let one endless line grow the exporter's memory without bound.
 */
export const MAX_LINE = 65_536;

/** How much of an over-long line is handed on for the log. */
const TOO_LONG_KEPT = 200;

/**
 * Cuts a stream of text chunks into lines without holding more than one partial line, and never
 * more than MAX_LINE characters of it: a longer line is dropped, reported once to `onTooLong`
 * (with its beginning) and skipped up to its end. A trailing '\r' is dropped so that captures
 * copied through Windows tools still parse.
 */
export class LineSplitter {
  private rest = '';
  /** Inside an over-long line: drop text up to the next newline. */
  private skipping = false;

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly onTooLong: (start: string) => void,
    private readonly maxLine = MAX_LINE,
  ) {}

  /** Characters held for a line not yet complete (never more than the cap). */
  get pending(): number {
    return this.rest.length;
  }

  push(chunk: string): void {
    let start = 0;
    if (this.skipping || this.rest !== '') {
      const nl = chunk.indexOf('\n');
      if (this.skipping) {
        if (nl < 0) return;
        this.skipping = false;
      } else if (nl < 0) {
        this.hold(this.rest + chunk);
        return;
      } else {
        // Only the line that spans the two chunks is joined: the chunk itself is never copied.
        const line = this.rest + chunk.slice(0, nl);
        this.rest = '';
        this.emit(line, 0, line.length);
      }
      start = nl + 1;
    }
    let nl = chunk.indexOf('\n', start);
    while (nl >= 0) {
      this.emit(chunk, start, nl);
      start = nl + 1;
      nl = chunk.indexOf('\n', start);
    }
    if (start < chunk.length) this.hold(start === 0 ? chunk : chunk.slice(start));
  }

  /** Keeps a line's beginning for the next chunk, or drops it once it is longer than the cap. */
  private hold(rest: string): void {
    if (rest.length > this.maxLine) {
      this.onTooLong(rest.slice(0, TOO_LONG_KEPT));
      this.rest = '';
      this.skipping = true;
    } else this.rest = rest;
  }

  end(): void {
    if (this.rest !== '') this.emit(this.rest, 0, this.rest.length);
    this.rest = '';
    this.skipping = false;
  }

  private emit(text: string, start: number, end: number): void {
    const e = end > start && text.charCodeAt(end - 1) === 13 ? end - 1 : end;
    if (e - start > this.maxLine) this.onTooLong(text.slice(start, start + TOO_LONG_KEPT));
    else this.onLine(text.slice(start, e));
  }
}

/** The parse-error reason of a line longer than MAX_LINE. */
export const TOO_LONG_REASON = `line longer than ${MAX_LINE} characters (skipped)`;

/** Input handed to a parser between two turns of the event loop (~300 lines or messages, about a millisecond). */
const SLICE = 32_768;

/**
 * Feeds a chunk to a parser in slices, yielding to the event loop between them: a stream that
 * fell behind can hand over its whole buffer at once, and parsing that in one go would stall
 * scrapes for tens of milliseconds.
 */
export async function feedYielding<T extends string | Buffer>(push: (slice: T) => void, chunk: T): Promise<void> {
  if (chunk.length <= SLICE) {
    push(chunk);
    return;
  }
  for (let i = 0; i < chunk.length; i += SLICE) {
    if (i > 0) await new Promise<void>((resolve) => setImmediate(resolve));
    push((typeof chunk === 'string' ? chunk.slice(i, i + SLICE) : chunk.subarray(i, i + SLICE)) as T);
  }
}
