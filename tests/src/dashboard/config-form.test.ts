/**
 * The config form (issue 23, part 1) in real Chromium against a real hub process and the fleet simulator (real
 * agents over MQTT): a district admin, in Chinese at desk size, changes opening hours at the district with the form,
 * gets a validation error next to its field in Chinese, sees the dry run by station, saves, sees the station inherit
 * the value (placeholder with the district's value and layer) and a terminal apply it; the form is usable at phone
 * size without a horizontal scroll. Screenshots at both sizes go to test-artifacts/dashboard/.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSimulator, type SimulatorProcess } from '../helpers/agent.ts';
import { spawnHub, type HubProcess } from '../helpers/hub.ts';
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
    { id: 'GZ-HZ-001', district: 'GZ-HZ', name: { zh: '赤岗派出所', en: 'Chigang Police Station' } },
  ],
  terminals: [
    { id: 'GZ-YX-001-01', station: 'GZ-YX-001', type: 'id-card', serial: 'SN-CF-0101' },
    { id: 'GZ-YX-002-01', station: 'GZ-YX-002', type: 'police-multi', serial: 'SN-CF-0201' },
    { id: 'GZ-HZ-001-01', station: 'GZ-HZ-001', type: 'weijingwu', serial: 'SN-CF-0301' },
  ],
};
const T = 'GZ-YX-001-01';
const ADMIN_PASSWORD = 'e2e-admin-password-1';
const DISTRICT_ADMIN = { username: 'admin-yx', password: 'yuexiu-admin-new-password' };

let hub: HubProcess;
let sim: SimulatorProcess;
let browser: Browser;
let tmp: string;
const contexts: BrowserContext[] = [];
const pageErrors: string[] = [];

const poll = <V>(fn: () => V | Promise<V>, timeout = 20_000) => expect.poll(fn, { timeout, interval: 100 });

async function openPage(size: SizeName): Promise<Page> {
  const ctx = await newContext(browser, size, 'zh-CN');
  contexts.push(ctx);
  const page = await ctx.newPage();
  page.setDefaultTimeout(30_000);
  page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
  // A CSP violation (zod trying `new Function`, an inline style) is a console error: the form must cause none.
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) pageErrors.push(`${page.url()}: ${m.text()}`);
  });
  await login(page, hub.url, DISTRICT_ADMIN);
  return page;
}

beforeAll(async () => {
  await ensureDashboardBuilt();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'kf-cfgform-e2e-'));
  const fleetFile = path.join(tmp, 'fleet.json');
  writeFileSync(fleetFile, JSON.stringify(FLEET));
  hub = await spawnHub({ env: { KF_DASHBOARD_DIR: DASHBOARD_DIST, KF_ADMIN_PASSWORD: ADMIN_PASSWORD } });
  sim = await spawnSimulator({ hubUrl: hub.mqttUrl, apiUrl: hub.url, token: hub.token, fleet: fleetFile, provision: true, interval: 5 });
  // The city sets weekday opening hours; the district admin refines them for their district.
  const city = await hub.api('/api/v1/config/nodes/GZ', {
    method: 'PUT',
    json: { config: { openingHours: { mon: [{ from: '09:00', to: '17:00' }], tue: [{ from: '09:00', to: '17:00' }] } }, expectedVersion: 0 },
  });
  if (city.status !== 200) throw new Error(`city layer: ${city.status} ${await city.text()}`);
  // A district admin of Yuexiu, who changes the one-time password at the first sign-in (through the API here).
  const created = await hub.api('/api/v1/users', { method: 'POST', json: { username: DISTRICT_ADMIN.username, role: 'district-admin', nodeId: 'GZ-YX' } });
  if (created.status !== 201) throw new Error(`user: ${created.status} ${await created.text()}`);
  const { password } = (await created.json()) as { password: string };
  browser = await launchBrowser();
  const ctx = await newContext(browser, 'desk', 'zh-CN');
  const first = await ctx.newPage();
  await login(first, hub.url, { username: DISTRICT_ADMIN.username, password });
  await first.waitForSelector('[data-testid="change-password"]');
  await first.locator('#new-password').fill(DISTRICT_ADMIN.password);
  await first.locator('#new-password-again').fill(DISTRICT_ADMIN.password);
  await first.getByRole('button', { name: '修改密码' }).click();
  await first.waitForSelector('[data-page="district"]');
  await ctx.close();
  // Every simulated terminal reports before the pages open.
  for (const until = Date.now() + 60_000; ; ) {
    const res = await hub.api('/api/v1/terminals?presence=online');
    const { items } = (await res.json()) as { items: { lastSeenAt: string | null }[] };
    if (items.filter((i) => i.lastSeenAt !== null).length === FLEET.terminals.length) break;
    if (Date.now() > until) throw new Error(`simulated terminals not all reporting: ${JSON.stringify(items)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}, 240_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close().catch(() => {});
  await sim?.stop();
  await hub?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}, 60_000);

describe('the config form', () => {
  it('a district admin changes opening hours with the form; the station inherits them and a terminal applies them', async () => {
    const page = await openPage('desk');
    await page.goto(`${hub.url}/config?target=GZ-YX`);
    await page.waitForSelector('[data-testid="config-form"]');
    // What the district inherits, and from where: the city's Monday.
    const mon = page.locator('[data-week="openingHours"] [data-day="mon"]');
    await poll(() => mon.locator('[data-inherited]').textContent()).toBe('继承：09:00–17:00 · 来自市局');
    expect(await mon.locator('[data-inherited]').getAttribute('data-layer')).toBe('city');

    // A wrong number is refused next to its field, in Chinese, before anything reaches the hub.
    const interval = page.locator('[data-field="telemetryInterval"]');
    expect(await interval.locator('label').textContent()).toBe('采集间隔（秒，5–3600）');
    await interval.locator('input').fill('1');
    await poll(() => interval.locator('[data-error]').textContent()).toBe('不能小于 5');
    await screenshot(page, 'config-form-error-desk');
    await page.getByRole('button', { name: '预览变更' }).click();
    await poll(() => page.locator('#config-edit p.note.error').textContent()).toContain('请先修正标红的字段');
    expect(await page.locator('[data-testid="config-diff"]').count()).toBe(0);
    await interval.getByRole('button', { name: '恢复继承' }).click();
    expect(await interval.locator('[data-error]').count()).toBe(0);

    // Monday 08:00–20:00 at the district; Friday gets an evening span running past midnight.
    await mon.getByRole('button', { name: '在此设置' }).click();
    await mon.getByLabel('星期一 开始').fill('08:00');
    await mon.getByLabel('星期一 结束').fill('20:00');
    const fri = page.locator('[data-week="openingHours"] [data-day="fri"]');
    await fri.getByRole('button', { name: '在此设置' }).click();
    await fri.getByLabel('星期五 结束').fill('18:00');
    await fri.getByRole('button', { name: '添加时段' }).click();
    await fri.getByLabel('星期五 开始').nth(1).fill('22:00');
    await fri.getByLabel('星期五 结束').nth(1).fill('02:00');
    await poll(() => fri.locator('.overnight').textContent()).toBe('至次日 02:00（跨午夜）');
    await page.locator('#cfg-reason').fill('E2E: 越秀区周一延长营业');

    // Diff in weekday order, dry run grouped by station: both Yuexiu stations change, Haizhu is not touched.
    await page.getByRole('button', { name: '预览变更' }).click();
    await poll(() => page.locator('[data-testid="config-diff"] li code').allTextContents()).toEqual(['openingHours.mon', 'openingHours.fri']);
    await poll(() => page.locator('[data-testid="config-reach"]').textContent()).toContain('受影响终端：2 台');
    expect(await page.locator('[data-testid="config-reach-stations"] [data-station]').evaluateAll((els) => els.map((e) => e.getAttribute('data-station')))).toEqual([
      'GZ-YX-001',
      'GZ-YX-002',
    ]);
    expect(await page.locator('[data-station="GZ-YX-001"]').textContent()).toContain('洪桥派出所');
    await screenshot(page, 'config-form-desk');
    await page.getByRole('button', { name: '保存' }).click();
    await poll(() => page.locator('#config-edit p.note[role=status]').textContent()).toContain('第 1 版');

    // The station inherits it: the placeholder shows the district's value and layer.
    await page.goto(`${hub.url}/config?target=GZ-YX-001`);
    await page.waitForSelector('[data-testid="config-form"]');
    const stMon = page.locator('[data-week="openingHours"] [data-day="mon"] [data-inherited]');
    await poll(() => stMon.textContent()).toBe('继承：08:00–20:00 · 来自分局 越秀区分局');
    expect(await stMon.getAttribute('data-layer')).toBe('district');
    await poll(() => page.locator('[data-week="openingHours"] [data-day="fri"] [data-inherited]').textContent()).toContain('22:00 至次日 02:00');
    // Tuesday still comes from the city.
    expect(await page.locator('[data-week="openingHours"] [data-day="tue"] [data-inherited]').getAttribute('data-layer')).toBe('city');
    await screenshot(page, 'config-form-station-desk');

    // A terminal of the station applies it: it reports the applied version, and its page says so.
    await poll(async () => {
      const r = await hub.api(`/api/v1/config/terminals/${T}`);
      const j = (await r.json()) as { desired: { version: number; config: { openingHours?: { mon?: unknown } } } | null; sync: { appliedVersion: number; status: string } };
      return { mon: j.desired?.config.openingHours?.mon, status: j.sync.status, applied: j.sync.appliedVersion === j.desired?.version };
    }, 30_000).toEqual({ mon: [{ from: '08:00', to: '20:00' }], status: 'in-sync', applied: true });
    await page.goto(`${hub.url}/terminals/${T}`);
    await poll(() => page.locator('#config tr[data-key="openingHours.mon"] [data-layer]').getAttribute('data-layer')).toBe('district');
    await poll(() => page.locator('[data-testid="config-sync"]').getAttribute('data-status')).toBe('in-sync');
    expect(await page.locator('[data-testid="config-sync"]').textContent()).toContain('已生效');
    await screenshot(page, 'config-form-terminal-applied-desk');
  }, 120_000);

  it('is usable at phone size: no horizontal scroll, the grid and the fields fit', async () => {
    const page = await openPage('phone');
    await page.goto(`${hub.url}/config?target=GZ-YX-002`);
    await page.waitForSelector('[data-testid="config-form"]');
    await poll(() => page.locator('[data-week="openingHours"] [data-day="tue"] [data-inherited]').getAttribute('data-layer')).toBe('city');
    const sat = page.locator('[data-week="openingHours"] [data-day="sat"]');
    await sat.getByRole('button', { name: '在此设置' }).click();
    await sat.getByLabel('星期六 开始').fill('10:00');
    await page.locator('[data-field="announcement.zh"] textarea').fill('周六上午十点开门');
    await page.locator('[data-field="announcement.en"] textarea').fill('Open from 10:00 on Saturdays');
    // (a string: the tests package has no DOM types)
    const widths = '({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth })';
    const overflow = await page.evaluate<{ scroll: number; client: number }>(widths);
    expect(overflow.scroll).toBeLessThanOrEqual(overflow.client);
    await page.getByRole('button', { name: '预览变更' }).click();
    await poll(() => page.locator('[data-testid="config-reach"]').textContent()).toContain('受影响终端：1 台');
    const after = await page.evaluate<{ scroll: number; client: number }>(widths);
    expect(after.scroll).toBeLessThanOrEqual(after.client);
    await screenshot(page, 'config-form-phone');
    // The advanced view still holds the same layer as JSON.
    await page.getByRole('tab', { name: '高级（JSON）' }).click();
    expect(JSON.parse(await page.locator('#cfg-text').inputValue())).toEqual({
      openingHours: { sat: [{ from: '10:00', to: '17:00' }] },
      announcement: { zh: '周六上午十点开门', en: 'Open from 10:00 on Saturdays' },
    });
    expect(pageErrors).toEqual([]);
  }, 90_000);

  it("a terminal's layer offers its type's services and chooses probes by name from the type's catalog", async () => {
    const page = await openPage('desk');
    await page.goto(`${hub.url}/config?target=GZ-YX-002-01`);
    await page.waitForSelector('[data-testid="config-form"]');
    // police-multi: household certificate, traffic fines, document submission, progress inquiry
    await poll(() => page.locator('[data-field="servicesEnabled"] input[type=checkbox]').count()).toBe(4);
    expect(await page.locator('[data-field="servicesEnabled"]').textContent()).toContain('户籍证明开具');
    await page.locator('[data-field="peripherals"] summary').click();
    expect(await page.locator('[data-peripheral]').evaluateAll((els) => els.map((e) => e.getAttribute('data-peripheral')))).toEqual([
      'idCardReader',
      'documentScanner',
      'a4Printer',
      'paymentTerminal',
      'touchscreen',
    ]);
    const reader = page.locator('[data-peripheral="idCardReader"]');
    await reader.locator('[data-field="peripherals.idCardReader.driver"] select').selectOption('command');
    const probe = reader.locator('[data-field="peripherals.idCardReader.probe"] select');
    expect(await probe.locator('option').allTextContents()).toEqual(['（继承）', 'idcard-reader']);
    await probe.selectOption('idcard-reader');
    await page.getByRole('tab', { name: '高级（JSON）' }).click();
    expect(JSON.parse(await page.locator('#cfg-text').inputValue())).toEqual({ peripherals: { idCardReader: { driver: 'command', probe: 'idcard-reader' } } });
    await screenshot(page, 'config-form-terminal-desk');
  }, 60_000);
});
