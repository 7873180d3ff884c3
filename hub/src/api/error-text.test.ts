/**
 * Every API error a dashboard user can meet carries `error.text` (a catalogue code with parameters) beside its English
 * `message`, so the zh page says it in Chinese instead of "失败：<English sentence>". Each error code of the catalogue
 * is produced here by the real route of an in-process hub (real broker, real database, real HTTP) and rendered in
 * both languages; an error without a sentence of its own carries the generic one for its status.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalManifestBytes, renderText, TEXT_CODES, type Text } from '@kiosk-fleet/protocol';
import { generateReleaseKeyPair, privateKeyFromPem, signManifest } from '@kiosk-fleet/protocol/release-signing';
import { login, operator, type Operator } from '../auth/testing.ts';
import { startTestHub, type TestHub } from '../test-support.ts';

let hub: TestHub;
let tmp: string;
let viewer: Operator;
let keys: ReturnType<typeof generateReleaseKeyPair>;
const produced = new Set<string>();

interface ErrorBody {
  error: { code: string; message: string; text?: Text };
}

/** The route's error: its status, its text in both languages (recorded as produced), the English message as it is. */
async function failure(res: Response, status: number): Promise<{ code: string; message: string; text: Text; en: string; zh: string }> {
  const raw = await res.text();
  expect(res.status, raw).toBe(status);
  const { error } = JSON.parse(raw) as ErrorBody;
  expect(error.text, raw).toBeDefined();
  const text = error.text!;
  const en = renderText(text, 'en');
  const zh = renderText(text, 'zh');
  expect(en, text.code).not.toBeNull();
  expect(zh, text.code).not.toBeNull();
  expect(en).not.toMatch(/[\u4e00-\u9fff]/);
  expect(zh).toMatch(/[\u4e00-\u9fff]/);
  produced.add(text.code);
  if (text.code === 'error.status') produced.add(`error.status:${String(text.params.status)}`);
  return { code: error.code, message: error.message, text, en: en!, zh: zh! };
}

function release(version: string, sign = true): { body: Buffer; headers: Record<string, string> } {
  const artifact = Buffer.from(`bundle ${version}`);
  const manifest = canonicalManifestBytes({
    v: 1,
    kind: 'app',
    version,
    size: artifact.length,
    sha256: createHash('sha256').update(artifact).digest('hex'),
    terminalTypes: ['id-card'],
    createdAt: new Date().toISOString(),
  });
  const other = generateReleaseKeyPair();
  return {
    body: artifact,
    headers: {
      'x-kf-manifest': Buffer.from(manifest).toString('base64'),
      'x-kf-signature': signManifest(manifest, privateKeyFromPem((sign ? keys : other).privateKeyPem)),
    },
  };
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-error-text-'));
  keys = generateReleaseKeyPair();
  fs.writeFileSync(path.join(tmp, 'pub.pem'), keys.publicKeyPem);
  hub = await startTestHub({ releaseKeys: path.join(tmp, 'pub.pem') });
  await hub.terminal('GZ-YX-001-01', { station: 'GZ-YX-001' });
  await hub.terminal('GZ-YX-001-02', { station: 'GZ-YX-001' });
  viewer = await operator(hub, 'yx-viewer', 'viewer', 'GZ-YX');
}, 60_000);

afterAll(async () => {
  await hub?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('API errors carry a catalogue sentence beside the English message', { timeout: 60_000 }, () => {
  it('a stale config save (409) says to reload, with the version now saved', async () => {
    const ok = await hub.api('/api/v1/config/nodes/GZ-YX', { method: 'PUT', json: { config: { telemetryInterval: 30 }, expectedVersion: 0 } });
    expect(ok.status, await ok.text()).toBe(200);
    const e = await failure(await hub.api('/api/v1/config/nodes/GZ-YX', { method: 'PUT', json: { config: { telemetryInterval: 40 }, expectedVersion: 0 } }), 409);
    expect(e.text).toEqual({ code: 'error.config-stale', params: { version: 1 } });
    expect(e.zh).toBe('此配置在您读取后已被修改（当前为第 1 版）：请重新加载后再修改');
    expect(e.message).toContain('changed since you read it');
  });

  it('an invalid config names its fields', async () => {
    const e = await failure(await hub.api('/api/v1/config/nodes/GZ-YX', { method: 'PUT', json: { config: { telemetryInterval: 'often' }, expectedVersion: 1 } }), 400);
    expect(e.code).toBe('invalid-config');
    expect(e.text.code).toBe('error.invalid-config');
    expect(e.zh).toContain('telemetryInterval');
  });

  it('a malformed body names its fields', async () => {
    const e = await failure(await hub.api('/api/v1/terminals', { method: 'POST', json: { id: 'GZ-YX-001-03' } }), 400);
    expect(e.text.code).toBe('error.invalid-fields');
  });

  it('a terminal outside the caller’s area or missing is "not found", in their language', async () => {
    const e = await failure(await hub.api('/api/v1/terminals/GZ-ZZ-001-01'), 404);
    expect(e.text).toEqual({ code: 'error.not-found', params: { what: 'terminal', id: 'GZ-ZZ-001-01' } });
    expect(e.zh).toBe('未找到终端 GZ-ZZ-001-01（或不在您的管辖范围内）');
  });

  it('a viewer’s write is refused for their role', async () => {
    const e = await failure(await viewer.api('/api/v1/config/nodes/GZ-YX', { method: 'PUT', json: { config: {}, expectedVersion: 1 } }), 403);
    expect(e.text.code).toBe('error.forbidden');
  });

  it('an import with a bad row names the row', async () => {
    const csv = 'id,station,type,serial\nGZ-YX-001-90,GZ-YX-001,id-card,SN90\nGZ-YX-001-91,GZ-YX,id-card,SN91\n';
    const e = await failure(await hub.api('/api/v1/import', { method: 'POST', body: csv, headers: { 'content-type': 'text/csv' } }), 400);
    expect(e.text.code).toBe('error.invalid-import');
    expect(e.zh).toMatch(/^导入被拒绝：第 \d+ 行无效$/);
  });

  it('users: a taken name, a weak password, a wrong password, a wrong login and too many of them', async () => {
    const taken = await failure(await hub.api('/api/v1/users', { method: 'POST', json: { username: 'yx-viewer', role: 'viewer', nodeId: 'GZ-YX' } }), 409);
    expect(taken.text).toEqual({ code: 'error.username-taken', params: { username: 'yx-viewer' } });
    const weak = await failure(await hub.api('/api/v1/users', { method: 'POST', json: { username: 'yx-new', role: 'viewer', nodeId: 'GZ-YX', password: 'short' } }), 400);
    expect(weak.text.code).toBe('error.weak-password');
    // The rule that failed, in the reader's language (not only the list of rules).
    expect(weak.text.params).toMatchObject({ rule: 'too-short' });
    expect(weak.zh).toMatch(/：太短$/);
    expect(weak.en).toMatch(/: too short$/);
    const session = await login(hub, 'yx-viewer', viewer.password);
    const wrong = await failure(await session.api('/api/v1/auth/password', { method: 'POST', json: { currentPassword: 'not-my-password-at-all', newPassword: 'a long phrase of unrelated words 7' } }), 403);
    expect(wrong.text.code).toBe('error.wrong-password');
    const bad = () => fetch(`http://127.0.0.1:${hub.httpPort}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'nobody-here', password: 'wrong-password-123' }) });
    const refused = await failure(await bad(), 401);
    expect(refused.text.code).toBe('error.invalid-credentials');
    let res = await bad();
    for (let i = 0; i < 20 && res.status === 401; i++) res = await bad();
    const locked = await failure(res, 429);
    expect(locked.text.code).toBe('error.too-many-attempts');
    expect(locked.zh).toMatch(/^失败次数过多，请在 \d+ 秒后重试$/);
  });

  it('a command to a decommissioned terminal says so', async () => {
    await hub.terminal('GZ-YX-001-09', { station: 'GZ-YX-001' });
    const d = await hub.api('/api/v1/terminals/GZ-YX-001-09/decommission', { method: 'POST', json: {} });
    expect(d.status, await d.text()).toBeLessThan(300);
    const e = await failure(await hub.api('/api/v1/terminals/GZ-YX-001-09/commands', { method: 'POST', json: { name: 'reboot' } }), 409);
    expect(e.text).toEqual({ code: 'error.terminal-decommissioned', params: { terminal: 'GZ-YX-001-09' } });
  });

  it('releases and rollouts: a bad signature, a second rollout over a running one, a rollout not found', async () => {
    const forged = release('5.0.0', false);
    const e = await failure(await hub.api('/api/v1/releases', { method: 'POST', body: forged.body, headers: forged.headers }), 400);
    expect(e.text).toEqual({ code: 'error.release-refused', params: { reason: 'bad-signature' } });
    expect(e.zh).toBe('发布包被拒绝：签名无效或不是受信任的密钥');
    const good = release('4.0.0');
    const up = await hub.api('/api/v1/releases', { method: 'POST', body: good.body, headers: good.headers });
    expect(up.status, await up.text()).toBe(201);
    const spec = { releaseId: 'app-4.0.0', nodeIds: ['GZ-YX'], waves: [{ kind: 'pilot', stations: ['GZ-YX-001'] }, { kind: 'rest' }] };
    const first = await hub.api('/api/v1/rollouts', { method: 'POST', json: spec });
    const { id } = JSON.parse(await first.text()) as { id: string };
    expect(first.status).toBe(201);
    const second = await failure(await hub.api('/api/v1/rollouts', { method: 'POST', json: spec }), 409);
    expect(second.code).toBe('rollout-conflict');
    expect(second.text.code).toBe('error.rollout-conflict');
    expect(second.text.params.rollout).toBe(id);
    expect(second.zh).toContain(`已在发布 ${id} 中`);
    const missing = await failure(await hub.api('/api/v1/rollouts/r-nope'), 404);
    expect(missing.text).toEqual({ code: 'error.not-found', params: { what: 'rollout', id: 'r-nope' } });
  });

  it('an error without its own sentence carries the generic one for its status', async () => {
    const e = await failure(await hub.api('/api/v1/import', { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain' } }), 415);
    expect(e.text).toEqual({ code: 'error.status', params: { status: '415' } });
    expect(e.zh).toBe('不接受此类内容');
  });

  it('covers every error code of the catalogue', () => {
    expect(TEXT_CODES.filter((c) => c.startsWith('error.') && !produced.has(c))).toEqual([]);
  });
});
