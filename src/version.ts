import { readFileSync } from 'node:fs';

/** The package version, read once from package.json. */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/**
 * The git commit this code was built from: dist/build-info.json, written by `npm run build`
 * (scripts/build-info.ts). "unknown" when run from the TypeScript sources or built outside git.
 */
export const REVISION: string = readRevision(new URL('./build-info.json', import.meta.url));

export function readRevision(file: URL): string {
  try {
    const info = JSON.parse(readFileSync(file, 'utf8')) as { revision?: unknown };
    return typeof info.revision === 'string' && info.revision !== '' ? info.revision : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** What --version prints. */
export const VERSION_LINE = `tcpstate-exporter ${VERSION} (revision ${REVISION}, node ${process.version})`;
