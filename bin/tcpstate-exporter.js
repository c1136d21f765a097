#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=1 --heap-growing-percent=30
// Installed entry point: runs the compiled daemon (npm run build produces dist/).
//
// The V8 flags above are part of what ships (docs/performance.md, "Memory"): V8 sizes a thread's
// young generation by the machine's memory (new space measured at 32 MiB on Node.js 20, 128 MiB on
// 24, 2 MiB with --max-semi-space-size=1) and lets the old generation grow to ~2x its live size
// before collecting it. For a daemon whose
// garbage is a poll's worth of buffers that is most of its RSS: a 1 MiB semi-space and 30 % growth
// took peak RSS at 150 000 sockets from ~145 to ~120 MiB for the same CPU. Started as
// `node bin/tcpstate-exporter.js` the flags are not applied (it works, with more memory): run the
// file itself, as the Dockerfile, the systemd unit and the tests do.
//
// MALLOC_ARENA_MAX=2: glibc gives each thread that allocates its own malloc arena (up to 8 per
// CPU); the HTTP thread, the poll thread, libuv's and V8's threads each kept a partly used arena
// of freed read buffers. Two arenas took peak RSS at 150 000 sockets from 115-117 to 103-107 MiB
// for the same CPU (docs/performance.md, "Memory"). Ignored by a libc other than glibc.
import '../dist/main.js';
