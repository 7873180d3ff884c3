/**
 * `kiosk-fleet backup` copies the database, and releases, their artifacts, the download-token key and rollouts
 * live in it: a backup restored into a new, empty data dir serves the same download (to a token the first hub
 * issued) and the same rollout.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalManifestBytes } from '@kiosk-fleet/protocol';
import { generateReleaseKeyPair, privateKeyFromPem, signManifest } from '@kiosk-fleet/protocol/release-signing';
import { backupDatabase } from '../backup.ts';
import { startTestHub, type TestHub } from '../test-support.ts';

let tmp: string;
const hubs: TestHub[] = [];
// Several chunks (256 KiB each), so the restored download reads across chunk boundaries.
const artifact = Buffer.from(Array.from({ length: 700_000 }, (_, i) => (i * 13) % 256));

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-backup-releases-'));
});

afterAll(async () => {
  for (const h of hubs) await h.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('backup and restore of releases and rollouts', () => {
  it('a backup restored into an empty data dir serves the release download and the rollout', async () => {
    const keys = generateReleaseKeyPair();
    const pub = path.join(tmp, 'pub.pem');
    fs.writeFileSync(pub, keys.publicKeyPem);
    const first = await startTestHub({ releaseKeys: pub }, path.join(tmp, 'first'), { engine: 'sqlite' }); // `kiosk-fleet backup` is SQLite's (PostgreSQL: pg_dump)
    hubs.push(first);
    await first.terminal('GZ-T-001-K01');
    const manifest = canonicalManifestBytes({
      v: 1,
      kind: 'app',
      version: '6.0.0',
      size: artifact.length,
      sha256: sha256(artifact),
      terminalTypes: ['id-card'],
      createdAt: new Date().toISOString(),
    });
    const up = await first.api('/api/v1/releases', {
      method: 'POST',
      body: artifact,
      headers: { 'x-kf-manifest': Buffer.from(manifest).toString('base64'), 'x-kf-signature': signManifest(manifest, privateKeyFromPem(keys.privateKeyPem)) },
    });
    expect(up.status, await up.text()).toBe(201);
    const created = await first.api('/api/v1/rollouts', { method: 'POST', json: { releaseId: 'app-6.0.0', nodeIds: ['GZ'], waves: [{ kind: 'rest' }] } });
    expect(created.status, await created.clone().text()).toBe(201);
    const rollout = (await created.json()) as { id: string; status: string };
    const token = first.releases.issueToken('app-6.0.0', 'GZ-T-001-K01').token;

    const backup = path.join(tmp, 'backups', 'fleet.db');
    await backupDatabase(first.dir, backup);
    await first.stop();
    hubs.length = 0;

    // Restore as hub/README.md says: the backup becomes kiosk-fleet.db of a data dir holding nothing else.
    const restoredDir = path.join(tmp, 'restored');
    fs.mkdirSync(restoredDir);
    fs.copyFileSync(backup, path.join(restoredDir, 'kiosk-fleet.db'));
    const restored = await startTestHub({ releaseKeys: pub }, restoredDir, { engine: 'sqlite' });
    hubs.push(restored);

    const dl = await fetch(`http://127.0.0.1:${restored.httpPort}/api/v1/releases/app-6.0.0/artifact`, { headers: { authorization: `Bearer ${token}` } });
    expect(dl.status).toBe(200);
    // (sha256 compared, not the bytes: the matcher's element-wise diff of a 700 kB buffer takes seconds)
    expect(sha256(Buffer.from(await dl.arrayBuffer()))).toBe(sha256(artifact));
    const part = await fetch(`http://127.0.0.1:${restored.httpPort}/api/v1/releases/app-6.0.0/artifact`, {
      headers: { authorization: `Bearer ${token}`, range: 'bytes=262140-524300' },
    });
    expect(part.status).toBe(206);
    expect(sha256(Buffer.from(await part.arrayBuffer()))).toBe(sha256(artifact.subarray(262140, 524301)));

    const again = await restored.api(`/api/v1/rollouts/${rollout.id}`);
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ id: rollout.id, releaseId: 'app-6.0.0', status: rollout.status, terminals: { 'GZ-T-001-K01': expect.anything() } });
  }, 60_000);
});
