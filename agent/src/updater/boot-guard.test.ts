import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateReleaseKeyPair, publicKeyFromPem } from '@kiosk-fleet/protocol/release-signing';
import { initialState, loadState, saveState, type PersistedState } from './state.ts';
import { appBundle, installInitial } from './testing.ts';
import { Updater } from './updater.ts';

const GUARD = path.join(import.meta.dirname, 'boot-guard.mjs');
let tmp: string;
let n = 0;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-guard-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** An agent root mid-self-update: 1.0.0 was running, 2.0.0 is installed and `current` already points at it. */
function midUpdate(patch: Partial<PersistedState>): { root: string; stateFile: string; agentRoot: string } {
  const root = path.join(tmp, `g${++n}`);
  const agentRoot = path.join(root, 'agent');
  installInitial(agentRoot, '1.0.0', appBundle('1.0.0', true));
  fs.mkdirSync(path.join(agentRoot, 'releases', '2.0.0'));
  fs.rmSync(path.join(agentRoot, 'current'));
  fs.symlinkSync('releases/2.0.0', path.join(agentRoot, 'current'));
  const stateFile = path.join(root, 'update-state.json');
  saveState(stateFile, {
    ...initialState(),
    state: 'restarting',
    previous: '1.0.0',
    target: { releaseId: 'agent-2.0.0', kind: 'agent', version: '2.0.0', url: 'http://127.0.0.1:1/x', size: 1, sha256: 'a'.repeat(64), manifest: 'e30=', signature: 'AA==', urgent: false },
    ...patch,
  });
  return { root, stateFile, agentRoot };
}

/** The guard as systemd's ExecStartPre runs it: its own process, exit code 0 whatever happens. */
function guard(stateFile: string, agentRoot: string): { action: string; reason?: string; to?: string } {
  const out = execFileSync(process.execPath, [GUARD, '--state-file', stateFile, '--agent-root', agentRoot, '--max-starts', '3'], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').at(-1)!) as { action: string };
}

const current = (agentRoot: string): string => path.basename(fs.readlinkSync(path.join(agentRoot, 'current')));

describe('boot guard (agent self-update)', () => {
  it('counts the starts of a new agent and rolls back after too many; the old agent then records the failure', async () => {
    const { stateFile, agentRoot, root } = midUpdate({});
    expect(guard(stateFile, agentRoot)).toMatchObject({ action: 'counted' });
    expect(guard(stateFile, agentRoot)).toMatchObject({ action: 'counted' });
    expect(guard(stateFile, agentRoot)).toMatchObject({ action: 'counted' });
    expect(current(agentRoot)).toBe('2.0.0');
    expect(guard(stateFile, agentRoot)).toMatchObject({ action: 'rolled-back', reason: 'boot-loop', to: '1.0.0' });
    expect(current(agentRoot)).toBe('1.0.0');

    // The old agent starts (its start is the rollback's restart) and finishes the rollback.
    const statuses: string[] = [];
    const restarts: string[] = [];
    const u = new Updater({
      stateFile,
      roots: { app: path.join(root, 'app'), agent: agentRoot },
      publicKeys: [publicKeyFromPem(generateReleaseKeyPair().publicKeyPem)],
      terminalType: 'id-card',
      agentVersion: '1.0.0',
      logger: pino({ level: 'silent' }),
      hooks: { restart: async (_k, v) => void restarts.push(v), healthCheck: async () => true, isSessionOpen: () => false, isInMaintenanceWindow: () => true },
      onStatus: (s) => void statuses.push(`${s.state}:${s.error?.code ?? ''}`),
    });
    u.resume();
    const ac = new AbortController();
    const running = u.run(ac.signal);
    for (let i = 0; i < 100 && u.state.state !== 'failed'; i++) await new Promise((r) => setTimeout(r, 20));
    ac.abort();
    await running;
    expect(statuses).toEqual(['rolling-back:boot-loop', 'failed:boot-loop']);
    expect(restarts).toEqual([]); // this very start was the restart: no second one
    const st = loadState(stateFile);
    expect(st.ok && st.state.failed['a'.repeat(64)]).toMatchObject({ releaseId: 'agent-2.0.0', code: 'boot-loop' });
    expect(current(agentRoot)).toBe('1.0.0');
    expect(fs.existsSync(path.join(agentRoot, 'releases', '2.0.0'))).toBe(false);
    // nothing left for the guard to do
    expect(guard(stateFile, agentRoot)).toMatchObject({ action: 'none' });
  });

  it('rolls back a new agent that is past its health-check deadline', () => {
    const { stateFile, agentRoot } = midUpdate({ state: 'health-check', healthDeadline: new Date(Date.now() - 1000).toISOString() });
    expect(guard(stateFile, agentRoot)).toMatchObject({ action: 'rolled-back', reason: 'health-check-failed' });
    expect(current(agentRoot)).toBe('1.0.0');
    expect(loadState(stateFile)).toMatchObject({ ok: true, state: { state: 'rolling-back', restartBootId: 'boot-guard' } });
  });

  it('leaves app updates, finished updates, and missing or corrupt state alone', () => {
    const app = midUpdate({});
    const s = loadState(app.stateFile);
    if (!s.ok) throw new Error(s.reason);
    saveState(app.stateFile, { ...s.state, target: { ...s.state.target!, kind: 'app' } });
    expect(guard(app.stateFile, app.agentRoot)).toMatchObject({ action: 'none' });
    const done = midUpdate({ state: 'committed' });
    expect(guard(done.stateFile, done.agentRoot)).toMatchObject({ action: 'none' });
    expect(guard(path.join(tmp, 'missing.json'), done.agentRoot)).toMatchObject({ action: 'none' });
    fs.writeFileSync(done.stateFile, '{not json');
    expect(guard(done.stateFile, done.agentRoot)).toMatchObject({ action: 'none' });
    expect(current(done.agentRoot)).toBe('2.0.0');
  });
});
