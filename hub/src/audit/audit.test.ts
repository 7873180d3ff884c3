/**
 * The audit log's hash chain on real SQLite files: intact chains verify; UPDATE and DELETE are refused by the
 * database; someone who drops the triggers and edits or removes a row by hand (a second connection on the real
 * file, as an attacker with the file would) is named by verify, also through GET /api/v1/audit/verify of a running
 * hub. And every state-changing API call leaves a record with who, what, before/after and from where.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { transaction } from '../db/engine.ts';
import { queryRows } from '../db/test-query.ts';
import { dbPath, openDatabase, type Db } from '../store/db.ts';
import { createHash } from 'node:crypto';
import { canonicalManifestBytes } from '@kiosk-fleet/protocol';
import { generateReleaseKeyPair, privateKeyFromPem, signManifest } from '@kiosk-fleet/protocol/release-signing';
import { operator, type Operator } from '../auth/testing.ts';
import { startTestHub, type TestHub } from '../test-support.ts';
import { createAuditLog, GENESIS } from './log.ts';

const entry = (i: number) => ({
  actor: `user${i}`,
  actorKind: 'session',
  userId: `u_${i}`,
  action: 'terminal.move',
  objectType: 'terminal',
  objectId: `GZ-YX-001-0${i}`,
  nodeId: 'GZ-YX-001',
  before: { station: 'GZ-YX-002' },
  after: { station: 'GZ-YX-001' },
  ip: '10.0.0.1',
});

describe('the hash chain', () => {
  const dirs: string[] = [];
  const dbs: Db[] = [];
  const fresh = async (n: number) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-audit-'));
    dirs.push(dir);
    const { db } = openDatabase(dir);
    dbs.push(db);
    const log = createAuditLog({ kind: 'sqlite', db });
    for (let i = 1; i <= n; i++) await log.append(entry(i));
    // The file as someone with a shell on the server would open it, triggers dropped.
    const raw = new Database(dbPath(dir));
    dbs.push(raw);
    return { log, db, raw };
  };
  afterEach(() => {
    for (const db of dbs.splice(0)) db.close();
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  test('each record carries the previous hash; an untouched chain verifies', async () => {
    const { log } = await fresh(5);
    const rows = (await log.list({ scope: null, limit: 10 })).reverse();
    expect(rows.map((r) => r.id)).toEqual([1, 2, 3, 4, 5]);
    expect(rows[0]!.prevHash).toBe(GENESIS);
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.prevHash).toBe(rows[i - 1]!.hash);
    expect(await log.verify()).toEqual({ ok: true, checked: 5, head: rows[4]!.hash });
  });

  test('the database refuses UPDATE and DELETE on the audit log', async () => {
    const { raw } = await fresh(2);
    expect(() => raw.prepare("UPDATE audit_log SET actor = 'x' WHERE id = 1").run()).toThrow(/append-only/);
    expect(() => raw.prepare('DELETE FROM audit_log WHERE id = 1').run()).toThrow(/append-only/);
  });

  test('a row edited by hand is named by verify', async () => {
    const { log, raw } = await fresh(6);
    raw.exec('DROP TRIGGER audit_log_no_update');
    raw.prepare(`UPDATE audit_log SET after = '{"station":"GZ-TH-001"}' WHERE id = 4`).run();
    expect(await log.verify()).toMatchObject({ ok: false, brokenAt: 4, reason: 'hash-mismatch', checked: 3 });
  });

  test('a row edited with its hash recomputed breaks the link of the next row', async () => {
    const { log, raw } = await fresh(6);
    raw.exec('DROP TRIGGER audit_log_no_update');
    raw.prepare("UPDATE audit_log SET actor = 'someone-else', hash = 'f00d' WHERE id = 2").run();
    // Row 2 no longer matches its own hash; had the forger fixed that too, row 3's prevHash would not match.
    expect(await log.verify()).toMatchObject({ ok: false, brokenAt: 2 });
  });

  test('a removed row is named by the row after it', async () => {
    const { log, raw } = await fresh(5);
    raw.exec('DROP TRIGGER audit_log_no_delete');
    raw.prepare('DELETE FROM audit_log WHERE id = 3').run();
    expect(await log.verify()).toMatchObject({ ok: false, brokenAt: 4, reason: 'chain-broken' });
  });

  test('an append inside a rolled-back transaction leaves no record (the change and its record go together)', async () => {
    const { log, db } = await fresh(1);
    await expect(
      transaction({ kind: 'sqlite', db }, async (tx) => {
        await log.append(entry(2), tx);
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');
    expect(await log.list({ scope: null, limit: 10 })).toHaveLength(1);
    expect((await log.append(entry(3))).id).toBe(2);
    expect((await log.verify()).ok).toBe(true);
  });

  test('listing is scoped by node with LIKE wildcards escaped', async () => {
    const { log } = await fresh(0);
    await log.append({ ...entry(1), nodeId: 'GZ-YX-001' });
    await log.append({ ...entry(2), nodeId: 'GZ-TH-001' });
    await log.append({ ...entry(3), nodeId: null });
    expect((await log.list({ scope: 'GZ-YX', limit: 10 })).map((r) => r.id)).toEqual([1]);
    expect(await log.list({ scope: 'GZ-%', limit: 10 })).toEqual([]);
    expect((await log.list({ scope: null, limit: 10 })).map((r) => r.id)).toEqual([3, 2, 1]);
  });
});

describe('through a running hub', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startTestHub();
    await hub.terminal('GZ-YX-001-01', { station: 'GZ-YX-001' });
    await hub.registry.createNode({ id: 'GZ-YX-002', name: { zh: '站2', en: 'S2' } });
  });
  afterAll(async () => {
    await hub?.stop();
  });

  test('state-changing calls write records with who, what, object, before/after, when and from where', async () => {
    expect((await hub.api('/api/v1/terminals/GZ-YX-001-01/move', { method: 'POST', json: { station: 'GZ-YX-002', reason: 'relocated' } })).status).toBe(200);
    expect((await hub.api('/api/v1/config/terminals/GZ-YX-001-01', { method: 'PUT', json: { config: {}, expectedVersion: 0 } })).status).toBe(200);
    expect((await hub.api('/api/v1/terminals/GZ-YX-001-01/secret', { method: 'POST' })).status).toBe(200);
    expect((await hub.api('/api/v1/terminals/GZ-YX-001-01/decommission', { method: 'POST', json: { reason: 'broken' } })).status).toBe(200);
    const { items } = (await (await hub.api('/api/v1/audit?objectId=GZ-YX-001-01')).json()) as {
      items: { action: string; actor: string; at: string; ip: string | null; nodeId: string; before: unknown; after: unknown }[];
    };
    const byAction = Object.fromEntries(items.map((i) => [i.action, i]));
    expect(Object.keys(byAction).sort()).toEqual(['config.update', 'terminal.decommission', 'terminal.move', 'terminal.register', 'terminal.secret']);
    expect(byAction['terminal.move']).toMatchObject({ actor: 'admin-token', nodeId: 'GZ-YX-002', before: { station: 'GZ-YX-001' }, after: { station: 'GZ-YX-002', reason: 'relocated' } });
    expect(byAction['terminal.move']!.ip).toMatch(/127\.0\.0\.1/);
    expect(Date.now() - Date.parse(byAction['terminal.move']!.at)).toBeLessThan(60_000);
    expect(byAction['terminal.secret']!.after).toEqual({ rotated: true });
    expect(byAction['terminal.decommission']).toMatchObject({ before: { state: 'active' }, after: { state: 'decommissioned', reason: 'broken' } });
    expect(byAction['config.update']).toMatchObject({ nodeId: 'GZ-YX-002' });
  });

  test('editing an audit row by hand in the real database file makes /api/v1/audit/verify name that row', async () => {
    const before = (await (await hub.api('/api/v1/audit/verify')).json()) as { ok: boolean; checked: number };
    expect(before.ok).toBe(true);
    expect(before.checked).toBeGreaterThanOrEqual(5);
    const [target] = (await queryRows(hub.engine, "SELECT id FROM audit_log WHERE action = 'terminal.move'")) as { id: number }[];
    if (hub.engine.kind === 'sqlite') {
      const raw = new Database(dbPath(hub.dir));
      try {
        raw.exec('DROP TRIGGER audit_log_no_update');
        raw.prepare(`UPDATE audit_log SET actor = 'nobody' WHERE id = ?`).run(target!.id);
      } finally {
        raw.close();
      }
    } else {
      // The append-only triggers refuse the UPDATE; the test hub connects as the server's superuser, who may switch
      // user triggers off for one transaction (replica role), as someone with the database's password could.
      await hub.engine.pg.sql.begin(async (tx) => {
        await tx`SET LOCAL session_replication_role = replica`;
        await tx`UPDATE audit_log SET actor = 'nobody' WHERE id = ${target!.id}`;
      });
    }
    const res = await hub.api('/api/v1/audit/verify');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: false, brokenAt: target!.id, reason: 'hash-mismatch' });
  });
});

describe('releases and rollouts', { timeout: 60_000 }, () => {
  let hub: TestHub;
  let tmp: string;
  let yxAdmin: Operator;
  let uploader: Operator;
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-audit-rel-'));
    const keys = generateReleaseKeyPair();
    fs.writeFileSync(path.join(tmp, 'pub.pem'), keys.publicKeyPem);
    hub = await startTestHub({ releaseKeys: path.join(tmp, 'pub.pem') });
    await hub.terminal('GZ-YX-001-01', { station: 'GZ-YX-001' });
    await hub.terminal('GZ-TH-001-01', { station: 'GZ-TH-001' });
    [yxAdmin, uploader] = await Promise.all([operator(hub, 'yx-admin', 'district-admin', 'GZ-YX'), operator(hub, 'release-manager', 'city-admin', null)]);
    const artifact = Buffer.from('a kiosk app bundle for the audit test');
    const manifest = canonicalManifestBytes({
      v: 1,
      kind: 'app',
      version: '5.0.0',
      size: artifact.length,
      sha256: createHash('sha256').update(artifact).digest('hex'),
      terminalTypes: ['id-card'],
      createdAt: new Date().toISOString(),
    });
    const headers = { 'x-kf-manifest': Buffer.from(manifest).toString('base64'), 'x-kf-signature': signManifest(manifest, privateKeyFromPem(keys.privateKeyPem)) };
    const up = await uploader.api('/api/v1/releases', { method: 'POST', body: artifact, headers });
    expect(up.status, await up.text()).toBe(201);
    // An identical re-upload changes nothing and writes nothing.
    expect((await uploader.api('/api/v1/releases', { method: 'POST', body: artifact, headers })).status).toBe(200);
  }, 60_000);
  afterAll(async () => {
    await hub?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  interface Rec {
    action: string;
    actor: string;
    objectId: string;
    nodeId: string | null;
    ip: string | null;
    before: unknown;
    after: unknown;
  }
  const records = async (api: Operator['api'], q: string) => ((await (await api(`/api/v1/audit?${q}`)).json()) as { items: Rec[] }).items;

  test('a release upload leaves one record with its uploader, installation-wide', async () => {
    const recs = await records(hub.api, 'objectType=release');
    expect(recs).toHaveLength(1);
    expect(recs[0]!.actor).toMatch(/^release-manager \(token [0-9a-f]+\)$/);
    expect(recs[0]).toMatchObject({ action: 'release.upload', objectId: 'app-5.0.0', nodeId: null, after: { version: '5.0.0', kind: 'app' } });
    expect(recs[0]!.ip).toMatch(/127\.0\.0\.1/);
  });

  test('create, pause, resume and abort of a rollout are recorded with actor and node, and its district admin sees them', async () => {
    const spec = { releaseId: 'app-5.0.0', nodeIds: ['GZ-YX-001'], waves: [{ kind: 'rest' }] };
    const created = await yxAdmin.api('/api/v1/rollouts', { method: 'POST', json: spec });
    expect(created.status, await created.clone().text()).toBe(201);
    const { id } = (await created.json()) as { id: string };
    expect((await yxAdmin.api(`/api/v1/rollouts/${id}/pause`, { method: 'POST', json: { message: 'hold on' } })).status).toBe(200);
    expect((await hub.api(`/api/v1/rollouts/${id}/resume`, { method: 'POST' })).status).toBe(200);
    expect((await yxAdmin.api(`/api/v1/rollouts/${id}/abort`, { method: 'POST' })).status).toBe(200);
    // In the district admin's own audit view (scoped to GZ-YX), newest first.
    const recs = await records(yxAdmin.api, `objectType=rollout&objectId=${id}`);
    // The actor: the user's name (and which of their tokens, `yx-admin (token …)`).
    expect(recs.map((r) => [r.action, r.actor.split(' ')[0], r.nodeId])).toEqual([
      ['rollout.abort', 'yx-admin', 'GZ-YX-001'],
      ['rollout.resume', 'admin-token', 'GZ-YX-001'],
      ['rollout.pause', 'yx-admin', 'GZ-YX-001'],
      ['rollout.create', 'yx-admin', 'GZ-YX-001'],
    ]);
    expect(recs[2]).toMatchObject({ before: { status: 'running' }, after: { status: 'paused', message: 'hold on' } });
    expect(recs[3]).toMatchObject({ after: { releaseId: 'app-5.0.0', nodeIds: ['GZ-YX-001'] } });
    // A rollout over two districts belongs to the city: not in a district admin's view.
    const wide = await hub.api('/api/v1/rollouts', { method: 'POST', json: { ...spec, nodeIds: ['GZ-YX', 'GZ-TH'] } });
    expect(wide.status).toBe(201);
    const wideId = ((await wide.json()) as { id: string }).id;
    expect((await records(hub.api, `objectId=${wideId}`)).map((r) => [r.action, r.nodeId])).toEqual([['rollout.create', 'GZ']]);
    expect(await records(yxAdmin.api, `objectId=${wideId}`)).toEqual([]);
  });
});

describe('the CLI', () => {
  test('`kiosk-fleet import` writes its audit record, without the new secrets', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-audit-cli-'));
    try {
      const fleet = path.join(dir, 'fleet.json');
      fs.writeFileSync(
        fleet,
        JSON.stringify({
          city: { id: 'GZ', name: { zh: '广州', en: 'GZ' } },
          districts: [{ id: 'GZ-YX', name: { zh: '越秀', en: 'YX' } }],
          stations: [{ id: 'GZ-YX-001', name: { zh: '站', en: 'S1' } }],
          terminals: [{ id: 'GZ-YX-001-01', station: 'GZ-YX-001', type: 'id-card', serial: 'S1' }],
        }),
      );
      const bin = path.resolve(import.meta.dirname, '..', '..', 'bin', 'kiosk-fleet.mjs');
      const out = execFileSync(process.execPath, [bin, 'import', fleet], { env: { ...process.env, KF_DATA_DIR: dir }, encoding: 'utf8' });
      const { terminals } = JSON.parse(out) as { terminals: { created: { id: string; secret: string }[] } };
      const secret = terminals.created[0]!.secret;
      const { db } = openDatabase(dir);
      try {
        const log = createAuditLog({ kind: 'sqlite', db });
        const [rec] = await log.list({ scope: null, action: 'fleet.import', limit: 10 });
        expect(rec).toMatchObject({ actorKind: 'cli', objectId: 'fleet.json' });
        expect(JSON.parse(rec!.after!)).toMatchObject({ nodesCreated: ['GZ', 'GZ-YX', 'GZ-YX-001'], terminalsCreated: ['GZ-YX-001-01'] });
        expect(JSON.stringify(rec)).not.toContain(secret);
        expect((await log.verify()).ok).toBe(true);
      } finally {
        db.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
