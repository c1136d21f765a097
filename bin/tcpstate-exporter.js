#!/usr/bin/env node
// Installed entry point: runs the compiled daemon (npm run build produces dist/).
import '../dist/main.js';
