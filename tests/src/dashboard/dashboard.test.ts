/**
 * The dashboard in real Chromium (Debian's chromium, driven by playwright-core) against a real hub process and the
 * fleet simulator (real agents over MQTT): log in, drill down from the city to one terminal, see a card-reader fault arrive live, run a
 * self-test, lose and regain the live stream, switch the language, register and move a terminal, and keep a
 * screenshot of every page at phone (390×844) and desk (1440×900) size under test-artifacts/dashboard/.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TERMINAL_TYPE_IDS } from '@kiosk-fleet/protocol';
import { generateReleaseKeyPair, privateKeyFromPem } from '@kiosk-fleet/protocol/release-signing';
import { appBundle, buildRelease } from '../../../agent/src/updater/testing.ts';
import { spawnSimulator, type SimulatorProcess } from '../helpers/agent.ts';
import { spawnHub, type HubProcess } from '../helpers/hub.ts';
import { DASHBOARD_DIST, ensureDashboardBuilt, follow, launchBrowser, login, newContext, screenshot, SIZES, type Login, type SizeName } from './browser.ts';
import { startRelay } from './proxy.ts';

const FLEET = {
  city: { id: 'GZ', name: { zh: '广州市公安局', en: 'Guangzhou Public Security Bureau' } },
  districts: [
    { id: 'GZ-YX', name: { zh: '越秀区分局', en: 'Yuexiu District Branch' } },
    { id: 'GZ-HZ', name: { zh: '海珠区分局', en: 'Haizhu District Branch' } },
  ],
  stations: [
    { id: 'GZ-YX-001', district: 'GZ-YX', name: { zh: '洪桥派出所', en: 'Hongqiao Police Station' } },
    { id: 'GZ-YX-002', district: 'GZ-YX', name: { zh: '北京街派出所', en: 'Beijingjie Police Station' } },
    { id: 'GZ-HZ-001', district: 'GZ-HZ', name: { zh: '赤岗派出所', en: 'Chigang Police Station' } },
  ],
  terminals: [
    { id: 'GZ-YX-001-01', station: 'GZ-YX-001', type: 'id-card', serial: 'SN-E2E-0101' },
    { id: 'GZ-YX-001-02', station: 'GZ-YX-001', type: 'police-multi', serial: 'SN-E2E-0102' },
    { id: 'GZ-YX-002-01', station: 'GZ-YX-002', type: 'id-card', serial: 'SN-E2E-0201' },
    { id: 'GZ-HZ-001-01', station: 'GZ-HZ-001', type: 'weijingwu', serial: 'SN-E2E-0301' },
  ],
};
/** Registered, never switched on: counts as "never seen", and takes the endorsement service down in Haizhu. */
const NEVER_ON = { id: 'GZ-HZ-001-02', station: 'GZ-HZ-001', type: 'endorsement', serial: 'SN-E2E-0302' };
const T = 'GZ-YX-001-01';

let hub: HubProcess;
let sim: SimulatorProcess;
let browser: Browser;
let tmp: string;
/** A signed release packed as `kiosk-fleet release pack` does: the three files an operator uploads. */
let releaseFiles: { artifact: string; manifest: string; signature: string; version: string };
const contexts: BrowserContext[] = [];
/** Uncaught errors in any page: a page that throws has failed, whatever it shows. */
const pageErrors: string[] = [];

/** vitest's default poll timeout is 1 s; a live page on a loaded 2-core machine needs more. */
const poll = <V>(fn: () => V | Promise<V>, timeout = 20_000) => expect.poll(fn, { timeout, interval: 100 });

const fault = (id: string, code: string) => sim.control(`/terminals/${id}/fault`, { peripheral: 'idCardReader', code });
const recover = (id: string) => sim.control(`/terminals/${id}/recover`, { peripheral: 'idCardReader' });

const ADMIN = { username: 'admin', password: 'e2e-admin-password-1' };

async function openPage(size: SizeName, locale: 'zh-CN' | 'en-US' = 'zh-CN', origin = hub.url, cred: Login = ADMIN): Promise<Page> {
  const ctx = await newContext(browser, size, locale);
  contexts.push(ctx);
  const page = await ctx.newPage();
  page.setDefaultTimeout(30_000);
  page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
  await login(page, origin, cred);
  return page;
}

beforeAll(async () => {
  await ensureDashboardBuilt();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'kf-dash-e2e-'));
  const fleetFile = path.join(tmp, 'fleet.json');
  writeFileSync(fleetFile, JSON.stringify(FLEET));
  const keys = generateReleaseKeyPair();
  writeFileSync(path.join(tmp, 'pub.pem'), keys.publicKeyPem);
  const built = await buildRelease({
    workDir: tmp,
    version: '3.3.0',
    files: appBundle('3.3.0', true),
    privateKey: privateKeyFromPem(keys.privateKeyPem),
    terminalTypes: [...TERMINAL_TYPE_IDS],
  });
  releaseFiles = {
    artifact: path.join(tmp, 'app-3.3.0.tar.gz'),
    manifest: path.join(tmp, 'app-3.3.0.manifest.json'),
    signature: path.join(tmp, 'app-3.3.0.sig'),
    version: built.version,
  };
  writeFileSync(releaseFiles.artifact, built.artifact);
  writeFileSync(releaseFiles.manifest, Buffer.from(built.manifestB64, 'base64'));
  writeFileSync(releaseFiles.signature, `${built.signature}\n`);
  hub = await spawnHub({
    env: {
      KF_RELEASE_KEYS: path.join(tmp, 'pub.pem'),
      KF_DASHBOARD_DIR: DASHBOARD_DIST,
      KF_ADMIN_PASSWORD: ADMIN.password,
      // Alerts from the first second, evaluated every second (the hub's defaults: a minute's grace, every 5 s).
      KF_ALERT_START_GRACE_MS: '0',
      KF_ALERT_EVALUATE_MS: '1000',
    },
  });
  // The simulator registers its terminals through the hub's import API and keeps their secrets.
  sim = await spawnSimulator({ hubUrl: hub.mqttUrl, apiUrl: hub.url, token: hub.token, fleet: fleetFile, provision: true, interval: 5 });
  await hub.importFleet({ ...FLEET, terminals: [NEVER_ON] });
  // Alert on a peripheral fault at once (the default waits 5 minutes), set where an operator would: the city layer.
  const layer = await hub.api('/api/v1/config/nodes/GZ', {
    method: 'PUT',
    json: { config: { alerts: { thresholds: { peripheralFaultMinutes: 0 } } }, expectedVersion: 0, reason: 'E2E: alert at once' },
  });
  if (layer.status !== 200) throw new Error(`city config layer: ${layer.status} ${await layer.text()}`);
  // Every simulated terminal has sent a first sample (peripherals known) before the pages are opened.
  for (const until = Date.now() + 60_000; ; ) {
    const res = await hub.api('/api/v1/terminals?presence=online');
    const { items } = (await res.json()) as { items: { lastSeenAt: string | null }[] };
    if (items.filter((i) => i.lastSeenAt !== null).length === FLEET.terminals.length) break;
    if (Date.now() > until) throw new Error(`simulated terminals not all reporting: ${JSON.stringify(items)}`);
    await new Promise((r) => setTimeout(r, 200));
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

// When a test fails, keep what every open page showed, to see why.
afterEach(async (ctx) => {
  if (ctx.task.result?.state !== 'fail') return;
  let n = 0;
  const shown: string[] = [];
  for (const c of contexts) {
    for (const p of c.pages()) {
      await screenshot(p, `failed-${ctx.task.name.slice(0, 40).replace(/\W+/g, '-')}-${n++}`).catch(() => {});
      const text = await p.locator('body').innerText({ timeout: 2000 }).catch((e: unknown) => `(no text: ${String(e)})`);
      shown.push(`--- ${p.url()}\n${text.slice(0, 1500)}`);
    }
  }
  // CI keeps only the console: say what the pages showed and what the hub complained about.
  const hubTrouble = hub.logs.filter((l) => /"level":(40|50|60)/.test(l) || !l.startsWith('{')).slice(-30);
  console.error(`[dashboard] "${ctx.task.name}" failed; open pages:\n${shown.join('\n')}\n--- hub warnings/errors:\n${hubTrouble.join('\n')}`);
});

describe('dashboard in Chromium against a real hub', () => {
  it('keeps the first load under 200 KB of gzipped script', () => {
    const html = readFileSync(path.join(DASHBOARD_DIST, 'index.html'), 'utf8');
    const scripts = [...html.matchAll(/<script[^>]+src="([^"]+)"/g)].map((m) => m[1]!);
    expect(scripts.length).toBeGreaterThan(0);
    const gz = scripts.reduce((sum, src) => sum + gzipSync(readFileSync(path.join(DASHBOARD_DIST, src))).length, 0);
    expect(gz).toBeLessThan(200 * 1024);
  });

  it('signs in with user name and password (refusing a wrong one), back to the page asked for', async () => {
    for (const size of Object.keys(SIZES) as SizeName[]) {
      const ctx = await newContext(browser, size);
      contexts.push(ctx);
      const page = await ctx.newPage();
      await page.goto(`${hub.url}/nodes/GZ-YX`);
      await page.waitForURL(/\/login\?next=/);
      await screenshot(page, `login-${size}`);
      await page.locator('#username').fill('admin');
      await page.locator('#password').fill('not-the-password');
      await page.getByRole('button', { name: '登录', exact: true }).click();
      await poll(() => page.locator('[role=alert]').textContent()).toContain('用户名或密码错误');
      await page.locator('#password').fill(ADMIN.password);
      await page.getByRole('button', { name: '登录', exact: true }).click();
      await page.waitForSelector('[data-page="district"]');
      expect(new URL(page.url()).pathname).toBe('/nodes/GZ-YX');
      await poll(() => page.locator('[data-testid="who"]').textContent()).toBe('admin');
      // The session is a cookie the page cannot read, so a script injected into the page could not steal it.
      expect(await page.evaluate('document.cookie')).not.toContain('kf_session');
      // A reload keeps the session; logging out ends it on the hub too.
      await page.reload();
      await page.waitForSelector('[data-page="district"]');
      await page.getByRole('button', { name: '退出登录' }).click();
      await page.waitForURL(/\/login/);
      await page.goto(`${hub.url}/`);
      await page.waitForURL(/\/login/);
    }
  }, 60_000);

  it('signs in with the admin token too, and refuses a wrong one', async () => {
    const ctx = await newContext(browser, 'desk');
    contexts.push(ctx);
    const page = await ctx.newPage();
    await page.goto(`${hub.url}/`);
    await page.getByRole('button', { name: '改用 API 令牌或管理员令牌登录' }).click();
    await page.locator('#token').fill('not-the-token');
    await page.getByRole('button', { name: '登录', exact: true }).click();
    await poll(() => page.locator('[role=alert]').textContent()).toContain('平台拒绝了该令牌');
    await page.locator('#token').fill(hub.token);
    await page.getByRole('button', { name: '登录', exact: true }).click();
    await page.waitForSelector('[data-page="city"]');
    await poll(() => page.locator('[data-testid="who"]').textContent()).toBe('令牌');
  }, 60_000);

  it('makes a new technician change the password first, then shows only their district', async () => {
    const res = await hub.api('/api/v1/users', { method: 'POST', json: { username: 'tech-yx', role: 'technician', nodeId: 'GZ-YX' } });
    expect(res.status).toBe(201);
    const { password } = (await res.json()) as { password: string };
    const page = await openPage('phone', 'zh-CN', hub.url, { username: 'tech-yx', password });
    await page.waitForSelector('[data-testid="change-password"]');
    await screenshot(page, 'change-password-phone');
    await page.locator('#new-password').fill('a-new-and-long-password');
    await page.locator('#new-password-again').fill('a-new-and-long-password');
    await page.getByRole('button', { name: '修改密码' }).click();
    // Home for a district technician is their district, not the city.
    await page.waitForSelector('[data-page="district"]');
    await poll(() => page.locator('h1').textContent()).toBe('越秀区分局');
    expect(await page.locator('[data-node="GZ-HZ-001"]').count()).toBe(0);
    // What a technician may not do is not offered (the hub refuses it anyway).
    await poll(() => page.locator('.mainnav').textContent()).toContain('告警');
    expect(await page.locator('.mainnav').textContent()).not.toContain('用户与审计');
    await screenshot(page, 'technician-home-phone');
  }, 60_000);

  it('drills down from the city to one terminal, at phone and desk size', async () => {
    for (const size of Object.keys(SIZES) as SizeName[]) {
      const page = await openPage(size);
      // City: one tile per district with its counts; services with where they are down.
      const yx = page.locator('[data-node="GZ-YX"]');
      await poll(() => yx.locator('.c-online dd').textContent()).toBe('3');
      const hz = page.locator('[data-node="GZ-HZ"]');
      await poll(() => hz.locator('.c-total dd').textContent()).toBe('2');
      // Each service names the stations that cannot offer it now (issue 24), not only their district.
      await poll(() => page.locator('[data-service="exit-entry-endorsement"]').textContent()).toContain('赤岗派出所');
      await screenshot(page, `city-${size}`);

      await follow(page, yx.getByRole('link', { name: '越秀区分局' }), /\/nodes\/GZ-YX$/);
      await page.waitForSelector('[data-page="district"]');
      await poll(() => page.locator('[data-node="GZ-YX-001"] .c-online dd').textContent()).toBe('2');
      await screenshot(page, `district-${size}`);

      await follow(page, page.getByRole('link', { name: '洪桥派出所' }).first(), /\/nodes\/GZ-YX-001$/);
      await page.waitForSelector('[data-page="station"]');
      const card = page.locator(`[data-terminal="${T}"]`);
      await poll(() => card.locator('[data-peripheral="idCardReader"]').getAttribute('data-status')).toBe('ok');
      await poll(() => card.locator('.badge.presence-online').count()).toBe(1);
      await screenshot(page, `station-${size}`);
      // On a phone the healthy terminals are folded under one line (those in trouble come first): open it.
      if (size === 'phone') await page.locator('[data-testid="healthy-terminals"] summary').click();

      await follow(page, card.getByRole('link', { name: T }), new RegExp(`/terminals/${T}$`));
      await page.waitForSelector('[data-page="terminal"]');
      await poll(() => page.locator('[data-testid="presence"]').textContent()).toContain('在线');
      // uPlot is loaded lazily and draws one canvas per metric.
      await poll(() => page.locator('.chart canvas').count(), 20_000).toBe(4);
      await poll(() => page.locator('#peripherals [data-peripheral="idCardReader"]').textContent()).toContain('正常');
      await screenshot(page, `terminal-${size}`);
      // The breadcrumb leads back up.
      await follow(page, page.locator('.crumbs').getByRole('link', { name: '越秀区分局' }), /\/nodes\/GZ-YX$/);
      await page.waitForSelector('[data-page="district"]');
    }
  }, 120_000);

  it('shows a card-reader fault made by the terminal live on the station page, without a reload', async () => {
    const page = await openPage('desk');
    await page.goto(`${hub.url}/nodes/GZ-YX-001`);
    const reader = page.locator(`[data-terminal="${T}"] [data-peripheral="idCardReader"]`);
    await poll(() => reader.getAttribute('data-status')).toBe('ok');
    await page.waitForSelector('[data-live="open"]');
    await page.evaluate('window.__sameDocument = true');

    await fault(T, 'E_NO_RESPONSE');
    await poll(() => reader.getAttribute('data-status'), 15_000).toBe('fault');
    // The ID-card services of that terminal are down with it.
    await poll(() => page.locator(`[data-terminal="${T}"] [data-service="id-card-application"]`).getAttribute('class')).toContain('down');
    expect(await page.evaluate('window.__sameDocument === true')).toBe(true);
    // The station's open alerts list it too.
    await poll(() => page.locator(`#open-alerts [data-rule="peripheral-fault"][data-terminal="${T}"]`).count(), 30_000).toBeGreaterThan(0);
    await screenshot(page, 'station-fault-desk');
    // The city's "needs attention" list names it too.
    await page.goto(`${hub.url}/`);
    await poll(() => page.locator(`[data-problem="${T}"] .periph-fault`).count()).toBe(1);
    await page.goBack();

    await recover(T);
    await poll(() => reader.getAttribute('data-status'), 15_000).toBe('ok');
  }, 60_000);

  it("works a card-reader alert from the technician's queue: live, acknowledge, self-test, resolve with a note", async () => {
    const id = 'GZ-YX-002-01';
    const page = await openPage('phone');
    await page.goto(`${hub.url}/alerts`);
    await page.waitForSelector('[data-page="alerts"] #queue');
    await page.waitForSelector('[data-live="open"]');
    await fault(id, 'E_NO_RESPONSE');
    // Appears without a reload.
    const item = page.locator(`.alert-item[data-rule="peripheral-fault"][data-terminal="${id}"]`).first();
    await poll(() => item.count(), 30_000).toBe(1);
    await poll(() => item.getAttribute('data-state')).toBe('open');
    await screenshot(page, 'alerts-open-phone');

    await item.getByRole('button', { name: '确认' }).click();
    await poll(() => item.getAttribute('data-state')).toBe('acknowledged');
    await item.getByRole('button', { name: '执行自检' }).click();
    // The self-test result comes back from the terminal and is attached to the alert.
    await poll(() => item.locator('[data-testid="alert-self-tests"] li').first().textContent(), 30_000).toContain('身份证读卡器');
    await screenshot(page, 'alerts-self-test-phone');

    await item.getByRole('button', { name: '关闭' }).click();
    await item.locator('input').fill('E2E: reader reseated');
    const alertId = await item.getAttribute('data-alert');
    await item.locator('form').getByRole('button', { name: '关闭' }).click();
    // Resolved alerts leave the queue; under "all" it shows with its note.
    await poll(() => page.locator(`.alert-item[data-alert="${alertId}"]`).count()).toBe(0);
    await page.getByLabel('显示').selectOption('all');
    const resolved = page.locator(`.alert-item[data-alert="${alertId}"]`);
    await poll(() => resolved.getAttribute('data-state')).toBe('resolved');
    expect(await resolved.textContent()).toContain('E2E: reader reseated');
    await recover(id);
  }, 120_000);

  it('runs a self-test from the terminal page and shows its result', async () => {
    const page = await openPage('phone');
    await page.goto(`${hub.url}/terminals/${T}`);
    await page.getByRole('button', { name: '执行自检' }).click();
    const row = page.locator('#commands tr[data-command="self-test"]').first();
    await poll(() => row.getAttribute('data-status'), 15_000).toBe('ok');
    expect(await row.textContent()).toContain('通过');
    await screenshot(page, 'terminal-self-test-phone');
  }, 60_000);

  it('says when the live stream drops and reconnects by itself', async () => {
    const relay = await startRelay(hub.httpPort);
    try {
      const page = await openPage('desk', 'zh-CN', relay.url);
      await page.goto(`${relay.url}/nodes/GZ-YX-001`);
      await page.waitForSelector('[data-live="open"]');
      relay.cut();
      await poll(() => page.locator('[data-testid="live-banner"]').textContent(), 20_000).toContain('实时更新已中断');
      await screenshot(page, 'live-lost-desk');
      // While the stream is down the terminal's card reader fails; after the reconnect the page catches up.
      await fault(T, 'E_DURING_OUTAGE');
      relay.restore();
      await page.waitForSelector('[data-live="open"]', { timeout: 30_000 });
      await poll(() => page.locator('[data-testid="live-banner"]').textContent()).toContain('实时更新已恢复');
      const reader = page.locator(`[data-terminal="${T}"] [data-peripheral="idCardReader"]`);
      await poll(() => reader.getAttribute('data-status'), 15_000).toBe('fault');
    } finally {
      await recover(T);
      await relay.close();
    }
  }, 90_000);

  it('switches between Chinese and English, and shows times in Asia/Shanghai', async () => {
    const page = await openPage('desk', 'en-US');
    // The browser says English: the dashboard follows it.
    await poll(() => page.locator('h1').textContent()).toBe('Guangzhou Public Security Bureau');
    expect(await page.locator('html').getAttribute('lang')).toBe('en');
    await poll(() => page.locator('.mainnav').textContent()).toContain('Alerts');
    await screenshot(page, 'city-english-desk');
    await page.getByLabel('Language').selectOption('zh-CN');
    await poll(() => page.locator('h1').textContent()).toBe('广州市公安局');
    expect(await page.locator('html').getAttribute('lang')).toBe('zh-CN');
    await poll(() => page.locator('.mainnav').textContent()).toContain('告警');
    await page.getByLabel('语言').selectOption('en');
    await poll(() => page.locator('.mainnav').textContent()).toContain('Placement');

    // The browser runs in UTC; the page must still read the bureau's clock.
    await page.goto(`${hub.url}/terminals/${T}`);
    const detail = (await (await hub.api(`/api/v1/terminals/${T}`)).json()) as { presence: { since: string } };
    const expected = new Intl.DateTimeFormat('en', {
      timeZone: 'Asia/Shanghai',
      hourCycle: 'h23',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    }).format(new Date(detail.presence.since));
    await poll(() => page.locator('[data-testid="presence"]').textContent()).toContain(expected);
  }, 60_000);

  it('registers a terminal (secret shown once) and moves another between stations', async () => {
    const page = await openPage('desk');
    await page.getByRole('link', { name: '终端部署' }).click();
    await page.waitForSelector('[data-page="placement"]');
    await page.locator('#reg-id').fill('GZ-YX-002-09');
    await page.locator('#reg-type').selectOption('weijingwu');
    await page.locator('#reg-serial').fill('SN-E2E-NEW');
    await page.locator('#reg-station').selectOption('GZ-YX-002');
    await page.getByRole('button', { name: '登记' }).click();
    const secret = (await page.locator('[data-testid="secret-value"]').textContent())?.trim() ?? '';
    expect(secret.length).toBeGreaterThanOrEqual(32);
    await screenshot(page, 'placement-desk');

    await page.locator('#move-id-filter').fill('GZ-HZ-001-02');
    await poll(() => page.locator('#move-id').inputValue()).toBe('GZ-HZ-001-02');
    await page.locator('#move-station').selectOption('GZ-YX-002');
    await page.locator('#move-reason').fill('E2E: moved to a busier station');
    await page.getByRole('button', { name: '迁移' }).click();
    await poll(() => page.locator('#move .note').textContent()).toContain('GZ-HZ-001-02');

    await page.goto(`${hub.url}/nodes/GZ-YX-002`);
    await page.waitForSelector('[data-terminal="GZ-HZ-001-02"]');
    expect(await page.locator('[data-terminal="GZ-YX-002-09"]').count()).toBe(1);
    // The secret is shown once: the API never returns it again.
    const detail = await (await hub.api('/api/v1/terminals/GZ-YX-002-09')).text();
    expect(detail).not.toContain(secret);

    // Bulk import: a preview of what the file holds, then the hub's answer with the new secrets.
    await page.goto(`${hub.url}/placement`);
    await page.locator('#imp-text').fill('id,station,type,serial\nGZ-HZ-001-07,GZ-HZ-001,id-card,SN-IMP-7\nGZ-HZ-001-08,GZ-HZ-001,weijingwu,SN-IMP-8\n');
    await page.getByRole('button', { name: '预览' }).click();
    await poll(() => page.locator('[data-testid="import-preview"]').textContent()).toContain('1 个服务点、2 台终端');
    await page.getByRole('button', { name: '导入', exact: true }).click();
    await poll(() => page.locator('#import .note.ok').textContent()).toContain('新增 2 台');
    expect(await page.getByRole('link', { name: '下载密钥 CSV' }).getAttribute('href')).toContain('GZ-HZ-001-08');
    expect((await (await hub.api('/api/v1/terminals?node=GZ-HZ-001')).text())).toContain('GZ-HZ-001-07');

    const phone = await openPage('phone');
    await phone.goto(`${hub.url}/placement`);
    await phone.waitForSelector('[data-page="placement"]');
    await screenshot(phone, 'placement-phone');
  }, 60_000);

  it('finds terminals by filters kept in the URL', async () => {
    const page = await openPage('phone');
    await page.getByRole('link', { name: '终端', exact: true }).click();
    await page.waitForSelector('[data-page="terminals"]');
    await page.getByLabel('在线状态').selectOption('unknown');
    await page.getByRole('button', { name: '搜索' }).click();
    await page.waitForURL(/presence=unknown/);
    await poll(() => page.locator(`[data-row="${NEVER_ON.id}"]`).count()).toBe(1);
    expect(await page.locator(`[data-row="${T}"]`).count()).toBe(0);
    await screenshot(page, 'terminals-phone');
    // The same view from its URL, at the desk.
    const desk = await openPage('desk');
    await desk.goto(`${hub.url}/terminals?q=SN-E2E-02`);
    await poll(() => desk.locator('[data-row]').count()).toBe(1);
    expect(await desk.locator('[data-row="GZ-YX-002-01"]').count()).toBe(1);
    await screenshot(desk, 'terminals-desk');
  }, 60_000);

  it("edits config layers with a diff and the hub's dry run before saving, and shows each value's layer", async () => {
    const id = 'GZ-YX-002-01';
    const page = await openPage('desk');
    await page.goto(`${hub.url}/terminals/${id}`);
    await follow(page, page.locator('#config').getByRole('link', { name: '编辑' }), /\/config\?target=GZ-YX-002-01$/);
    // The form is the default view (tests/src/dashboard/config-form.test.ts); the JSON is the advanced one.
    await page.getByRole('tab', { name: '高级（JSON）' }).click();
    await page.waitForSelector('#cfg-text');
    // A typo is refused by the hub with the path of the bad field, and nothing is saved.
    await page.locator('#cfg-text').fill('{ "telemetryIntervall": 10 }');
    await page.getByRole('button', { name: '保存' }).isDisabled();
    await page.getByRole('button', { name: '预览变更' }).click();
    await poll(() => page.locator('#config-edit .note.error').textContent()).toContain('telemetryIntervall');

    await page.locator('#cfg-text').fill('{ "telemetryInterval": 10 }');
    await page.getByRole('button', { name: '预览变更' }).click();
    await poll(() => page.locator('[data-testid="config-diff"]').textContent()).toContain('telemetryInterval');
    await poll(() => page.locator('[data-testid="config-reach"]').textContent()).toContain('受影响终端：1 台');
    await page.getByRole('button', { name: '保存' }).click();
    await poll(() => page.locator('#config-edit p.note[role=status]').textContent()).toContain('第 1 版');

    // A station layer reaches both terminals of that station.
    await page.goto(`${hub.url}/config?target=GZ-YX-001`);
    await page.getByRole('tab', { name: '高级（JSON）' }).click();
    await page.waitForSelector('#cfg-text');
    await page.locator('#cfg-text').fill('{ "logLevel": "debug" }');
    await page.locator('#cfg-reason').fill('E2E: more logs at Hongqiao');
    await page.getByRole('button', { name: '预览变更' }).click();
    await poll(() => page.locator('[data-testid="config-reach"]').textContent()).toContain('受影响终端：2 台');
    await screenshot(page, 'config-diff-desk');
    await page.getByRole('button', { name: '保存' }).click();
    await poll(() => page.locator('#config-edit p.note[role=status]').textContent()).toContain('第 1 版');

    // The terminal page names the layer each effective value came from, and the terminal applies it.
    await page.goto(`${hub.url}/terminals/${T}`);
    await poll(() => page.locator('#config tr[data-key="logLevel"] [data-layer]').getAttribute('data-layer')).toBe('station');
    // the station's name comes with the tree, which may arrive after the config table: poll, do not race it
    await poll(() => page.locator('#config tr[data-key="logLevel"]').textContent()).toContain('洪桥派出所');
    await poll(() => page.locator('[data-testid="config-sync"]').getAttribute('data-status'), 20_000).toBe('in-sync');
    await screenshot(page, 'terminal-config-desk');
  }, 90_000);

  it('is keyboard navigable: skip link first, then the main navigation', async () => {
    const page = await openPage('desk');
    // A fresh load starts at the top of the document (after an in-app navigation focus moves to the main region).
    await page.reload();
    await page.waitForSelector('[data-page="city"]');
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement?.className')).toBe('skip');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    const focused = await page.evaluate("document.activeElement?.getAttribute('href')");
    expect(focused).toBe('/');
    // Every form control on the placement page has a label.
    await page.goto(`${hub.url}/placement`);
    await page.waitForSelector('[data-page="placement"]');
    // (A string, evaluated in the page: this package's type check has no DOM library.)
    const unlabelled = await page.evaluate(`[...document.querySelectorAll('input, select, textarea')]
      .filter((el) => !el.labels?.length && !el.getAttribute('aria-label'))
      .map((el) => el.id)`);
    expect(unlabelled).toEqual([]);
  }, 60_000);

  it('uploads a signed release, starts a rollout with a pilot station, follows it live, pauses and resumes it', async () => {
    const page = await openPage('desk');
    await page.goto(`${hub.url}/releases`);
    await page.waitForSelector('#rel-artifact');
    await page.locator('#rel-artifact').setInputFiles(releaseFiles.artifact);
    await page.locator('#rel-manifest').setInputFiles(releaseFiles.manifest);
    await page.locator('#rel-signature').setInputFiles(releaseFiles.signature);
    await page.getByRole('button', { name: '上传', exact: true }).click();
    await poll(() => page.locator('#releases [data-release]').count()).toBe(1);
    expect(await page.locator('#releases [data-release]').textContent()).toContain('3.3.0');

    await page.locator('#ro-release').selectOption({ index: 1 });
    await page.locator('#ro-target').selectOption('GZ-YX');
    await page.locator('#ro-pilot').selectOption('GZ-YX-001');
    await page.getByRole('button', { name: '开始发布' }).click();
    await page.getByRole('button', { name: /^确认：向 \d+ 台终端发布$/ }).click();
    const rollout = page.locator('.rollout').first();
    await poll(() => rollout.getAttribute('data-status')).toBe('running');
    // Two waves: the pilot station's two terminals, then the rest of Yuexiu.
    await poll(() => rollout.locator('[data-wave]').count()).toBe(2);
    expect(await rollout.locator('[data-wave="0"] [data-testid="wave-count"]').textContent()).toMatch(/\/2/);
    // The pilot terminals download and install it: the wave's progress moves without a reload.
    await poll(() => rollout.locator('[data-wave="0"] progress').evaluate((p) => (p as unknown as { value: number }).value), 60_000).toBeGreaterThan(0);
    await screenshot(page, 'releases-rollout-desk');

    await rollout.getByRole('button', { name: '暂停' }).click();
    await poll(() => rollout.getAttribute('data-status')).toBe('paused');
    expect(await rollout.textContent()).toContain('操作员暂停');
    await rollout.getByRole('button', { name: '继续' }).click();
    await poll(() => rollout.getAttribute('data-status')).not.toBe('paused');
  }, 120_000);

  it('lists operators and the audit log for an admin, and verifies the audit chain', async () => {
    const page = await openPage('desk');
    await page.goto(`${hub.url}/users`);
    await poll(() => page.locator('[data-user="admin"]').count()).toBe(1);
    await poll(() => page.locator('#audit [data-action="user.create"]').count()).toBeGreaterThan(0);
    await page.getByRole('button', { name: '校验防篡改链' }).click();
    await poll(() => page.locator('[data-testid="audit-verify"]').textContent()).toContain('完整');
  }, 60_000);

  it('shows every page at phone and desk size, honestly where the hub lacks a feature', async () => {
    for (const size of Object.keys(SIZES) as SizeName[]) {
      const page = await openPage(size);
      for (const [route, name] of [
        ['/alerts', 'alerts'],
        ['/config', 'config'],
        ['/releases', 'releases'],
        ['/users', 'users'],
        ['/terminals', 'terminals'],
        [`/terminals/${NEVER_ON.id}`, 'terminal'],
        ['/nodes/GZ-HZ-001', 'station'],
      ] as const) {
        await page.goto(`${hub.url}${route}`);
        await page.waitForSelector(`[data-page="${name}"]`).catch(async (e: unknown) => {
          await screenshot(page, `failed-${name}-${size}`);
          throw new Error(`${route}: ${String(e)}\n${pageErrors.join('\n')}`);
        });
        // Either real content or an explicit "not available yet": never an endless spinner.
        await poll(() => page.locator('main [role=status]').filter({ hasText: '加载中' }).count(), 15_000).toBe(0);
        await screenshot(page, `${name}-${route.includes(NEVER_ON.id) ? 'never-seen-' : ''}${size}`);
      }
      // Something that does not exist says so.
      await page.goto(`${hub.url}/terminals/NO-SUCH-TERMINAL`);
      await poll(() => page.locator('main').textContent()).toContain('未找到');
    }
    expect(pageErrors).toEqual([]);
  }, 120_000);
});
