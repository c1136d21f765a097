/**
 * Cuts a stream of text chunks into lines without holding more than one partial line.
 * A trailing '\r' is dropped so that captures copied through Windows tools still parse.
 */
export class LineSplitter {
  private rest = '';

  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: string): void {
    const text = this.rest === '' ? chunk : this.rest + chunk;
    let start = 0;
    let nl = text.indexOf('\n', start);
    while (nl >= 0) {
      this.emit(text, start, nl);
      start = nl + 1;
      nl = text.indexOf('\n', start);
    }
    this.rest = start === 0 ? text : text.slice(start);
  }

  end(): void {
    if (this.rest !== '') this.emit(this.rest, 0, this.rest.length);
    this.rest = '';
  }

  private emit(text: string, start: number, end: number): void {
    const e = end > start && text.charCodeAt(end - 1) === 13 ? end - 1 : end;
    this.onLine(text.slice(start, e));
  }
}

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
