import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalManifestBytes, EXAMPLES, topicFor, updateTargetSchema, type UpdateTarget } from '@kiosk-fleet/protocol';
import { generateReleaseKeyPair, privateKeyFromPem, signManifest } from '@kiosk-fleet/protocol/release-signing';
import { createHash } from 'node:crypto';
import { createReleases, createReleaseStore, type Releases } from '../releases/index.ts';
import { verifyDownloadToken } from '../releases/tokens.ts';
import { startTestHub, type TestHub } from '../test-support.ts';
import { attachStatusFeed, hubRolloutPorts } from './hub-ports.ts';
import { RolloutService } from './service.ts';
import { createRolloutStore } from './store.ts';
import { silentLogger } from './testing.ts';

let hub: TestHub;
let releases: Releases;
let tmp: string;
let client: MqttClient;
let secret: string;
const targets: UpdateTarget[] = [];
let seq = 0;

function telemetry(o: { ts: number; fault?: boolean; appUp?: boolean; ok?: number; failed?: number }): Buffer {
  const base = EXAMPLES.telemetry;
  return Buffer.from(
    JSON.stringify({
      ...base,
      epoch: 'rolloutTest1',
      seq: ++seq,
      ts: new Date(o.ts).toISOString(),
      peripherals: { idCardReader: { status: o.fault ? 'fault' : 'ok' } },
      app: { ...base.app, up: o.appUp ?? true, transactionsOk: o.ok ?? 10, transactionsFailed: o.failed ?? 0 },
    }),
  );
}

async function until<T>(f: () => T | undefined | false, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}

beforeAll(async () => {
  hub = await startTestHub();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-hubports-'));
  const keys = generateReleaseKeyPair();
  fs.writeFileSync(path.join(tmp, 'pub.pem'), keys.publicKeyPem);
  releases = await createReleases({ store: createReleaseStore(hub.engine), releaseKeys: path.join(tmp, 'pub.pem'), logger: silentLogger(), isAdminToken: () => true });
  const artifact = Buffer.from('not really a tarball, but signed bytes all the same');
  const bytes = canonicalManifestBytes({
    v: 1,
    kind: 'app',
    version: '3.3.0',
    size: artifact.length,
    sha256: createHash('sha256').update(artifact).digest('hex'),
    terminalTypes: ['id-card'],
    createdAt: new Date().toISOString(),
  });
  await releases.store.ingest({
    manifestB64: Buffer.from(bytes).toString('base64'),
    signatureB64: signManifest(bytes, privateKeyFromPem(keys.privateKeyPem)),
    body: [artifact],
  });
  ({ secret } = await hub.terminal('GZ-T-001-K01', { station: 'GZ-T-001' }));
  await hub.terminal('GZ-T-002-K01', { station: 'GZ-T-002' });
  await hub.terminal('GZ-Y-001-K01', { station: 'GZ-Y-001', type: 'endorsement' });
  client = await hub.connect('GZ-T-001-K01', secret);
  client.on('message', (_topic, payload) => void targets.push(JSON.parse(payload.toString()) as UpdateTarget));
  await client.subscribeAsync(topicFor('GZ-T-001-K01', 'update/target'), { qos: 1 });
});

afterAll(async () => {
  await hub?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('rollout ports on a real hub', () => {
  it('reads the fleet with each terminal’s ancestors from the registry', async () => {
    const ports = hubRolloutPorts(hub, releases, { baseUrl: 'http://hub.example' });
    const fleet = (await ports.fleet()).sort((a, b) => (a.id < b.id ? -1 : 1));
    expect(fleet).toEqual([
      { id: 'GZ-T-001-K01', type: 'id-card', ancestors: ['GZ-T-001', 'GZ-T', 'GZ'] },
      { id: 'GZ-T-002-K01', type: 'id-card', ancestors: ['GZ-T-002', 'GZ-T', 'GZ'] },
      { id: 'GZ-Y-001-K01', type: 'endorsement', ancestors: ['GZ-Y-001', 'GZ-Y', 'GZ'] },
    ]);
  });

  it('judges health from presence and telemetry: online, new fault since the commit, app heartbeat, failure rate', async () => {
    const t0 = Date.now() - 60_000;
    let now = t0;
    const ports = hubRolloutPorts(hub, releases, { baseUrl: 'http://hub.example', now: () => now });
    // before the update: 100 transactions, 2 failed
    for (let i = 0; i < 5; i++) await client.publishAsync(topicFor('GZ-T-001-K01', 'telemetry'), telemetry({ ts: t0 - 50_000 + i * 1000, ok: 19, failed: 1 }), { qos: 1 });
    const commit = t0;
    for (let i = 0; i < 5; i++) await client.publishAsync(topicFor('GZ-T-001-K01', 'telemetry'), telemetry({ ts: commit + 1000 + i * 1000, ok: 20, failed: 0 }), { qos: 1 });
    now = commit + 50_000;
    const fine = await until(async () => {
      const h = await ports.health('GZ-T-001-K01', commit);
      return h?.failureRate !== null && h?.online ? h : undefined;
    });
    expect(fine).toEqual({ online: true, newPeripheralFault: false, appAlive: true, failureRate: 0, baselineFailureRate: 0.05 });

    await client.publishAsync(topicFor('GZ-T-001-K01', 'telemetry'), telemetry({ ts: commit + 20_000, fault: true, appUp: false, ok: 0, failed: 40 }), { qos: 1 });
    const sick = await until(async () => {
      const h = await ports.health('GZ-T-001-K01', commit);
      return h?.newPeripheralFault ? h : undefined;
    });
    expect(sick).toMatchObject({ online: true, newPeripheralFault: true, appAlive: false });
    expect(sick!.failureRate).toBeCloseTo(40 / 140); // 100 ok + 40 failed since the commit
    expect((await ports.health('GZ-T-002-K01', commit))?.online).toBe(false); // never connected
    expect(await ports.health('NOPE', commit)).toBeUndefined();
  });

  it('a rollout publishes a retained update/target with a working token over MQTT, and abort clears it', async () => {
    const ports = hubRolloutPorts(hub, releases, { baseUrl: 'http://127.0.0.1:1' });
    const changes: unknown[] = [];
    hub.bus.on('changes', (c: unknown[]) => changes.push(...c));
    const service = await new RolloutService({ store: createRolloutStore(hub.engine), ports, logger: silentLogger() }).init();
    const r = await service.create({ releaseId: 'app-3.3.0', nodeIds: ['GZ-T'], waves: [{ kind: 'pilot', terminals: ['GZ-T-001-K01'] }, { kind: 'rest' }] }, 'admin');
    expect(r.waves.map((w) => w.size)).toEqual([1, 1]); // the endorsement kiosk in GZ-Y is out of scope and type
    const target = await until(() => targets.find((t) => t.release?.id === 'app-3.3.0'));
    expect(updateTargetSchema.safeParse(target).success).toBe(true);
    expect(target).toMatchObject({ rolloutId: r.id, urgent: false, release: { url: 'http://127.0.0.1:1/api/v1/releases/app-3.3.0/artifact' } });
    expect(verifyDownloadToken(releases.tokenKey, target.token!, 'app-3.3.0')).toEqual({ ok: true, terminalId: 'GZ-T-001-K01' });
    expect(changes).toContainEqual(expect.objectContaining({ type: 'rollout', terminalId: 'GZ-T-001-K01', data: expect.objectContaining({ kind: 'send-target', rolloutId: r.id }) }));

    await service.abort(r.id, 'admin');
    const cleared = await until(() => targets.find((t) => t.release === null));
    expect(cleared).toMatchObject({ release: null, rolloutId: r.id });
    // a reconnecting terminal gets the retained (cleared) target
    const again = await hub.connect('GZ-T-001-K01', secret);
    const got: UpdateTarget[] = [];
    again.on('message', (_t, p) => void got.push(JSON.parse(p.toString()) as UpdateTarget));
    await again.subscribeAsync(topicFor('GZ-T-001-K01', 'update/target'), { qos: 1 });
    expect(await until(() => got[0])).toMatchObject({ release: null });
  });

  it('feeds update/status changes from the bus to the rollouts, and a failed pilot pauses the rollout', async () => {
    const ports = hubRolloutPorts(hub, releases, { baseUrl: 'http://127.0.0.1:1' });
    const service = await new RolloutService({ store: createRolloutStore(hub.engine), ports, logger: silentLogger() }).init();
    const detach = attachStatusFeed(hub.bus, service);
    try {
      const r = await service.create({ releaseId: 'app-3.3.0', nodeIds: ['GZ-T'], waves: [{ kind: 'pilot', terminals: ['GZ-T-001-K01'] }, { kind: 'rest' }] }, 'admin');
      // what the ingest emits after storing the terminal's update/status
      hub.bus.emit('changes', [{ type: 'update', terminalId: 'GZ-T-001-K01', at: Date.now(), data: { state: 'failed', version: '3.3.0', releaseId: 'app-3.3.0', rolloutId: r.id, error: { code: 'health-check-failed', message: 'x' } } }]);
      hub.bus.emit('changes', [{ type: 'update', terminalId: 'GZ-T-001-K01', at: Date.now(), data: { state: 'failed', version: '3.3.0' } }]); // no releaseId: ignored
      const paused = await until(() => (service.get(r.id).status === 'paused' ? service.get(r.id) : undefined));
      expect(paused.pauseReason).toMatchObject({ code: 'wave-gate-failed', terminals: [{ id: 'GZ-T-001-K01', code: 'health-check-failed' }] });
    } finally {
      detach();
    }
  });
});
