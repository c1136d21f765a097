#!/usr/bin/env node
// The image's HEALTHCHECK: GET /healthz on the running exporter's own listening socket
// (src/healthcheck.ts; npm run build produces dist/).
import { main } from '../dist/healthcheck.js';

await main();
