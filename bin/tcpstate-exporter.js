#!/usr/bin/env -S node --max-semi-space-size=1 --heap-growing-percent=30
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
import '../dist/main.js';
