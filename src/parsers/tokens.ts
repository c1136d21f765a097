// Tokenizers the text parsers share: no regex, no allocation beyond the tokens.

/** Splits on runs of spaces/tabs without a regex; `out` is reused between lines; stops after `max` tokens. */
export function tokenize(line: string, out: string[], max = Infinity): string[] {
  const n = line.length;
  let count = 0;
  let i = 0;
  scan: while (i < n && count < max) {
    let c = line.charCodeAt(i);
    while (c === 32 || c === 9) {
      if (++i >= n) break scan;
      c = line.charCodeAt(i);
    }
    const start = i;
    while (i < n) {
      c = line.charCodeAt(i);
      if (c === 32 || c === 9) break;
      i++;
    }
    out[count++] = line.slice(start, i);
  }
  if (out.length !== count) out.length = count;
  return out;
}

/** A non-negative decimal integer, or undefined. */
export function parseCount(text: string): number | undefined {
  if (text.length === 0 || text.length > 15) return undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return undefined;
  }
  return Number(text);
}
