/**
 * Issue 23 item 2: what the hub says (alert titles, an alert's history with a self-test result, a rollout's pause
 * reason) reads in the user's language. A real hub (SQLite) and simulated terminals: a card reader breaks (a
 * terminal alert and its station's service alert), a technician's self-test fails, a release whose health check
 * fails pauses its rollout. Then the alerts, releases and terminal pages in Chinese at desk and phone size show none
 * of the hub's English sentences, and in English no Chinese. API errors too: a second rollout over the paused one and
 * a config save over a version saved meanwhile (409) are refused in the user's language, the failed terminal's error
 * is named, not shown as the agent's code.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { TERMINAL_TYPE_IDS } from '@kiosk-fleet/protocol';
import { generateReleaseKeyPair, privateKeyFromPem } from '@kiosk-fleet/protocol/release-signing';
import { appBundle, buildRelease } from '../../../agent/src/updater/testing.ts';
import { spawnHub, type HubProcess } from '../helpers/hub.ts';
import { spawnSimulator, type SimulatorProcess } from '../helpers/agent.ts';
import { DASHBOARD_DIST, ensureDashboardBuilt, launchBrowser, login, newContext, screenshot, type SizeName } from './browser.ts';

const FLEET = {
  city: { id: 'GZ', name: { zh: '广州市公安局', en: 'Guangzhou Public Security Bureau' } },
  districts: [{ id: 'GZ-YX', name: { zh: '越秀区分局', en: 'Yuexiu District Branch' } }],
  stations: [
    { id: 'GZ-YX-001', district: 'GZ-YX', name: { zh: '洪桥派出所', en: 'Hongqiao Police Station' } },
    { id: 'GZ-YX-002', district: 'GZ-YX', name: { zh: '北京街派出所', en: 'Beijingjie Police Station' } },
  ],
  terminals: [
    { id: 'GZ-YX-001-01', station: 'GZ-YX-001', type: 'id-card', serial: 'SN-HT-0101' },
    { id: 'GZ-YX-002-01', station: 'GZ-YX-002', type: 'id-card', serial: 'SN-HT-0201' },
  ],
};
const BROKEN = 'GZ-YX-002-01';
const PILOT = 'GZ-YX-001-01';
const ADMIN = { username: 'admin', password: 'hub-texts-admin-pass-1' };

let hub: HubProcess;
let sim: SimulatorProcess;
let browser: Browser;
let tmp: string;
const contexts: BrowserContext[] = [];
const pageErrors: string[] = [];
/** The hub's English sentences as the API sent them: none may show in the Chinese pages. */
const english = new Set<string>();

const poll = <V>(fn: () => V | Promise<V>, timeout = 30_000) => expect.poll(fn, { timeout, interval: 200 });

/** expect.poll for beforeAll (which it refuses): the value once `ok`, or an error naming the last value seen. */
async function until<V>(what: string, fn: () => Promise<V>, ok: (v: V) => boolean, timeout: number): Promise<V> {
  let last: V | undefined;
  for (const end = Date.now() + timeout; Date.now() < end; await new Promise((r) => setTimeout(r, 250))) {
    last = await fn();
    if (ok(last)) return last;
  }
  throw new Error(`${what}: still ${JSON.stringify(last)} after ${timeout} ms`);
}

async function json<T>(res: Response | Promise<Response>): Promise<T> {
  const r = await res;
  if (!r.ok) throw new Error(`${r.url}: ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}

type Alert = { id: number; rule: string; title: string; text: { code: string } | null; terminalId: string | null };
type Detail = Alert & { history: { action: string; text: { code: string } | null }[] };

beforeAll(async () => {
  await ensureDashboardBuilt();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'kf-hub-texts-'));
  writeFileSync(path.join(tmp, 'fleet.json'), JSON.stringify(FLEET));
  const keys = generateReleaseKeyPair();
  writeFileSync(path.join(tmp, 'pub.pem'), keys.publicKeyPem);
  hub = await spawnHub({
    env: {
      KF_DASHBOARD_DIR: DASHBOARD_DIST,
      KF_ADMIN_PASSWORD: ADMIN.password,
      KF_RELEASE_KEYS: path.join(tmp, 'pub.pem'),
      KF_ALERT_START_GRACE_MS: '0',
      KF_ALERT_EVALUATE_MS: '500',
    },
  });
  sim = await spawnSimulator({ hubUrl: hub.mqttUrl, apiUrl: hub.url, token: hub.token, fleet: path.join(tmp, 'fleet.json'), provision: true, interval: 5 });
  await json(
    hub.api('/api/v1/config/nodes/GZ', { method: 'PUT', json: { config: { alerts: { thresholds: { peripheralFaultMinutes: 0 } } }, expectedVersion: 0, reason: 'E2E: alert at once' } }),
  );
  const built = await buildRelease({ workDir: tmp, version: '3.4.0', files: appBundle('3.4.0', true), privateKey: privateKeyFromPem(keys.privateKeyPem), terminalTypes: [...TERMINAL_TYPE_IDS] });
  await json(hub.api('/api/v1/releases', { method: 'POST', body: built.artifact, headers: { 'x-kf-manifest': built.manifestB64, 'x-kf-signature': built.signature } }));

  // A real alert: the card reader of the only terminal at GZ-YX-002 breaks (terminal alert and station alert).
  await sim.control(`/terminals/${BROKEN}/fault`, { peripheral: 'idCardReader', code: 'E_NO_RESPONSE' });
  await until('open alerts', async () => (await json<{ items: Alert[] }>(hub.api('/api/v1/alerts'))).items.map((a) => a.rule), (r) => r.length === 2, 60_000);
  const items = (await json<{ items: Alert[] }>(hub.api('/api/v1/alerts'))).items;
  expect(items.map((a) => a.rule).sort()).toEqual(['peripheral-fault', 'station-service-lost']);
  for (const a of items) {
    expect(a.text?.code).toBe(`alert.${a.rule}`);
    english.add(a.title);
  }
  // A self-test from the alert: the terminal answers that its reader fails.
  const terminalAlert = items.find((a) => a.rule === 'peripheral-fault')!;
  await json(hub.api(`/api/v1/alerts/${terminalAlert.id}/self-test`, { method: 'POST' }));
  const result = await until(
    'self-test result',
    async () => (await json<Detail>(hub.api(`/api/v1/alerts/${terminalAlert.id}`))).history.find((h) => h.action === 'self-test-result') ?? null,
    (h) => h !== null,
    60_000,
  );
  expect(result?.text?.code).toBe('alert.history.self-test-failed');
  english.add('self-test failed: ID card reader');

  // A paused rollout: the pilot terminal installs the release, its health check fails, the gate allows no failure.
  await sim.control(`/terminals/${PILOT}/update-health`, { fail: true });
  const rollout = await json<{ id: string }>(
    hub.api('/api/v1/rollouts', {
      method: 'POST',
      json: { releaseId: 'app-3.4.0', nodeIds: ['GZ-YX'], waves: [{ kind: 'pilot', name: 'pilot', stations: ['GZ-YX-001'] }, { kind: 'rest', name: 'rest' }], gate: { successRatio: 1, soakMinutes: 30 } },
    }),
  );
  await until('rollout status', async () => (await json<{ status: string }>(hub.api(`/api/v1/rollouts/${rollout.id}`))).status, (s) => s === 'paused', 120_000);
  const r = await json<{ pauseReason: { code: string; message: string; text?: { code: string } } }>(hub.api(`/api/v1/rollouts/${rollout.id}`));
  expect(r.pauseReason).toMatchObject({ code: 'wave-gate-failed', message: 'wave 1 (pilot): 1 of 1 terminals failed or became unhealthy (at most 0 allowed)', text: { code: 'rollout.wave-gate-failed' } });
  english.add(r.pauseReason.message);
  browser = await launchBrowser();
}, 300_000);

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
  for (const c of contexts) for (const p of c.pages()) await screenshot(p, `hub-texts-failed-${n++}`).catch(() => {});
});

async function open(size: SizeName, locale: 'zh-CN' | 'en-US'): Promise<Page> {
  const ctx = await newContext(browser, size, locale);
  contexts.push(ctx);
  const page = await ctx.newPage();
  page.setDefaultTimeout(30_000);
  page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
  await login(page, hub.url, ADMIN);
  return page;
}

const mainText = (page: Page) => page.locator('main').innerText();

/** Asks the users page to create a user named like the installation's admin: the hub refuses (409). */
async function createTakenUser(page: Page) {
  await page.goto(`${hub.url}/users`);
  const form = page.locator('[data-testid="create-user"]');
  await form.waitFor();
  await page.locator('#nu-role').selectOption('technician');
  await page.locator('#nu-username').fill('admin');
  await page.locator('#nu-node-filter').fill('GZ-YX-001');
  await poll(() => page.locator('#nu-node').inputValue()).toBe('GZ-YX-001');
  await form.locator('button[type=submit]').click();
}

/** Another admin saves the layer after the page read it: the page's save is then over a stale version (409). */
async function saveBehindTheirBack([node, seconds]: [string, number]) {
  const cur = await json<{ version: number }>(hub.api(`/api/v1/config/nodes/${node}`));
  await json(hub.api(`/api/v1/config/nodes/${node}`, { method: 'PUT', json: { config: { telemetryInterval: seconds + cur.version }, expectedVersion: cur.version, reason: 'E2E: saved meanwhile' } }));
}

/**
 * English a Chinese page may show: ids (GZ-YX-002-01, app-3.4.0, E_NO_RESPONSE), an agent's error code
 * (health-check-failed), the language switch's "English", the CLI command that packs a release. Anything else in
 * Latin letters of two words or more is a sentence the page did not translate.
 */
function englishSentences(text: string): string[] {
  const cleaned = text
    .replace(/\bEnglish\b|kiosk-fleet release pack/g, '')
    .replace(/[A-Za-z0-9]+(?:[-_.][A-Za-z0-9]+)+/g, '')
    .replace(/\b[A-Z0-9_]{2,}\b/g, '');
  return [...cleaned.matchAll(/[A-Za-z]{2,}(?:[ ,:;()]+[A-Za-z]{2,})+/g)].map((m) => m[0]);
}

async function checkZh(page: Page, size: SizeName) {
  // Alerts: both titles in Chinese, with the station's name; the self-test result in the history.
  await page.goto(`${hub.url}/alerts`);
  const titles = page.locator('[data-testid="alert-title"]');
  // the pilot terminal's failed update has its own alert by now: every title the hub sent is checked
  await poll(() => titles.count()).toBeGreaterThanOrEqual(2);
  for (const a of (await json<{ items: Alert[] }>(hub.api('/api/v1/alerts'))).items) english.add(a.title);
  await poll(() => titles.allTextContents()).toEqual(expect.arrayContaining(['北京街派出所无法提供：居民身份证申领、身份证领取、办证进度查询', `${BROKEN}：身份证读卡器故障`]));
  const item = page.locator(`.alert-item[data-rule="peripheral-fault"]`);
  await item.getByRole('button', { name: '处理记录与自检' }).click();
  await poll(() => item.locator('[data-testid="history-text"]').allTextContents()).toContain('自检未通过：身份证读卡器');
  let text = await mainText(page);
  for (const e of english) expect(text).not.toContain(e);
  expect(englishSentences(text)).toEqual([]);
  await screenshot(page, `hub-texts-alerts-zh-${size}`);

  // Releases: the pause reason in Chinese, the wave's name too.
  await page.goto(`${hub.url}/releases`);
  const reason = page.locator('.rollout[data-status="paused"] [data-testid="pause-reason"]');
  await poll(() => reason.textContent(), 30_000).toBe('第 1 批（试点）：1 台终端中 1 台失败或不健康（最多允许 0 台）');
  text = await mainText(page);
  for (const e of english) expect(text).not.toContain(e);
  expect(englishSentences(text)).toEqual([]);
  // The pilot terminal's own failure by name, not the agent's code (was "失败 · health-check-failed").
  const failing = page.locator(`.rollout[data-status="paused"] [data-testid="failing"] [data-terminal="${PILOT}"]`);
  await poll(() => failing.textContent()).toContain('失败 · 更新后应用未能正常运行');
  expect(await failing.textContent()).not.toContain('health-check-failed');
  await screenshot(page, `hub-texts-releases-zh-${size}`);

  // A second rollout over the paused one's terminals: refused (409), said in Chinese.
  await page.locator('#ro-release').selectOption('app-3.4.0');
  await page.locator('#ro-target').selectOption('GZ-YX');
  await page.locator('#ro-pilot').selectOption('GZ-YX-001');
  await page.getByRole('button', { name: '开始发布' }).click();
  await page.getByRole('button', { name: /^确认：向 \d+ 台终端发布$/ }).click();
  const said = page.locator('[data-testid="rollout-create-result"]');
  await poll(() => said.textContent()).toContain('已在发布任务');
  text = await mainText(page);
  expect(englishSentences(text)).toEqual([]);
  await screenshot(page, `hub-texts-rollout-refused-zh-${size}`);

  // A config save over a version someone saved meanwhile (409): said in Chinese, no English sentence on the page.
  await page.goto(`${hub.url}/config?target=GZ-YX`);
  await page.waitForSelector('[data-testid="config-form"]');
  await saveBehindTheirBack(['GZ-YX', 20]);
  await page.locator('[data-field="telemetryInterval"] input').fill('40');
  await page.getByRole('button', { name: '预览变更' }).click();
  await page.getByRole('button', { name: '保存', exact: true }).click();
  const note = page.locator('#config-edit p.note.error');
  await poll(() => note.textContent()).toContain('请重新加载');
  text = await mainText(page);
  expect(englishSentences(text)).toEqual([]);
  await screenshot(page, `hub-texts-config-stale-zh-${size}`);

  // A refusal the page has no sentence of its own for ("失败：…"): the hub's error.text, not its English message.
  await createTakenUser(page);
  const refusal = page.locator('[data-testid="create-user"] p.note.error');
  await poll(() => refusal.textContent()).toBe('失败：用户名 admin 已被占用');
  expect(englishSentences(await mainText(page))).toEqual([]);
  await screenshot(page, `hub-texts-user-taken-zh-${size}`);

  // The broken terminal's page (its alerts, commands with the self-test, events).
  await page.goto(`${hub.url}/terminals/${BROKEN}`);
  await poll(() => page.locator('[data-command="self-test"]').count()).toBeGreaterThan(0);
  text = await mainText(page);
  for (const e of english) expect(text).not.toContain(e);
  expect(englishSentences(text)).toEqual([]);
  await screenshot(page, `hub-texts-terminal-zh-${size}`);
}

for (const size of ['desk', 'phone'] as const) {
  it(`in Chinese at ${size} size, alerts, the rollout's pause and the self-test read in Chinese, names in Chinese`, async () => {
    const page = await open(size, 'zh-CN');
    await checkZh(page, size);
    expect(pageErrors).toEqual([]);
  }, 180_000);
}

it('in English, the same pages show no Chinese (names in English too)', async () => {
  const page = await open('desk', 'en-US');
  await page.goto(`${hub.url}/alerts`);
  const titles = page.locator('[data-testid="alert-title"]');
  await poll(() => titles.allTextContents()).toEqual(
    expect.arrayContaining(['Beijingjie Police Station cannot offer: ID card application, ID card collection, Application progress inquiry', `${BROKEN}: ID card reader in fault`]),
  );
  const cjk = /[\u4e00-\u9fff]/;
  await page.locator('.alert-item[data-rule="peripheral-fault"]').getByRole('button', { name: 'History and self-tests' }).click();
  await poll(() => page.locator('[data-testid="history-text"]').allTextContents()).toContain('self-test failed: ID card reader');
  expect(await mainText(page)).not.toMatch(cjk);
  await screenshot(page, 'hub-texts-alerts-en-desk');
  await page.goto(`${hub.url}/releases`);
  await poll(() => page.locator('[data-testid="pause-reason"]').textContent()).toBe('wave 1 (pilot): 1 of 1 terminals failed or became unhealthy (at most 0 allowed)');
  expect(await mainText(page)).not.toMatch(cjk);
  await poll(() => page.locator(`[data-testid="failing"] [data-terminal="${PILOT}"]`).textContent()).toContain('failed · the app was not healthy after the update');
  await screenshot(page, 'hub-texts-releases-en-desk');
  await page.locator('#ro-release').selectOption('app-3.4.0');
  await page.locator('#ro-target').selectOption('GZ-YX');
  await page.locator('#ro-pilot').selectOption('GZ-YX-001');
  await page.getByRole('button', { name: 'Start rollout' }).click();
  await page.getByRole('button', { name: /^Confirm/ }).click();
  await poll(() => page.locator('[data-testid="rollout-create-result"]').textContent()).toMatch(/rollout/i);
  expect(await mainText(page)).not.toMatch(cjk);
  await page.goto(`${hub.url}/config?target=GZ-YX`);
  await page.waitForSelector('[data-testid="config-form"]');
  await saveBehindTheirBack(['GZ-YX', 60]);
  await page.locator('[data-field="telemetryInterval"] input').fill('50');
  await page.getByRole('button', { name: /^Preview/ }).click();
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await poll(() => page.locator('#config-edit p.note.error').textContent()).toMatch(/reload/i);
  expect(await mainText(page)).not.toMatch(cjk);
  await screenshot(page, 'hub-texts-config-stale-en-desk');
  await createTakenUser(page);
  await poll(() => page.locator('[data-testid="create-user"] p.note.error').textContent()).toBe('Failed: the username admin is taken');
  expect(await mainText(page)).not.toMatch(cjk);
  await page.goto(`${hub.url}/terminals/${BROKEN}`);
  await poll(() => page.locator('[data-command="self-test"]').count()).toBeGreaterThan(0);
  expect(await mainText(page)).not.toMatch(cjk);
  await screenshot(page, 'hub-texts-terminal-en-desk');
  expect(pageErrors).toEqual([]);
}, 180_000);
