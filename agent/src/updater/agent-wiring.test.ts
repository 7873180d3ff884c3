/**
 * The updater inside the agent core (agent.ts, run.ts wiring): the retained update/target from a real broker goes
 * to the real updater, every state goes out on update/status through the outbox (sequenced), a citizen session
 * holds the install and its end lets it go at once (nudge), and a malformed target is counted, never a crash.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePayload, topicFor } from '@kiosk-fleet/protocol';
import { generateReleaseKeyPair, privateKeyFromPem } from '@kiosk-fleet/protocol/release-signing';
import type { Agent } from '../agent.ts';
import { ConfigError, loadConfig } from '../config.ts';
import { startBroker, subscriber, waitFor, type TestBroker } from '../test-support/broker.ts';
import { tempDir, testAgent } from '../test-support/agent.ts';
import { createAgentUpdater } from './index.ts';
import { appBundle, buildRelease, installInitial, serveArtifacts, targetFor, type ArtifactServer, type BuiltRelease } from './testing.ts';

const ID = 'GZ-YX-001-01';
const keys = generateReleaseKeyPair();
let broker: TestBroker;
let files: ArtifactServer;
let tmp: { dir: string; cleanup: () => void };
let v2: BuiltRelease;
let v3: BuiltRelease;
const agents: Agent[] = [];

function statuses(terminalId = ID): { seq: number; state: string; releaseId?: string; rolloutId?: string }[] {
  return broker.published
    .filter((m) => m.topic === topicFor(terminalId, 'update/status'))
    .map((m) => {
      const p = parsePayload('update/status', Buffer.from(m.payload));
      if (!p.ok) throw new Error(`update/status fails its schema: ${p.message}`);
      return p.value;
    });
}

/** An agent whose updater installs into its own data dir; the "kiosk app" comes back with a heartbeat on restart. */
function agentWithUpdater(terminalId: string): Agent {
  const dataDir = path.join(tmp.dir, terminalId);
  installInitial(path.join(dataDir, 'app'), '1.0.0', appBundle('1.0.0', true));
  fs.writeFileSync(path.join(tmp.dir, 'pub.pem'), keys.publicKeyPem);
  let agentRef: Agent | null = null;
  const agent = testAgent({
    hubUrl: broker.url,
    terminalId,
    monitorApp: true,
    updater: (a, report) =>
      createAgentUpdater({
        dataDir,
        updatePubkey: path.join(tmp.dir, 'pub.pem'),
        terminalType: 'id-card',
        agentVersion: '0.1.0',
        logger: a.logger,
        view: () => ({ sessionActive: a.sessionActive, hubConnected: a.link.connected, lastAppHeartbeat: a.lastAppHeartbeat, config: null }),
        restartApp: async () => void setTimeout(() => agentRef?.appHeartbeat(), 30),
        exitForRestart: () => new Promise<never>(() => undefined),
        onStatus: report,
        timing: { healthPollMs: 50, retryMinMs: 20, retryMaxMs: 200 },
      }),
  });
  agentRef = agent;
  agents.push(agent);
  return agent;
}

beforeAll(async () => {
  tmp = tempDir('kf-updater-wiring-');
  broker = await startBroker();
  const privateKey = privateKeyFromPem(keys.privateKeyPem);
  v2 = await buildRelease({ workDir: tmp.dir, version: '2.0.0', files: appBundle('2.0.0', true), privateKey });
  v3 = await buildRelease({ workDir: tmp.dir, version: '3.0.0', files: appBundle('3.0.0', true), privateKey });
  files = await serveArtifacts({ [v2.id]: v2.artifact, [v3.id]: v3.artifact });
});

afterAll(async () => {
  for (const a of agents) await a.stop();
  await files?.close();
  await broker?.close();
  tmp?.cleanup();
});

describe('the updater in the agent core', () => {
  it('takes the retained update/target and reports each state on update/status, through to committed', async () => {
    const hub = await subscriber(broker.url, '#');
    await hub.client.publishAsync(topicFor(ID, 'update/target'), JSON.stringify(targetFor(v2, files.url(v2.id), { rolloutId: 'r-1' })), { qos: 1, retain: true });
    const agent = agentWithUpdater(ID);
    await agent.start();
    await waitFor(() => statuses().some((s) => s.state === 'committed'), 20_000, 'committed');
    const seen = statuses();
    expect(seen.map((s) => s.state)).toEqual(expect.arrayContaining(['downloading', 'verifying', 'installing', 'switching', 'restarting', 'health-check', 'committed']));
    // (an `idle` report at start names no release)
    expect(seen.filter((s) => s.state !== 'idle').every((s) => s.releaseId === v2.id && s.rolloutId === 'r-1')).toBe(true);
    // a stream like any other: contiguous sequence numbers from the outbox
    expect(seen.map((s) => s.seq)).toEqual(seen.map((_, i) => seen[0]!.seq + i));
    expect(fs.readlinkSync(path.join(tmp.dir, ID, 'app', 'current'))).toBe(path.join('releases', '2.0.0'));
    await hub.close();
  }, 30_000);

  it('an open citizen session holds the install; its end lets it go at once', async () => {
    const id = 'GZ-YX-001-02';
    const agent = agentWithUpdater(id);
    agent.beginSession();
    await agent.start();
    const hub = await subscriber(broker.url, '#');
    await hub.client.publishAsync(topicFor(id, 'update/target'), JSON.stringify(targetFor(v3, files.url(v3.id))), { qos: 1, retain: true });
    await waitFor(() => statuses(id).some((s) => s.state === 'waiting'), 20_000, 'waiting');
    // the updater's own poll is 30 s: anything sooner is the session's end waking it
    await new Promise((r) => setTimeout(r, 500));
    expect(statuses(id).map((s) => s.state)).not.toContain('installing');
    agent.endSession();
    await waitFor(() => statuses(id).some((s) => s.state === 'committed'), 10_000, 'committed after the session');
    await hub.close();
  }, 30_000);

  it('a malformed update/target is counted and logged; the agent carries on', async () => {
    const id = 'GZ-YX-001-03';
    const agent = agentWithUpdater(id);
    await agent.start();
    await waitFor(() => agent.link.connected, 10_000, 'connected');
    const hub = await subscriber(broker.url, '#');
    await hub.client.publishAsync(topicFor(id, 'update/target'), '{"v":1,"release":{"id":42}}', { qos: 1 });
    await hub.client.publishAsync(topicFor(id, 'update/target'), 'not json', { qos: 1 });
    await waitFor(() => agent.counters.malformed >= 2, 10_000, 'malformed counted');
    const before = agent.counters.telemetry;
    await waitFor(() => agent.counters.telemetry > before, 10_000, 'telemetry goes on');
    expect(statuses(id).map((s) => s.state)).toEqual(['idle']);
    await hub.close();
  });

  it('KF_UPDATE_PUBKEY without KF_TERMINAL_TYPE stops the start naming both', () => {
    const env = { KF_TERMINAL_ID: ID, KF_UPDATE_PUBKEY: path.join(tmp.dir, 'pub.pem') };
    expect(() => loadConfig({ env })).toThrow(ConfigError);
    expect(() => loadConfig({ env })).toThrow(/KF_TERMINAL_TYPE/);
    expect(loadConfig({ env: { ...env, KF_TERMINAL_TYPE: 'id-card' } }).terminalType).toBe('id-card');
    expect(() => loadConfig({ env: { ...env, KF_TERMINAL_TYPE: 'toaster' } })).toThrow(/KF_TERMINAL_TYPE/);
  });
});
