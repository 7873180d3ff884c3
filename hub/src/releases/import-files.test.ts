/**
 * Upgrading a hub that kept releases and rollouts as files (before migration 0008): the first start imports them
 * into the database (releases through the upload's checks), keeps the old download-token key so tokens already
 * published keep working, moves the old files aside, and a second start finds nothing to import.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalManifestBytes } from '@kiosk-fleet/protocol';
import { generateReleaseKeyPair, privateKeyFromPem, signManifest } from '@kiosk-fleet/protocol/release-signing';
import { createRollout, DEFAULT_GATE, pause } from '../rollouts/engine.ts';
import type { RolloutRecord } from '../rollouts/service.ts';
import { startTestHub, type TestHub } from '../test-support.ts';
import type { ReleaseRecord } from './artifact-store.ts';
import { issueDownloadToken } from './tokens.ts';

let tmp: string;
let dataDir: string;
let hub: TestHub | undefined;
const oldKey = randomBytes(32);
const good = Buffer.from('the bytes of app 5.0.0, stored by an older hub');
const spoilt = Buffer.from('the bytes of app 5.1.0, damaged on disk since');

function oldRecord(version: string, bytes: Buffer, keys: ReturnType<typeof generateReleaseKeyPair>): ReleaseRecord {
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const createdAt = '2026-11-01T08:00:00.000Z';
  const manifest = canonicalManifestBytes({ v: 1, kind: 'app', version, size: bytes.length, sha256, terminalTypes: ['id-card'], createdAt });
  return {
    id: `app-${version}`,
    kind: 'app',
    version,
    size: bytes.length,
    sha256,
    terminalTypes: ['id-card'],
    minAgentVersion: null,
    createdAt,
    uploadedAt: '2026-11-02T09:30:00.000Z',
    keyId: 'whatever',
    manifest: Buffer.from(manifest).toString('base64'),
    signature: signManifest(manifest, privateKeyFromPem(keys.privateKeyPem)),
  };
}

function oldRollout(): RolloutRecord {
  const spec = {
    id: 'r-fromfiles',
    release: { id: 'app-5.0.0', version: '5.0.0', terminalTypes: ['id-card'] },
    scope: { nodeIds: ['GZ'] },
    waves: [{ kind: 'rest' as const }],
    gate: DEFAULT_GATE,
    maxInFlight: 50,
    inFlightTimeoutMs: 30 * 60_000,
    waveTimeoutMs: null,
    urgent: false,
  };
  const t = Date.parse('2026-11-03T10:00:00Z');
  const created = createRollout(spec, [{ id: 'GZ-T-001-K01', type: 'id-card', ancestors: ['GZ-T-001', 'GZ-T', 'GZ'] }], t);
  return { v: 1, spec, state: pause(created.state, t + 1000, 'paused on the old hub').state, createdBy: 'admin' };
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-import-files-'));
  dataDir = path.join(tmp, 'data');
  const keys = generateReleaseKeyPair();
  fs.writeFileSync(path.join(tmp, 'pub.pem'), keys.publicKeyPem);
  // The layout an older hub left: artifacts/index.json + artifacts/<sha256>, rollouts/<id>.json, release-token.key.
  const artifacts = path.join(dataDir, 'artifacts');
  fs.mkdirSync(path.join(artifacts, 'tmp'), { recursive: true });
  const records = [oldRecord('5.0.0', good, keys), oldRecord('5.1.0', spoilt, keys)];
  fs.writeFileSync(path.join(artifacts, records[0]!.sha256), good);
  fs.writeFileSync(path.join(artifacts, records[1]!.sha256), Buffer.concat([spoilt.subarray(1), Buffer.from('x')]));
  fs.writeFileSync(path.join(artifacts, 'index.json'), JSON.stringify({ v: 1, releases: records }));
  fs.mkdirSync(path.join(dataDir, 'rollouts'));
  fs.writeFileSync(path.join(dataDir, 'rollouts', 'r-fromfiles.json'), JSON.stringify(oldRollout()));
  fs.writeFileSync(path.join(dataDir, 'rollouts', 'r-torn.json'), '{"v":1,"spec":');
  fs.writeFileSync(path.join(dataDir, 'release-token.key'), oldKey, { mode: 0o600 });
});

afterAll(async () => {
  await hub?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('a hub upgraded from release and rollout files', () => {
  it('serves the imported release with a token the old hub issued, and the imported rollout', async () => {
    hub = await startTestHub({ releaseKeys: path.join(tmp, 'pub.pem') }, dataDir);
    await hub.terminal('GZ-T-001-K01');

    const list = (await (await hub.api('/api/v1/releases')).json()) as { items: ReleaseRecord[] };
    expect(list.items.map((r) => [r.id, r.uploadedAt])).toEqual([['app-5.0.0', '2026-11-02T09:30:00.000Z']]); // 5.1.0 fails its sha256
    const token = issueDownloadToken(oldKey, { releaseId: 'app-5.0.0', terminalId: 'GZ-T-001-K01' }).token;
    const dl = await fetch(`http://127.0.0.1:${hub.httpPort}/api/v1/releases/app-5.0.0/artifact`, { headers: { authorization: `Bearer ${token}`, range: 'bytes=4-' } });
    expect(dl.status).toBe(206);
    expect(Buffer.from(await dl.arrayBuffer())).toEqual(good.subarray(4));

    const r = (await (await hub.api('/api/v1/rollouts/r-fromfiles')).json()) as { id: string; status: string; releaseId: string; pauseReason: { message?: string } };
    expect(r).toMatchObject({ id: 'r-fromfiles', status: 'paused', releaseId: 'app-5.0.0' });

    // the old files are aside, the refused release and the torn rollout only there
    const entries = fs.readdirSync(dataDir);
    expect(entries.filter((e) => e === 'artifacts' || e === 'rollouts' || e === 'release-token.key')).toEqual([]);
    const movedArtifacts = entries.find((e) => e.startsWith('artifacts.imported-'));
    const movedRollouts = entries.find((e) => e.startsWith('rollouts.imported-'));
    expect(movedArtifacts && movedRollouts && entries.some((e) => e.startsWith('release-token.key.imported-'))).toBeTruthy();
    expect(fs.readdirSync(path.join(dataDir, movedRollouts!)).sort()).toEqual(['r-fromfiles.json', 'r-torn.json']);
  });

  it('imports once: a second start has nothing to import and serves the same', async () => {
    await hub!.stop();
    const moved = (): string[] => fs.readdirSync(dataDir).filter((e) => e.includes('.imported-')).sort();
    const before = moved();
    hub = await startTestHub({ releaseKeys: path.join(tmp, 'pub.pem') }, dataDir);
    expect(moved()).toEqual(before);
    expect(fs.readdirSync(dataDir).filter((e) => e === 'artifacts' || e === 'rollouts')).toEqual([]);
    expect(((await (await hub.api('/api/v1/releases')).json()) as { items: unknown[] }).items).toHaveLength(1);
    expect((await hub.api('/api/v1/rollouts/r-fromfiles')).status).toBe(200);
    expect(hub.releases.tokenKey).toEqual(oldKey);
  });
});
