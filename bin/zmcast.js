#!/usr/bin/env node
// Runs the compiled CLI (npm install/ci builds it through the `prepare` script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// Each blocked RTSP read holds a libuv pool thread; the default 4 would cap
// a capture node at a handful of cameras. Must be set before the pool starts.
process.env.UV_THREADPOOL_SIZE ??= '128';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('zmcast: not built yet. Run `npm ci` (or `npm run build`) in the checkout first.\n');
  process.exit(2);
}
await import(entry.href);
