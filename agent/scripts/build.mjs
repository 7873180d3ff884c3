#!/usr/bin/env node
/**
 * Builds the agent's runnable bundle: `agent/dist/cli.mjs` (+ `dist/chunks/`), what `kiosk-fleet-agent` runs.
 *
 * Why a bundle: run through tsx, one idle agent held 125.7 MB (tsx and esbuild in the process, ~370 modules each
 * resolved and compiled at start); the bundle, with the rarely used parts in chunks loaded only when used (the
 * simulator, the local API, the updater, the WebSocket transport), is what a terminal can afford. Measurements:
 * agent/README.md, "Measured".
 *
 * Never stale: `dist/build.json` records every input file (size, mtime, sha256); the bin compares them at start and
 * rebuilds through this script when a source or a dependency changed (bin/kiosk-fleet-agent.mjs). It is also run by
 * `pnpm install` (the agent's `prepare`) and `pnpm --filter @kiosk-fleet/agent run build`.
 *
 * Outputs are written to temporary names and renamed into place, chunks first and the entry and build.json last,
 * so agents starting while another process rebuilds see either the old complete build or the new one.
 * Native better-sqlite3 stays outside the bundle (resolved from node_modules at run time).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const AGENT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.join(AGENT_DIR, 'dist');
/** A chunk of an older build is kept this long: an agent started from that build may still load it lazily. */
const OLD_CHUNK_GRACE_MS = 60 * 60 * 1000;

export async function build({ quiet = false } = {}) {
  const t0 = performance.now();
  const result = await esbuild.build({
    absWorkingDir: AGENT_DIR,
    entryPoints: { cli: 'src/cli.ts' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    splitting: true,
    outdir: DIST,
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunks/[name]-[hash]',
    external: ['better-sqlite3'],
    // Node-only stand-ins for two browser compatibility packages mqtt.js pulls in (scripts/stubs/: why each is
    // equivalent under Node); idle RSS ~0.9 MB lower (agent/README.md, "Measured")
    alias: { 'readable-stream': './scripts/stubs/readable-stream.cjs', 'worker-timers': './scripts/stubs/worker-timers.cjs' },
    // whitespace and syntax only: function and class names stay (pino's err.type, stack traces)
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    sourcemap: 'linked',
    sourcesContent: false,
    // the CommonJS dependencies (mqtt.js, pino, systeminformation, ...) call require() for node builtins
    banner: { js: "import { createRequire as __kfCreateRequire } from 'node:module'; const require = __kfCreateRequire(import.meta.url);" },
    metafile: true,
    write: false,
    logLevel: 'warning',
  });
  const inputs = {};
  for (const rel of Object.keys(result.metafile.inputs)) {
    const file = path.resolve(AGENT_DIR, rel);
    const st = fs.statSync(file);
    inputs[path.relative(AGENT_DIR, file)] = { size: st.size, mtimeMs: st.mtimeMs, sha256: sha256(fs.readFileSync(file)) };
  }
  fs.mkdirSync(path.join(DIST, 'chunks'), { recursive: true });
  const entry = path.join(DIST, 'cli.mjs');
  const files = [...result.outputFiles].sort((a, b) => Number(a.path.startsWith(entry)) - Number(b.path.startsWith(entry)));
  for (const f of files) writeAtomic(f.path, f.contents);
  const manifest = { builtAt: new Date().toISOString(), esbuild: esbuild.version, node: process.version, inputs };
  writeAtomic(path.join(DIST, 'build.json'), JSON.stringify(manifest, null, 1));
  pruneOldChunks(new Set(files.map((f) => f.path)));
  if (!quiet) {
    const bytes = files.filter((f) => f.path.endsWith('.mjs')).reduce((a, f) => a + f.contents.length, 0);
    process.stderr.write(`kiosk-fleet-agent: built dist/ (${Object.keys(inputs).length} inputs, ${(bytes / 1024).toFixed(0)} KB of JavaScript) in ${Math.round(performance.now() - t0)} ms\n`);
  }
}

function sha256(buf) {
  return createHash('sha256').update(buf).digest('hex');
}

function writeAtomic(file, contents) {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, contents);
  fs.renameSync(tmp, file);
}

function pruneOldChunks(keep) {
  const dir = path.join(DIST, 'chunks');
  const now = Date.now();
  for (const name of fs.readdirSync(dir)) {
    const file = path.join(dir, name);
    if (keep.has(file)) continue;
    try {
      if (now - fs.statSync(file).mtimeMs > OLD_CHUNK_GRACE_MS) fs.rmSync(file, { force: true });
    } catch {
      /* removed by a concurrent build */
    }
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await build({ quiet: process.argv.includes('--quiet') });
}
