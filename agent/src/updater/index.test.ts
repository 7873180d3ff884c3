import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateReleaseKeyPair, privateKeyFromPem } from '@kiosk-fleet/protocol/release-signing';
import { createAgentUpdater, loadUpdateKeys, type AgentView, type StatusReport } from './index.ts';
import { appBundle, buildRelease, installInitial, serveArtifacts, targetFor, type ArtifactServer, type BuiltRelease } from './testing.ts';

const keys = generateReleaseKeyPair();
let tmp: string;
let server: ArtifactServer;
let v2: BuiltRelease;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-agentupd-'));
  v2 = await buildRelease({ workDir: tmp, version: '2.0.0', files: appBundle('2.0.0', true), privateKey: privateKeyFromPem(keys.privateKeyPem) });
  server = await serveArtifacts({ v2: v2.artifact });
});
afterAll(async () => {
  await server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('KF_UPDATE_PUBKEY', () => {
  it('takes paths and inline PEM, refuses private keys and garbage naming the item', () => {
    const file = path.join(tmp, 'pub.pem');
    fs.writeFileSync(file, keys.publicKeyPem);
    expect(loadUpdateKeys(`${file},${keys.publicKeyPem.trim().replaceAll('\n', '\\n')}`)).toHaveLength(2);
    expect(loadUpdateKeys(undefined)).toEqual([]);
    expect(() => loadUpdateKeys(keys.privateKeyPem)).toThrow(/item 1: a private key/);
    expect(() => loadUpdateKeys(`${file},/nope.pem`)).toThrow(/item 2: cannot read/);
  });
});

describe('createAgentUpdater', () => {
  it('waits for the configured window and a free session, restarts the app, commits on a fresh heartbeat', async () => {
    const dataDir = path.join(tmp, 'agent-data');
    installInitial(path.join(dataDir, 'app'), '1.0.0', appBundle('1.0.0', true));
    const view: AgentView = {
      sessionActive: true,
      hubConnected: true,
      lastAppHeartbeat: 0,
      // a window that is closed now (an empty day list everywhere)
      config: { maintenanceWindow: { mon: [], tue: [], wed: [], thu: [], fri: [], sat: [], sun: [] }, updatePolicy: { healthCheckSeconds: 10 } },
    };
    const statuses: StatusReport[] = [];
    let restarts = 0;
    const updater = createAgentUpdater({
      dataDir,
      updatePubkey: keys.publicKeyPem,
      terminalType: 'id-card',
      agentVersion: '1.0.0',
      logger: pino({ level: 'silent' }),
      view: () => view,
      restartApp: async () => {
        restarts++;
        setTimeout(() => (view.lastAppHeartbeat = Date.now()), 100); // the new app comes up and says hello
      },
      exitForRestart: () => Promise.reject(new Error('not an agent release')),
      onStatus: (s) => void statuses.push(s),
      timing: { waitPollMs: 30, healthPollMs: 30 },
    });
    const ac = new AbortController();
    updater.resume();
    const running = updater.run(ac.signal);
    updater.setTarget(targetFor(v2, server.url('v2')));
    const until = async (f: () => boolean): Promise<void> => {
      for (let i = 0; i < 300 && !f(); i++) await new Promise((r) => setTimeout(r, 20));
      expect(f()).toBe(true);
    };
    await until(() => statuses.some((s) => s.error?.code === 'session-open'));
    view.sessionActive = false;
    await until(() => statuses.some((s) => s.error?.code === 'outside-window'));
    expect(restarts).toBe(0);
    view.config = { ...view.config, maintenanceWindow: undefined }; // no window configured: no hold
    updater.nudge();
    await until(() => updater.state.state === 'committed');
    expect(restarts).toBe(1);
    expect(fs.readlinkSync(path.join(dataDir, 'app', 'current'))).toBe(path.join('releases', '2.0.0'));
    ac.abort();
    await running;
  });
});
