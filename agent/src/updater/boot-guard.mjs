#!/usr/bin/env node
/**
 * Boot guard for agent self-update: runs BEFORE each agent start (systemd `ExecStartPre=`), from a copy kept
 * outside `releases/` (so a broken new agent cannot break its own guard). Plain JavaScript, node builtins only,
 * on purpose: it must work when nothing else does.
 *
 * It rolls the agent back when a new version, mid-update (switching, restarting or health-check), either
 * - has been started more than `--max-starts` times (it dies before its updater can even count: a crash loop), or
 * - is past its persisted health-check deadline (it ran but never reached the hub in time, then hung or died).
 * Rolling back = point `current` at the persisted `previous` release (atomic rename of a new symlink) and mark the
 * state `rolling-back` with `restartBootId: "boot-guard"`, so the old agent, starting next, knows its start is the
 * restart of the rollback and records the release as failed (never retried).
 *
 * usage: node boot-guard.mjs --state-file <update-state.json> --agent-root <dir> [--max-starts 3]
 * Exit code is always 0 (the agent must start either way); one JSON line on stdout says what it did.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';

const MID_UPDATE = new Set(['switching', 'restarting', 'health-check']);

function fsyncDir(dir) {
  let fd;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // some filesystems refuse fsync on a directory
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function writeJsonAtomic(file, value) {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.guard.tmp`);
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, `${JSON.stringify(value, null, 1)}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  fsyncDir(path.dirname(file));
}

function switchCurrent(root, version) {
  const tmp = path.join(root, `.current-${randomBytes(4).toString('hex')}`);
  fs.symlinkSync(path.join('releases', version), tmp);
  fs.renameSync(tmp, path.join(root, 'current'));
  fsyncDir(root);
}

/**
 * @param {{ stateFile: string, agentRoot: string, maxStarts?: number, now?: Date }} o
 * @returns {{ action: 'none' | 'counted' | 'rolled-back', reason?: string, to?: string | null }}
 */
export function bootGuard(o) {
  const maxStarts = o.maxStarts ?? 3;
  const now = o.now ?? new Date();
  let s;
  try {
    s = JSON.parse(fs.readFileSync(o.stateFile, 'utf8'));
  } catch {
    return { action: 'none', reason: 'no readable update state' };
  }
  if (!s || typeof s !== 'object' || !s.target || s.target.kind !== 'agent' || !MID_UPDATE.has(s.state)) {
    return { action: 'none' };
  }
  const starts = (Number.isInteger(s.guardStarts) ? s.guardStarts : 0) + 1;
  const deadline = typeof s.healthDeadline === 'string' ? Date.parse(s.healthDeadline) : Number.NaN;
  let reason = null;
  if (starts > maxStarts) reason = { code: 'boot-loop', message: `new agent started ${starts - 1} times without passing its health check` };
  else if (s.state === 'health-check' && Number.isFinite(deadline) && now.getTime() > deadline) {
    reason = { code: 'health-check-failed', message: `new agent ${s.target.version} did not pass its health check in time` };
  }
  if (!reason) {
    writeJsonAtomic(o.stateFile, { ...s, guardStarts: starts, updatedAt: now.toISOString() });
    return { action: 'counted', reason: `start ${starts} of ${maxStarts}` };
  }
  const prev = typeof s.previous === 'string' ? s.previous : null;
  // Persist the decision first: if we die between the two writes, the next guard run redoes the same rollback.
  writeJsonAtomic(o.stateFile, { ...s, state: 'rolling-back', error: reason, restartBootId: 'boot-guard', guardStarts: 0, updatedAt: now.toISOString() });
  if (prev && fs.existsSync(path.join(o.agentRoot, 'releases', prev))) switchCurrent(o.agentRoot, prev);
  return { action: 'rolled-back', reason: reason.code, to: prev };
}

function main(argv) {
  const arg = (name) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const stateFile = arg('--state-file');
  const agentRoot = arg('--agent-root');
  if (!stateFile || !agentRoot) {
    process.stderr.write('usage: boot-guard.mjs --state-file <file> --agent-root <dir> [--max-starts N]\n');
    return;
  }
  try {
    const r = bootGuard({ stateFile, agentRoot, maxStarts: Number(arg('--max-starts') ?? 3) });
    process.stdout.write(`${JSON.stringify({ msg: 'boot-guard', ...r })}\n`);
  } catch (err) {
    // Never keep the agent from starting: a guard failure is logged and the start goes on.
    process.stderr.write(`${JSON.stringify({ msg: 'boot-guard failed', error: String(err) })}\n`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main(process.argv.slice(2));
