// `npm run build`: bundles the daemon into dist/ with esbuild: one file per entry point (the
// daemon, its poll thread, the image's health check) and shared chunks, minified, plus source maps.
//
// Why a bundle and not tsc's one file per module: every module V8 loads keeps its source text and
// compiled code on the heap of each thread that loads it, and node_modules' packages ship a great deal
// of code this daemon never runs. Measured (docs/performance.md, "Memory"): idle RSS in an empty
// network namespace 95 -> 82 MiB; at 150 000 sockets, where the heaps dominate, within the noise.
// The one-shot `report` (a dynamic import in src/main.ts) becomes a chunk loaded on first use.
// Type checking is `npm run typecheck` (tsc); esbuild only strips the types.
//
// Paths the code computes from import.meta.url (src/build-paths.ts, src/version.ts, the poll
// thread's file in src/poller/thread.ts) are written for this layout: every file of the bundle lies
// directly in dist/, one level below the checkout, as tsc's dist/*.js did.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';

const root = new URL('../', import.meta.url);
const dist = new URL('dist/', root);
rmSync(dist, { recursive: true, force: true });

const result = await build({
  absWorkingDir: root.pathname,
  entryPoints: { main: 'src/main.ts', worker: 'src/poller/worker.ts', healthcheck: 'src/healthcheck.ts' },
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.5',
  minify: true,
  // Class and function names stay: log lines and errors name them (err.name, constructor names).
  keepNames: true,
  sourcemap: 'linked',
  chunkNames: 'chunk-[hash]',
  // pino loads its transports (logfmt) in a thread of their own by module path, which a bundle
  // cannot give: it stays a package loaded from node_modules, as its documentation advises.
  external: ['pino', 'pino-logfmt'],
  // Packages written as CommonJS require() Node's built-in modules: give the bundle a require.
  banner: { js: "import { createRequire as __tcpstateRequire } from 'node:module'; const require = __tcpstateRequire(import.meta.url);" },
  logLevel: 'warning',
  metafile: true,
});

const out = Object.entries(result.metafile.outputs).filter(([file]) => file.endsWith('.js'));
const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
process.stdout.write(`dist/: ${out.length} files, ${kib(out.reduce((a, [, o]) => a + o.bytes, 0))} of JavaScript\n`);
