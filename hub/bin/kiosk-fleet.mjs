#!/usr/bin/env node
// Runs the TypeScript sources through tsx (no build step).
import v8 from 'node:v8';
import { register } from 'tsx/esm/api';

// V8 allocates an allocation site's objects straight in the old generation once most of them outlived a scavenge
// (pretenuring). Under load that befell the hub's per-message objects: an allocation profile of 19,000 terminals
// reporting every 30 s found every parsed telemetry host object (~400 B a sample) allocated old, garbage that only a
// full collection frees, and the heap grew to hold it.
// Measured against the same hub with pretenuring on (BENCH_HUB_ROOT, runs interleaved): `pnpm bench connections`
// 16.9 / 16.8 KB of RSS per terminal against 21.9 / 20.2, CPU within the noise; `pnpm bench reconnect` 15.3–19.2 s
// (0.64–0.87 ms of CPU per terminal, five runs) against 14.2–38.1 s (0.65–1.71 ms); `pnpm bench ingest` within the
// noise. Set before any of the hub's code runs.
v8.setFlagsFromString('--no-allocation-site-pretenuring');

register();
const { main } = await import('../src/cli.ts');
const code = await main(process.argv.slice(2));
if (code >= 0) process.exit(code);
