/**
 * The operators' tasks of issue 24, each done in real Chromium against a real hub process, in Chinese, as the user
 * it belongs to: the district admin at a desk (1440×900), the technician on a phone (390×844).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TERMINAL_TYPE_IDS } from '@kiosk-fleet/protocol';
import { generateReleaseKeyPair, privateKeyFromPem } from '@kiosk-fleet/protocol/release-signing';
import { appBundle, buildRelease } from '../../../agent/src/updater/testing.ts';
import { spawnHub, type HubProcess } from '../helpers/hub.ts';
import { spawnSimulator, type SimulatorProcess } from '../helpers/agent.ts';
import { SqlitePresenceStore } from '../../../hub/src/presence/store.sqlite.ts';
import { createRetentionStore, NO_METRICS, type RollupRow } from '../../../hub/src/retention/store.ts';
import { startTestHub } from '../../../hub/src/test-support.ts';
import { DASHBOARD_DIST, ensureDashboardBuilt, launchBrowser, login, newContext, screenshot, type SizeName } from './browser.ts';

const FLEET = {
  city: { id: 'GZ', name: { zh: '广州市公安局', en: 'Guangzhou Public Security Bureau' } },
  districts: [
    { id: 'GZ-YX', name: { zh: '越秀区分局', en: 'Yuexiu District Branch' } },
    { id: 'GZ-HZ', name: { zh: '海珠区分局', en: 'Haizhu District Branch' } },
  ],
  stations: [
    { id: 'GZ-YX-001', district: 'GZ-YX', name: { zh: '洪桥派出所', en: 'Hongqiao Police Station' } },
    { id: 'GZ-YX-002', district: 'GZ-YX', name: { zh: '北京街派出所', en: 'Beijingjie Police Station' } },
    { id: 'GZ-YX-003', district: 'GZ-YX', name: { zh: '东山派出所', en: 'Dongshan Police Station' } },
    { id: 'GZ-HZ-001', district: 'GZ-HZ', name: { zh: '赤岗派出所', en: 'Chigang Police Station' } },
  ],
  terminals: [
    { id: 'GZ-YX-001-01', station: 'GZ-YX-001', type: 'id-card', serial: 'SN-OT-0101' },
    { id: 'GZ-YX-001-02', station: 'GZ-YX-001', type: 'police-multi', serial: 'SN-OT-0102' },
    { id: 'GZ-YX-002-01', station: 'GZ-YX-002', type: 'id-card', serial: 'SN-OT-0201' },
    { id: 'GZ-HZ-001-01', station: 'GZ-HZ-001', type: 'weijingwu', serial: 'SN-OT-0301' },
  ],
};

const NEW_PASSWORD = 'operator-tasks-password-1';

let hub: HubProcess;
let sim: SimulatorProcess;
let browser: Browser;
let tmp: string;
const contexts: BrowserContext[] = [];
const pageErrors: string[] = [];

const poll = <V>(fn: () => V | Promise<V>, timeout = 20_000) => expect.poll(fn, { timeout, interval: 100 });

async function json<T>(res: Response | Promise<Response>): Promise<T> {
  const r = await res;
  if (!r.ok) throw new Error(`${r.url}: ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}

/** A user made by the city admin, signed in through the page, who changes the one-time password first. */
async function openAs(size: SizeName, user: { username: string; role: string; nodeId: string | null }, on: HubProcess = hub): Promise<Page> {
  const res = await on.api('/api/v1/users', { method: 'POST', json: user });
  expect(res.status).toBe(201);
  const { password } = (await res.json()) as { password: string };
  const ctx = await newContext(browser, size);
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: on.url });
  contexts.push(ctx);
  const page = await ctx.newPage();
  page.setDefaultTimeout(30_000);
  page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
  await login(page, on.url, { username: user.username, password });
  await page.waitForSelector('[data-testid="change-password"]');
  await page.locator('#new-password').fill(NEW_PASSWORD);
  await page.locator('#new-password-again').fill(NEW_PASSWORD);
  await page.getByRole('button', { name: '修改密码' }).click();
  await page.waitForSelector('[data-page="city"], [data-page="district"], [data-page="station"]');
  return page;
}

const optionValues = (page: Page, select: string) =>
  page.locator(`${select} option`).evaluateAll((os) => os.map((o) => (o as unknown as { value: string }).value).filter((v) => v !== ''));

beforeAll(async () => {
  await ensureDashboardBuilt();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'kf-ops-e2e-'));
  writeFileSync(path.join(tmp, 'fleet.json'), JSON.stringify(FLEET));
  const keys = generateReleaseKeyPair();
  writeFileSync(path.join(tmp, 'pub.pem'), keys.publicKeyPem);
  hub = await spawnHub({ env: { KF_DASHBOARD_DIR: DASHBOARD_DIST, KF_ADMIN_PASSWORD: 'operator-tasks-admin-1', KF_RELEASE_KEYS: path.join(tmp, 'pub.pem') } });
  // The fleet simulator registers the fleet through the import API and runs its terminals (they install releases).
  sim = await spawnSimulator({ hubUrl: hub.mqttUrl, apiUrl: hub.url, token: hub.token, fleet: path.join(tmp, 'fleet.json'), provision: true, interval: 5 });
  // A signed release uploaded by the city (release:write is the city admin's); district admins roll it out.
  for (const version of ['3.3.0', '3.4.0']) {
    const built = await buildRelease({
      workDir: tmp,
      version,
      files: appBundle(version, true),
      privateKey: privateKeyFromPem(keys.privateKeyPem),
      terminalTypes: [...TERMINAL_TYPE_IDS],
    });
    await json(hub.api('/api/v1/releases', { method: 'POST', body: built.artifact, headers: { 'x-kf-manifest': built.manifestB64, 'x-kf-signature': built.signature } }));
  }
  browser = await launchBrowser();
}, 240_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close().catch(() => {});
  await sim?.stop();
  await hub?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}, 60_000);

afterEach(async (ctx) => {
  if (ctx.task.result?.state !== 'fail') return;
  let n = 0;
  const shown: string[] = [];
  for (const c of contexts) {
    for (const p of c.pages()) {
      await screenshot(p, `ops-failed-${ctx.task.name.slice(0, 40).replace(/\W+/g, '-')}-${n++}`).catch(() => {});
      const text = await p.locator('body').innerText({ timeout: 2000 }).catch((e: unknown) => `(no text: ${String(e)})`);
      shown.push(`--- ${p.url()}\n${text.slice(0, 1500)}`);
    }
  }
  console.error(`[operator-tasks] "${ctx.task.name}" failed; open pages:\n${shown.join('\n')}\nerrors: ${pageErrors.join('\n')}`);
});

describe("operators' tasks in Chromium, in Chinese", () => {
  it('a district admin registers a terminal and moves another, picking stations and the terminal by search', async () => {
    const page = await openAs('desk', { username: 'yx-admin', role: 'district-admin', nodeId: 'GZ-YX' });
    await page.getByRole('link', { name: '终端部署' }).click();
    await page.waitForSelector('[data-page="placement"]');

    // The district's three stations are offered (and nothing outside the district).
    await poll(() => optionValues(page, '#reg-station')).toEqual(['GZ-YX-001', 'GZ-YX-002', 'GZ-YX-003']);
    expect(await optionValues(page, '#move-station')).toEqual(['GZ-YX-001', 'GZ-YX-002', 'GZ-YX-003']);

    // Register: the station found by typing part of its Chinese name, picked when it is the only match.
    await page.locator('#reg-type').selectOption('weijingwu');
    await page.locator('#reg-serial').fill('SN-OT-NEW');
    await page.locator('#reg-station-filter').fill('东山');
    await poll(() => page.locator('#reg-station').inputValue()).toBe('GZ-YX-003');
    await page.getByRole('button', { name: '登记', exact: true }).click();
    const secret = (await page.locator('[data-testid="secret-value"]').textContent())?.trim() ?? '';
    expect(secret.length).toBeGreaterThanOrEqual(32);
    await page.locator('[data-testid="secret"]').getByRole('button', { name: '复制' }).click();
    await poll(() => page.locator('[data-testid="secret"]').getByRole('button').textContent()).toBe('已复制');
    expect(await page.evaluate<string>('navigator.clipboard.readText()')).toBe(secret);
    const created = await json<{ items: { id: string; serial: string }[] }>(hub.api('/api/v1/terminals?node=GZ-YX-003'));
    expect(created.items.map((i) => i.serial)).toEqual(['SN-OT-NEW']);
    await screenshot(page, 'ops-placement-register-desk');

    // Move: the terminal picked from the district's list by part of its id, the station by its id.
    await poll(() => optionValues(page, '#move-id')).toContain('GZ-YX-001-02');
    expect(await optionValues(page, '#move-id')).not.toContain('GZ-HZ-001-01');
    await page.locator('#move-id-filter').fill('001-02');
    await poll(() => page.locator('#move-id').inputValue()).toBe('GZ-YX-001-02');
    await page.locator('#move-station-filter').fill('yx-002');
    await poll(() => page.locator('#move-station').inputValue()).toBe('GZ-YX-002');
    await page.locator('#move-reason').fill('窗口调整');
    await page.getByRole('button', { name: '迁移', exact: true }).click();
    await poll(() => page.locator('#move .note').textContent()).toContain('GZ-YX-001-02 已迁至 北京街派出所');
    const moved = await json<{ station: string }>(hub.api('/api/v1/terminals/GZ-YX-001-02'));
    expect(moved.station).toBe('GZ-YX-002');
    await screenshot(page, 'ops-placement-move-desk');
    expect(pageErrors).toEqual([]);
  }, 120_000);

  it('a district admin starting a second rollout over terminals a running one covers is told which rollout holds them', async () => {
    const page = await openAs('desk', { username: 'yx-admin-2', role: 'district-admin', nodeId: 'GZ-YX' });
    await page.getByRole('link', { name: '版本发布' }).click();
    await page.waitForSelector('[data-page="releases"]');
    await page.locator('#ro-release').selectOption('app-3.3.0');
    await page.locator('#ro-target').selectOption('GZ-YX');
    await page.locator('#ro-pilot').selectOption('GZ-YX-001');
    await page.getByRole('button', { name: '开始发布' }).click();
    await page.getByRole('button', { name: /^确认：向 \d+ 台终端发布$/ }).click();
    const first = page.locator('.rollout').first();
    await poll(() => first.getAttribute('data-status')).toBe('running');
    const firstId = (await first.getAttribute('data-rollout')) ?? '';

    // The same again: refused, and the page names the running rollout and the terminals it holds, in Chinese.
    await page.getByRole('button', { name: '开始发布' }).click();
    await page.getByRole('button', { name: /^确认：向 \d+ 台终端发布$/ }).click();
    const said = page.locator('[data-testid="rollout-create-result"]');
    await poll(() => said.textContent()).toContain(`已在发布任务 ${firstId}`);
    expect(await said.textContent()).toContain('GZ-YX-001-01');
    expect(await said.textContent()).toContain('进行中');
    expect(await page.locator('.rollout').count()).toBe(1);
    await said.getByRole('link', { name: '查看该发布任务' }).click();
    expect(new URL(page.url()).hash).toBe(`#rollout-${firstId}`);
    await screenshot(page, 'ops-rollout-conflict-desk');
    await json(hub.api(`/api/v1/rollouts/${firstId}/abort`, { method: 'POST' }));
  }, 120_000);

  it('a district admin importing a CSV sees every problem before sending it (a header-less file too), then the rows it holds', async () => {
    const page = await openAs('desk', { username: 'yx-admin-3', role: 'district-admin', nodeId: 'GZ-YX' });
    await page.goto(`${hub.url}/placement`);
    await page.waitForSelector('[data-page="placement"]');
    const body = 'GZ-YX-002-07,GZ-YX-002,id-card,SN-IMP-7\nGZ-YX-002-08,GZ-YX-002,weijingwu,SN-IMP-8\n';
    // No header line: the hub would refuse it, so the preview does, saying why, and nothing can be sent.
    await page.locator('#imp-text').fill(body);
    await page.getByRole('button', { name: '预览' }).click();
    await poll(() => page.locator('[data-testid="import-errors"]').textContent()).toContain('第 1 行：第一行必须是表头 id,station,type,serial');
    expect(await page.getByRole('button', { name: '导入', exact: true }).isDisabled()).toBe(true);
    // Two bad lines and a good one: both problems at once, with their lines.
    // A station of the next district is named as outside the admin's scope, not as missing.
    await page.locator('#imp-text').fill('id,station,type,serial\nGZ-YX-002-07,GZ-YX-002,id-card\nGZ-YX-002-08,GZ-YX-002,weijingwu,SN-IMP-8\nGZ-YX-002-09,,id-card,SN-IMP-9\nGZ-HZ-001-05,GZ-HZ-001,id-card,SN-IMP-5\n');
    await page.getByRole('button', { name: '预览' }).click();
    await poll(() => page.locator('[data-testid="import-errors"] li').allTextContents()).toEqual([
      '第 2 行：有 3 个字段，表头有 4 个。',
      '第 4 行：“station”为空。',
      '第 5 行：派出所 GZ-HZ-001 不在您的管辖范围内（只能登记到本辖区的派出所）。',
    ]);
    expect(await page.getByRole('button', { name: '导入', exact: true }).isDisabled()).toBe(true);
    // Fixed: the rows as read (id, station by name, type), then the import.
    await page.locator('#imp-text').fill(`id,station,type,serial\n${body}`);
    await page.getByRole('button', { name: '预览' }).click();
    await poll(() => page.locator('[data-testid="import-preview"] tbody tr').count()).toBe(2);
    expect(await page.locator('[data-testid="import-errors"]').count()).toBe(0);
    expect(await page.locator('[data-testid="import-preview"] [data-row="2"]').textContent()).toContain('北京街派出所');
    await screenshot(page, 'ops-import-preview-desk');
    await page.getByRole('button', { name: '导入', exact: true }).click();
    await poll(() => page.locator('#import .note.ok').textContent()).toContain('新增 2 台');
    const list = await json<{ items: { id: string }[] }>(hub.api('/api/v1/terminals?node=GZ-YX-002'));
    expect(list.items.map((i) => i.id)).toEqual(expect.arrayContaining(['GZ-YX-002-07', 'GZ-YX-002-08']));
  }, 120_000);

  it('a district admin manages users: creates a technician (one-time password, copy), resets, gives and revokes a token, disables and enables', async () => {
    const page = await openAs('desk', { username: 'yx-admin-4', role: 'district-admin', nodeId: 'GZ-YX' });
    await page.getByRole('link', { name: '用户与审计' }).click();
    await page.waitForSelector('[data-page="users"]');
    const form = page.locator('[data-testid="create-user"]');
    await form.waitFor();
    // Only what a district admin may grant: no city admin, nothing outside Yuexiu, not the whole installation.
    expect(await page.locator('#nu-role option').evaluateAll((os) => os.map((o) => (o as unknown as { value: string }).value))).toEqual(['district-admin', 'technician', 'viewer']);
    await page.locator('#nu-role').selectOption('technician');
    await poll(() => optionValues(page, '#nu-node')).toEqual(['GZ-YX', 'GZ-YX-001', 'GZ-YX-002', 'GZ-YX-003']);
    await page.locator('#nu-username').fill('yx001-new');
    await page.locator('#nu-display').fill('王工');
    await page.locator('#nu-node-filter').fill('洪桥');
    await poll(() => page.locator('#nu-node').inputValue()).toBe('GZ-YX-001');
    await form.getByRole('button', { name: '创建用户' }).click();
    const once = page.locator('[data-testid="one-time-password-value"]');
    await poll(() => once.count()).toBe(1);
    const password = ((await once.textContent()) ?? '').trim();
    await page.locator('[data-testid="one-time-password"]').getByRole('button', { name: '复制' }).click();
    await poll(() => page.evaluate<string>('navigator.clipboard.readText()')).toBe(password);
    const row = page.locator('[data-user="yx001-new"]');
    await poll(() => row.textContent()).toContain('运维人员');
    expect(await row.textContent()).toContain('洪桥派出所');
    expect(await row.textContent()).toContain('须修改密码');
    const signIn = (pw: string) => fetch(`${hub.url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'yx001-new', password: pw }) });
    expect((await signIn(password)).status).toBe(200);
    await screenshot(page, 'ops-users-created-desk');

    // Reset: confirmed, a new one-time password shown once; the old one no longer works.
    page.once('dialog', (d) => void d.accept());
    await row.getByRole('button', { name: '重置密码' }).click();
    const reset = row.locator('[data-testid="reset-password-value"]');
    await poll(() => reset.count()).toBe(1);
    const second = ((await reset.textContent()) ?? '').trim();
    expect(second).not.toBe(password);
    expect((await signIn(password)).status).toBe(401);
    expect((await signIn(second)).status).toBe(200);

    // An API token for the technician, narrowed to a viewer: shown once, works as a viewer of the station; revoked.
    await row.getByRole('button', { name: 'API 令牌' }).click();
    const tokens = page.locator('[data-testid="tokens"]');
    await poll(() => tokens.locator('h3').textContent()).toBe('yx001-new 的 API 令牌');
    expect(await tokens.locator('#tk-role option').evaluateAll((os) => os.map((o) => (o as unknown as { value: string }).value))).toEqual(['technician', 'viewer']);
    await tokens.locator('#tk-name').fill('值班大屏');
    await tokens.locator('#tk-role').selectOption('viewer');
    await tokens.locator('#tk-node-filter').fill('GZ-YX-001');
    await poll(() => tokens.locator('#tk-node').inputValue()).toBe('GZ-YX-001');
    await tokens.getByRole('button', { name: '创建令牌' }).click();
    const tokenValue = tokens.locator('[data-testid="new-token-value"]');
    await poll(() => tokenValue.count()).toBe(1);
    const token = ((await tokenValue.textContent()) ?? '').trim();
    const meWith = () => fetch(`${hub.url}/api/v1/auth/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(await (await meWith()).json()).toMatchObject({ role: 'viewer', nodeId: 'GZ-YX-001' });
    await poll(() => tokens.locator('[data-token="值班大屏"]').count()).toBe(1);
    await screenshot(page, 'ops-users-token-desk');
    let asked = '';
    page.once('dialog', (d) => {
      asked = d.message();
      void d.accept();
    });
    await tokens.locator('[data-token="值班大屏"]').getByRole('button', { name: '吊销' }).click();
    await poll(() => tokens.locator('[data-token="值班大屏"]').textContent()).toContain('已吊销或已过期');
    expect(asked).toContain('值班大屏');
    expect((await meWith()).status).toBe(401);

    // Disable (confirmed): refused at sign-in; enable again.
    page.once('dialog', (d) => void d.accept());
    await row.getByRole('button', { name: '停用' }).click();
    await poll(() => row.textContent()).toContain('已停用');
    expect((await signIn(second)).status).not.toBe(200);
    await row.getByRole('button', { name: '启用' }).click();
    await poll(() => row.textContent()).not.toContain('已停用');
    expect((await signIn(second)).status).toBe(200);
    expect(pageErrors).toEqual([]);
  }, 120_000);

  it('a district admin reads the availability of a station by service for chosen days, downloads the CSV, and is told when there is no data', async () => {
    // History written through the hub's own stores into a data dir, then served by a real hub process: one bureau
    // day (2026-03-02, Asia/Shanghai) in which the ID-card machine offered its services 75 % of the time (the kiosk
    // app down the rest, peripherals fine) and the police multi-service kiosk was off.
    const H = 3_600_000;
    const D0 = Date.parse('2026-03-01T16:00:00Z');
    const old = D0 - 30 * 24 * H;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kf-ops-report-'));
    const seed = await startTestHub({}, dir);
    for (const [id, zh] of [['GZ', '广州市公安局'], ['GZ-YX', '越秀区分局'], ['GZ-YX-001', '洪桥派出所']] as const) await seed.registry.createNode({ id, name: { zh, en: id } }, old);
    await seed.registry.insertTerminal({ id: 'GZ-YX-001-01', type: 'id-card', serial: 'S1', station: 'GZ-YX-001' }, 'test', old);
    await seed.registry.insertTerminal({ id: 'GZ-YX-001-02', type: 'police-multi', serial: 'S2', station: 'GZ-YX-001' }, 'test', old);
    const presence = new SqlitePresenceStore(seed.db);
    presence.s.insert.run('GZ-YX-001-01', D0 - H, 'unknown', 'online', 'connected', null, null);
    presence.s.insert.run('GZ-YX-001-02', D0 - 2 * H, 'unknown', 'online', 'connected', null, null);
    presence.s.insert.run('GZ-YX-001-02', D0 - H, 'online', 'offline', 'power-loss', null, null);
    const rollups: RollupRow[] = [];
    const ok = JSON.stringify({ idCardReader: 1, fingerprintScanner: 1, camera: 1, receiptPrinter: 1, touchscreen: 1 });
    const services = JSON.stringify({ 'id-card-application': 0.75, 'id-card-collection': 0.75, 'progress-inquiry': 0.75 });
    for (let h = D0; h < D0 + 24 * H; h += H) rollups.push({ terminalId: 'GZ-YX-001-01', hour: h, samples: 120, ...NO_METRICS, peripheralOk: ok, services });
    await createRetentionStore(seed.engine).writeRollups(rollups, null);
    await seed.stop();
    const reportHub = await spawnHub({ dataDir: dir, env: { KF_DASHBOARD_DIR: DASHBOARD_DIST } });
    try {
      const page = await openAs('desk', { username: 'yx-admin-5', role: 'district-admin', nodeId: 'GZ-YX' }, reportHub);
      await page.getByRole('link', { name: '可用率报表' }).click();
      await page.waitForSelector('[data-page="reports"]');
      // The last 7 days: the terminals are registered but no sample was rolled up: not enough data, not 0 %.
      const cell = (table: string, row: string, col: number) => page.locator(`[data-testid="${table}"] tr[${row}] > :nth-child(${col})`);
      await poll(() => cell('report-services', 'data-service="id-card-application"', 2).textContent()).toBe('数据不足');

      // The station, found by name; then the chosen day.
      await page.locator('#rep-node-filter').fill('洪桥');
      await page.waitForURL(/node=GZ-YX-001/);
      await page.locator('#rep-period').selectOption('custom');
      await page.locator('#rep-from').fill('2026-03-02');
      await page.waitForURL(/from=2026-03-02/);
      await page.locator('#rep-to').fill('2026-03-02');
      await page.waitForURL(/to=2026-03-02/);
      await poll(() => cell('report-services', 'data-service="id-card-application"', 2).textContent()).toBe('75.0 %');
      expect(await cell('report-services', 'data-service="id-card-application"', 3).textContent()).toBe('1');
      expect(await cell('report-services', 'data-service="id-card-application"', 6).textContent()).toBe('6 h 0 min');
      expect(await cell('report-services', 'data-service="progress-inquiry"', 2).textContent()).toBe('37.5 %');
      expect(await cell('report-services', 'data-service="progress-inquiry"', 3).textContent()).toBe('2');
      // the police kiosk was off all day: that is downtime (0 %), shown as such, with its cause
      expect(await cell('report-services', 'data-service="household-certificate"', 2).textContent()).toBe('0.0 %');
      expect(await cell('report-services', 'data-service="household-certificate"', 4).textContent()).toBe('24 h 0 min');
      expect(await page.locator('[data-testid="report-children"] [data-child="GZ-YX-001-01"]').textContent()).toContain('75.0 %');
      await screenshot(page, 'ops-report-station-desk');

      // The CSV of what is on screen.
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: '下载 CSV' }).click()]);
      const csv = readFileSync((await download.path())!, 'utf8');
      expect(csv).toContain('station,GZ-YX-001,id-card-application,1,86400,64800,0.75,0,0,21600,0,0');
      expect(csv).toContain('terminal,GZ-YX-001-02,household-certificate,1,86400,0,0,86400,0,0,0,0');

      // One terminal from the station's list.
      await page.locator('[data-testid="report-children"] a', { hasText: 'GZ-YX-001-01' }).click();
      await page.waitForURL(/terminal=GZ-YX-001-01/);
      await poll(() => cell('report-services', 'data-service="id-card-collection"', 2).textContent()).toBe('75.0 %');

      // Days before the terminals existed: not enough data.
      await page.goto(`${reportHub.url}/reports?node=GZ-YX&period=custom&from=2026-01-01&to=2026-01-02`);
      await poll(() => page.locator('[data-testid="not-enough"]').textContent()).toContain('数据不足');
      expect(await page.locator('[data-page="reports"]').textContent()).not.toContain('0.0 %');
    } finally {
      await reportHub.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it('a district admin starts a rollout knowing what it reaches, with its gate; sees why a wave waits, who is missing, when the next starts; aborts after confirming', async () => {
    // A terminal of the pilot station that never comes online: the wave goes on without it (half may fail) and the
    // page names it as missing.
    await json(hub.api('/api/v1/terminals', { method: 'POST', json: { id: 'GZ-YX-001-09', type: 'id-card', serial: 'SN-OT-OFF', station: 'GZ-YX-001' } }));
    const page = await openAs('desk', { username: 'yx-admin-6', role: 'district-admin', nodeId: 'GZ-YX' });
    await page.getByRole('link', { name: '版本发布' }).click();
    await page.waitForSelector('[data-testid="create-rollout"]');
    await page.locator('#ro-release').selectOption('app-3.3.0');
    await page.locator('#ro-target').selectOption('GZ-YX');
    await page.locator('#ro-pilot').selectOption('GZ-YX-001');
    await page.locator('#ro-soak').fill('90');
    await page.locator('#ro-allowed').fill('50');
    await page.getByRole('button', { name: '开始发布' }).click();
    // Before anything is sent: how many terminals, which stations, the pilot, the gate, the window.
    const inScope = (await json<{ items: { id: string; station: string }[] }>(hub.api('/api/v1/terminals?node=GZ-YX&limit=1000'))).items;
    const pilotCount = inScope.filter((x) => x.station === 'GZ-YX-001').length;
    const confirmText = page.locator('[data-testid="rollout-confirm"]');
    await poll(() => confirmText.textContent()).toContain(`将发布到 ${new Set(inScope.map((x) => x.station)).size} 个派出所的 ${inScope.length} 台终端`);
    expect(await confirmText.textContent()).toContain('洪桥派出所');
    expect(await confirmText.textContent()).toContain(`第一批（试点）：洪桥派出所，${pilotCount} 台终端`);
    expect(await confirmText.textContent()).toContain('每批失败不超过 50 %');
    expect(await confirmText.textContent()).toContain('安装后须保持健康 90 分钟');
    expect(await confirmText.textContent()).toContain('在各自的维护窗口内安装');
    await screenshot(page, 'ops-rollout-confirm-desk');
    await page.getByRole('button', { name: `确认：向 ${inScope.length} 台终端发布` }).click();

    const rollout = page.locator('.rollout[data-status="running"]').first();
    await poll(() => rollout.count()).toBe(1);
    expect(await rollout.locator('[data-testid="gate"]').textContent()).toContain('90 分钟');
    // The terminal that never answers is named, linked, with what it waits for.
    const missing = rollout.locator('[data-testid="missing"] [data-terminal="GZ-YX-001-09"]');
    await poll(() => missing.textContent(), 30_000).toContain('已下发，未回应');
    expect(await missing.locator('a').getAttribute('href')).toBe('/terminals/GZ-YX-001-09');
    // Once the simulated pilot terminal has installed, the next wave's start is shown, and why it waits until then.
    const wait = rollout.locator('[data-testid="wave-wait"]');
    await poll(() => wait.textContent(), 60_000).toMatch(/^第 2 批约于 .+ 开始：届时足够多的终端安装后已保持健康 90 分钟。$/);
    const view = await json<{ terminals: Record<string, { committedAt: number | null }> }>(hub.api(`/api/v1/rollouts/${await rollout.getAttribute('data-rollout')}`));
    const committedAt = view.terminals['GZ-YX-001-01']!.committedAt!;
    const expected = new Intl.DateTimeFormat('zh-CN', { timeZone: 'Asia/Shanghai', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(committedAt + 90 * 60_000));
    expect(await wait.textContent()).toContain(`约于 ${expected} 开始`);
    await screenshot(page, 'ops-rollout-waiting-desk');

    // Abort asks first; cancelling keeps it running.
    let asked = '';
    page.once('dialog', (d) => {
      asked = d.message();
      void d.dismiss();
    });
    await rollout.getByRole('button', { name: '终止' }).click();
    await poll(() => asked).toContain('确定终止版本 3.3.0 的发布');
    expect(await page.locator('.rollout').first().getAttribute('data-status')).toBe('running');
    page.once('dialog', (d) => void d.accept());
    await page.locator('.rollout').first().getByRole('button', { name: '终止' }).click();
    await poll(() => page.locator('.rollout').first().getAttribute('data-status')).toBe('aborted');

    // A release whose health check fails on the pilot terminal: the rollout pauses and names it, with a link.
    await sim.control('/terminals/GZ-YX-001-01/update-health', { fail: true });
    await page.locator('#ro-release').selectOption('app-3.4.0');
    await page.locator('#ro-allowed').fill('0');
    await page.getByRole('button', { name: '开始发布' }).click();
    await page.getByRole('button', { name: /^确认：向 \d+ 台终端发布$/ }).click();
    const failed = page.locator('.rollout[data-status="paused"]').first();
    const failing = failed.locator('[data-testid="failing"] [data-terminal="GZ-YX-001-01"]');
    await poll(() => failing.textContent(), 60_000).toContain('失败 · 更新后应用未能正常运行');
    expect(await failing.locator('a').getAttribute('href')).toBe('/terminals/GZ-YX-001-01');
    expect(await failed.textContent()).toContain('健康检查未通过');
    await screenshot(page, 'ops-rollout-failed-desk');
    page.once('dialog', (d) => void d.accept());
    await failed.getByRole('button', { name: '终止' }).click();
    await poll(() => page.locator('.rollout').first().getAttribute('data-status')).toBe('aborted');
    await sim.control('/terminals/GZ-YX-001-01/update-health', { fail: false });
    expect(pageErrors).toEqual([]);
  }, 180_000);

  it('a station technician on a phone sees their own station named in the first tab and breadcrumbs without a link outside their scope', async () => {
    const page = await openAs('phone', { username: 'yx001-tech-phone', role: 'technician', nodeId: 'GZ-YX-001' });
    const home = page.locator('.mainnav a[href="/"]');
    await poll(() => home.textContent()).toBe('洪桥派出所');
    await page.goto(`${hub.url}/terminals/GZ-YX-001-01`);
    const crumbs = page.locator('nav.crumbs');
    await poll(() => crumbs.textContent()).toContain('GZ-YX-001-01');
    expect(await crumbs.locator('li').allTextContents()).toEqual(['洪桥派出所', 'GZ-YX-001-01']);
    // every link leads somewhere inside the station (its home is the station page)
    for (const href of await crumbs.locator('a').evaluateAll((as) => as.map((a) => a.getAttribute('href')))) expect(href).toBe('/');
    await screenshot(page, 'ops-technician-terminal-phone');

    const district = await openAs('phone', { username: 'yx-tech-phone', role: 'technician', nodeId: 'GZ-YX' });
    await poll(() => district.locator('.mainnav a[href="/"]').textContent()).toBe('越秀区分局');
    await district.goto(`${hub.url}/terminals/GZ-YX-001-01`);
    await poll(() => district.locator('nav.crumbs li').allTextContents()).toEqual(['越秀区分局', '洪桥派出所', 'GZ-YX-001-01']);
    expect(await district.locator('nav.crumbs a').evaluateAll((as) => as.map((a) => a.getAttribute('href')))).toEqual(['/', '/nodes/GZ-YX-001']);
    expect(pageErrors).toEqual([]);
  }, 120_000);

  it('a technician on a phone sees the station’s terminals in trouble first, the healthy ones folded', async () => {
    // one terminal that never came online, next to the simulated one that works
    await json(hub.api('/api/v1/terminals', { method: 'POST', json: { id: 'GZ-HZ-001-08', type: 'id-card', serial: 'SN-OT-HZ8', station: 'GZ-HZ-001' } }));
    const page = await openAs('phone', { username: 'hz-tech-phone', role: 'technician', nodeId: 'GZ-HZ' });
    await page.goto(`${hub.url}/nodes/GZ-HZ-001`);
    await page.waitForSelector('[data-page="station"] [data-terminal]');
    const cards = page.locator('#terminals [data-terminal]');
    await poll(() => cards.first().getAttribute('data-terminal')).toBe('GZ-HZ-001-08');
    const folded = page.locator('[data-testid="healthy-terminals"]');
    await poll(() => folded.locator('summary').textContent()).toBe('1 台终端运行正常（点击展开）');
    expect(await folded.getAttribute('open')).toBeNull();
    expect(await folded.locator('[data-terminal="GZ-HZ-001-01"]').isVisible()).toBe(false);
    await screenshot(page, 'ops-station-phone');
    await folded.locator('summary').click();
    await poll(() => folded.locator('[data-terminal="GZ-HZ-001-01"]').isVisible()).toBe(true);
    // its card reader fails: it moves up among the terminals in trouble, live
    await sim.control('/terminals/GZ-HZ-001-01/fault', { peripheral: 'idCardReader', code: 'E_NO_RESPONSE' });
    await poll(() => page.locator('[data-terminal="GZ-HZ-001-01"]').getAttribute('data-attention'), 30_000).toBe('yes');
    await poll(() => folded.count()).toBe(0);
    expect(await page.locator('[data-terminal="GZ-HZ-001-01"]').isVisible()).toBe(true);
    await sim.control('/terminals/GZ-HZ-001-01/recover', { peripheral: 'idCardReader' });
    expect(pageErrors).toEqual([]);
  }, 120_000);

  it('a new technician who signed in on one tab and opens another is asked there for the password change, then lands where they wanted', async () => {
    const res = await hub.api('/api/v1/users', { method: 'POST', json: { username: 'yx-tech-tabs', role: 'technician', nodeId: 'GZ-YX' } });
    const { password } = (await res.json()) as { password: string };
    const ctx = await newContext(browser, 'phone');
    contexts.push(ctx);
    const first = await ctx.newPage();
    first.on('pageerror', (e) => pageErrors.push(`${first.url()}: ${e.message}`));
    await login(first, hub.url, { username: 'yx-tech-tabs', password });
    await first.waitForSelector('[data-testid="change-password"]');
    // A second tab of the same session, on a page of their district.
    const second = await ctx.newPage();
    second.on('pageerror', (e) => pageErrors.push(`${second.url()}: ${e.message}`));
    await second.goto(`${hub.url}/nodes/GZ-YX-001`);
    await second.waitForSelector('[data-testid="change-password"] #current-password');
    await screenshot(second, 'ops-second-tab-change-password-phone');
    await second.locator('#current-password').fill(password);
    await second.locator('#new-password').fill(NEW_PASSWORD);
    await second.locator('#new-password-again').fill(NEW_PASSWORD);
    await second.getByRole('button', { name: '修改密码' }).click();
    await second.waitForSelector('[data-page="station"]');
    expect(new URL(second.url()).pathname).toBe('/nodes/GZ-YX-001');
    expect(pageErrors).toEqual([]);
  }, 120_000);
});
