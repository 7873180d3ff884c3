/**
 * The rollouts as the hub wires them (hub.ts, api/app.ts): /api/v1/rollouts with operators' access rules and
 * scope, download URLs from the hub's own address, update/status over MQTT driving a rollout through ingest, and
 * rollout changes on the live event stream.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalManifestBytes, EXAMPLES, topicFor, type UpdateTarget } from '@kiosk-fleet/protocol';
import { generateReleaseKeyPair, privateKeyFromPem, signManifest } from '@kiosk-fleet/protocol/release-signing';
import { operator, type Operator } from '../auth/testing.ts';
import { ConfigError, parseConfig } from '../config.ts';
import { startTestHub, until, type TestHub } from '../test-support.ts';
import { commonNode } from './hub-ports.ts';

let hub: TestHub;
let tmp: string;
let client: MqttClient;
const targets: UpdateTarget[] = [];
let thAdmin: Operator;
let thTech: Operator;
let thViewer: Operator;
const artifact = Buffer.from('signed bytes of a kiosk app bundle, for the wiring test');

interface View {
  id: string;
  nodeIds: string[];
  status: string;
  terminals?: Record<string, { phase: string }>;
}

async function body<T>(res: Response, status: number): Promise<T> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  return JSON.parse(text) as T;
}

const spec = (nodeIds: string[]) => ({ releaseId: 'app-4.0.0', nodeIds, waves: [{ kind: 'pilot', stations: [`${nodeIds[0]}-001`] }, { kind: 'rest' }] });

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-rollout-wiring-'));
  const keys = generateReleaseKeyPair();
  fs.writeFileSync(path.join(tmp, 'pub.pem'), keys.publicKeyPem);
  hub = await startTestHub({ releaseKeys: path.join(tmp, 'pub.pem') });
  const { secret } = await hub.terminal('GZ-TH-001-01', { station: 'GZ-TH-001' });
  await hub.terminal('GZ-YX-001-01', { station: 'GZ-YX-001' });
  const manifest = canonicalManifestBytes({
    v: 1,
    kind: 'app',
    version: '4.0.0',
    size: artifact.length,
    sha256: createHash('sha256').update(artifact).digest('hex'),
    terminalTypes: ['id-card'],
    createdAt: new Date().toISOString(),
  });
  const up = await hub.api('/api/v1/releases', {
    method: 'POST',
    body: artifact,
    headers: { 'x-kf-manifest': Buffer.from(manifest).toString('base64'), 'x-kf-signature': signManifest(manifest, privateKeyFromPem(keys.privateKeyPem)) },
  });
  expect(up.status, await up.text()).toBe(201);
  [thAdmin, thTech, thViewer] = await Promise.all([
    operator(hub, 'th-admin', 'district-admin', 'GZ-TH'),
    operator(hub, 'th-tech', 'technician', 'GZ-TH'),
    operator(hub, 'th-viewer', 'viewer', 'GZ-TH'),
  ]);
  client = await hub.connect('GZ-TH-001-01', secret);
  client.on('message', (_t, p) => void targets.push(JSON.parse(p.toString()) as UpdateTarget));
  await client.subscribeAsync(topicFor('GZ-TH-001-01', 'update/target'), { qos: 1 });
}, 60_000);

afterAll(async () => {
  await hub?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('rollouts wired into the hub', () => {
  it('district admins steer rollouts of their district only; technicians and viewers read them and get 403 on writes', async () => {
    const city = await body<View>(await hub.api('/api/v1/rollouts', { method: 'POST', json: spec(['GZ-YX']) }), 201);
    expect(city.nodeIds).toEqual(['GZ-YX']);
    const own = await body<View>(await thAdmin.api('/api/v1/rollouts', { method: 'POST', json: spec(['GZ-TH']) }), 201);

    // another district's rollout does not exist for them: not listed, 404 to read or steer, 404 to create there
    const listed = await body<{ items: View[] }>(await thAdmin.api('/api/v1/rollouts'), 200);
    expect(listed.items.map((r) => r.id)).toEqual([own.id]);
    expect((await thAdmin.api(`/api/v1/rollouts/${city.id}`)).status).toBe(404);
    expect((await thAdmin.api(`/api/v1/rollouts/${city.id}/abort`, { method: 'POST' })).status).toBe(404);
    expect((await thAdmin.api('/api/v1/rollouts', { method: 'POST', json: spec(['GZ-YX']) })).status).toBe(404);
    expect((await thAdmin.api('/api/v1/rollouts', { method: 'POST', json: spec(['GZ']) })).status).toBe(404);

    for (const who of [thTech, thViewer]) {
      expect((await body<{ items: View[] }>(await who.api('/api/v1/rollouts'), 200)).items.map((r) => r.id)).toEqual([own.id]);
      expect((await who.api(`/api/v1/rollouts/${own.id}`)).status).toBe(200);
      expect(await body<{ error: { code: string } }>(await who.api(`/api/v1/rollouts/${own.id}/pause`, { method: 'POST', json: {} }), 403)).toMatchObject({ error: { code: 'forbidden' } });
      expect((await who.api('/api/v1/rollouts', { method: 'POST', json: spec(['GZ-TH']) })).status).toBe(403);
    }
    // the optional pause body, when there, must be `{message?}` (finding F11-8: a JSON null was a 500)
    for (const bad of ['null', '5', '[]', '{"message":7}', '{"why":"x"}', 'not json']) {
      const res = await thAdmin.api(`/api/v1/rollouts/${own.id}/pause`, { method: 'POST', body: bad, headers: { 'content-type': 'application/json' } });
      expect(await body<{ error: { code: string } }>(res, 400), bad).toMatchObject({ error: { code: 'invalid-request' } });
    }
    const paused = await body<View>(await thAdmin.api(`/api/v1/rollouts/${own.id}/pause`, { method: 'POST', json: { message: 'lunch rush' } }), 200);
    expect(paused.status).toBe('paused');
    expect((await thAdmin.api('/api/v1/rollouts', { method: 'POST', json: { ...spec(['GZ-TH']), releaseId: 'app-9.9.9' } })).status).toBe(400);

    // every write leaves an audit record with who did it
    const audit = await body<{ items: { action: string; actor: string }[] }>(await hub.api('/api/v1/audit?limit=50'), 200);
    expect(audit.items).toContainEqual(expect.objectContaining({ action: 'rollout.pause', actor: expect.stringMatching(/^th-admin/), nodeId: 'GZ-TH' }));
    await body(await hub.api(`/api/v1/rollouts/${city.id}/abort`, { method: 'POST' }), 200);
    await body(await thAdmin.api(`/api/v1/rollouts/${own.id}/abort`, { method: 'POST' }), 200);
  });

  it('targets carry a download URL on the hub’s own address; update/status over MQTT moves the rollout and shows on the event stream', async () => {
    // the live stream as the district admin sees it
    const abort = new AbortController();
    const listenersBefore = hub.bus.listenerCount('changes');
    const res = await thAdmin.api('/api/v1/events', { signal: abort.signal });
    expect(res.status).toBe(200);
    const seen: { type: string; terminalId: string; data: Record<string, unknown> }[] = [];
    void (async () => {
      const dec = new TextDecoder();
      let buf = '';
      for await (const chunk of res.body!) {
        buf += dec.decode(chunk as Uint8Array, { stream: true });
        for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (line.startsWith('data: ')) {
            try {
              seen.push(JSON.parse(line.slice(6)) as (typeof seen)[number]);
            } catch {
              // heartbeat or non-JSON data
            }
          }
        }
      }
    })().catch(() => undefined);

    const r = await body<View>(await hub.api('/api/v1/rollouts', { method: 'POST', json: { releaseId: 'app-4.0.0', nodeIds: ['GZ-TH'], waves: [{ kind: 'rest' }] } }), 201);
    const target = (await until(() => targets.find((t) => t.rolloutId === r.id && t.release)))!;
    expect(target.release!.url).toBe(`http://127.0.0.1:${hub.httpPort}/api/v1/releases/app-4.0.0/artifact`);
    const download = await fetch(target.release!.url, { headers: { authorization: `Bearer ${target.token}` } });
    expect(Buffer.from(await download.arrayBuffer())).toEqual(artifact);

    const status = { ...EXAMPLES['update/status'], epoch: 'wiringEpoch1', seq: 1, ts: new Date().toISOString(), rolloutId: r.id, releaseId: 'app-4.0.0', version: '4.0.0', state: 'downloading' };
    await client.publishAsync(topicFor('GZ-TH-001-01', 'update/status'), JSON.stringify(status), { qos: 1 });
    await until(async () => (await body<View>(await hub.api(`/api/v1/rollouts/${r.id}`), 200)).terminals?.['GZ-TH-001-01']?.phase === 'downloading');
    await client.publishAsync(topicFor('GZ-TH-001-01', 'update/status'), JSON.stringify({ ...status, seq: 2, state: 'failed', progress: undefined, error: { code: 'sha256-mismatch', message: 'tampered' } }), { qos: 1 });
    const paused = (await until(async () => {
      const v = await body<View & { pauseReason: { terminals?: { id: string; code: string }[] } | null }>(await hub.api(`/api/v1/rollouts/${r.id}`), 200);
      return v.status === 'paused' ? v : undefined;
    }))!;
    expect(paused.pauseReason?.terminals).toEqual([{ id: 'GZ-TH-001-01', code: 'sha256-mismatch' }]);

    await until(() => seen.some((e) => e.type === 'rollout' && e.terminalId === '' && e.data.event === 'paused'));
    expect(seen).toContainEqual(expect.objectContaining({ type: 'update', terminalId: 'GZ-TH-001-01', data: expect.objectContaining({ state: 'failed', releaseId: 'app-4.0.0', rolloutId: r.id, error: { code: 'sha256-mismatch', message: 'tampered' } }) }));
    expect(seen).toContainEqual(expect.objectContaining({ type: 'rollout', terminalId: 'GZ-TH-001-01', data: expect.objectContaining({ kind: 'send-target', rolloutId: r.id }) }));
    abort.abort();
    // let the server see the stream end before the hub closes (an open stream woken after close reads a closed db)
    await until(() => hub.bus.listenerCount('changes') <= listenersBefore);
  });

  it('refuses a second rollout over terminals an unfinished one covers (409 naming it), until that one is aborted', async () => {
    // what earlier tests left running or paused is ended first
    for (const r of (await body<{ items: View[] }>(await hub.api('/api/v1/rollouts'), 200)).items) {
      if (r.status === 'running' || r.status === 'paused') await body(await hub.api(`/api/v1/rollouts/${r.id}/abort`, { method: 'POST' }), 200);
    }
    const first = await body<View & { gate: unknown }>(await thAdmin.api('/api/v1/rollouts', { method: 'POST', json: { ...spec(['GZ-TH']), gate: { soakMinutes: 45, successRatio: 0.9 } } }), 201);
    // the view says what each wave must pass, for the dashboard's countdown
    expect(first.gate).toEqual({ successRatio: 0.9, soakMinutes: 45, failureRateTolerance: 0.05 });
    const refused = await body<{ error: { code: string; message: string; details: { rolloutId: string; terminals: string[] } } }>(
      await hub.api('/api/v1/rollouts', { method: 'POST', json: spec(['GZ']) }),
      409,
    );
    expect(refused.error).toMatchObject({ code: 'rollout-conflict', details: { rolloutId: first.id, terminals: ['GZ-TH-001-01'] } });
    expect(refused.error.message).toContain(first.id);
    expect(refused.error.message).toContain('GZ-TH-001-01');
    // a paused one still holds its terminals (resume would send them its target again)
    await body(await thAdmin.api(`/api/v1/rollouts/${first.id}/pause`, { method: 'POST' }), 200);
    expect((await hub.api('/api/v1/rollouts', { method: 'POST', json: spec(['GZ-TH']) })).status).toBe(409);
    // other terminals are free
    const yx = await body<View>(await hub.api('/api/v1/rollouts', { method: 'POST', json: spec(['GZ-YX']) }), 201);
    await body(await thAdmin.api(`/api/v1/rollouts/${first.id}/abort`, { method: 'POST' }), 200);
    const second = await body<View>(await thAdmin.api('/api/v1/rollouts', { method: 'POST', json: spec(['GZ-TH']) }), 201);
    for (const r of [yx, second]) await body(await hub.api(`/api/v1/rollouts/${r.id}/abort`, { method: 'POST' }), 200);
  });

  it('KF_PUBLIC_URL sets the address in download URLs; a bad one stops the start naming the key', () => {
    const base = { KF_DATA_DIR: tmp };
    expect(parseConfig({ ...base, KF_PUBLIC_URL: 'https://hub.bureau.example:8443' }).publicUrl).toBe('https://hub.bureau.example:8443');
    expect(parseConfig(base).publicUrl).toBeUndefined();
    expect(() => parseConfig({ ...base, KF_PUBLIC_URL: 'hub.bureau.example' })).toThrow(ConfigError);
    expect(() => parseConfig({ ...base, KF_PUBLIC_URL: 'ftp://hub.bureau.example' })).toThrow(/KF_PUBLIC_URL/);
  });

  it('a rollout-level event belongs to the node holding its whole scope', () => {
    expect(commonNode(['GZ-TH-001', 'GZ-TH-002'])).toBe('GZ-TH');
    expect(commonNode(['GZ-TH'])).toBe('GZ-TH');
    expect(commonNode(['GZ-TH', 'GZ-YX-001'])).toBe('GZ');
    expect(commonNode(['GZ', 'SZ'])).toBeNull();
  });
});
