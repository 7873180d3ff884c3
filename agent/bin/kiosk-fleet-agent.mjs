#!/usr/bin/env node
// Runs the agent's bundle (dist/cli.mjs, built by scripts/build.mjs): no TypeScript loader in the running agent.
// The bundle is checked against its inputs first (dist/build.json: each source and dependency file's size, mtime and
// sha256) and rebuilt in a child process when one changed, so it is never stale. Where it cannot be built (no
// esbuild, a read-only install), the agent runs its TypeScript sources through tsx instead, with a warning; where
// there are neither sources nor a bundle, it stops with a clear error.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const AGENT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ENTRY = path.join(AGENT_DIR, 'dist', 'cli.mjs');
const HAVE_SOURCES = existsSync(path.join(AGENT_DIR, 'src', 'cli.ts'));
const say = (msg) => process.stderr.write(`kiosk-fleet-agent: ${msg}\n`);

/** Why the bundle cannot be run as it is, or null when it is up to date with every input it was built from. */
function staleReason() {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(path.join(AGENT_DIR, 'dist', 'build.json'), 'utf8'));
  } catch {
    return 'no build (dist/build.json)';
  }
  if (!existsSync(ENTRY)) return 'no build (dist/cli.mjs)';
  // a release without sources runs the bundle it ships
  if (!HAVE_SOURCES) return null;
  for (const [rel, want] of Object.entries(manifest.inputs ?? {})) {
    const file = path.join(AGENT_DIR, rel);
    let st;
    try {
      st = statSync(file);
    } catch {
      return `${rel} is gone`;
    }
    if (st.size === want.size && st.mtimeMs === want.mtimeMs) continue;
    // touched or copied (a new mtime): only a different content makes the bundle stale
    if (st.size !== want.size || createHash('sha256').update(readFileSync(file)).digest('hex') !== want.sha256) return `${rel} changed`;
  }
  return null;
}

let entry = ENTRY;
const reason = staleReason();
if (reason) {
  if (!HAVE_SOURCES) {
    say(`cannot start: ${reason}, and no sources to build it from (agent/src). Reinstall the agent.`);
    process.exit(1);
  }
  const built = spawnSync(process.execPath, [path.join(AGENT_DIR, 'scripts', 'build.mjs')], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (built.status !== 0 || staleReason()) {
    say(`WARNING: the bundle is out of date (${reason}) and could not be rebuilt (pnpm --filter @kiosk-fleet/agent run build); running the TypeScript sources through tsx, which needs ~30 MB more memory`);
    const { register } = await import('tsx/esm/api');
    register();
    entry = path.join(AGENT_DIR, 'src', 'cli.ts');
  }
}
const { main } = await import(pathToFileURL(entry).href);
await main(process.argv.slice(2));
