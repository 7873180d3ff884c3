/**
 * Issue 24, "Makes the user's question hard to answer": the forced password change shows the hub's rules before
 * the first try; the district page names the station that cannot offer a service, above the station cards on a
 * phone. Real Chromium against a real hub process and the fleet simulator, in Chinese.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICES } from '@kiosk-fleet/protocol';
import { spawnHub, type HubProcess } from '../helpers/hub.ts';
import { spawnSimulator, type SimulatorProcess } from '../helpers/agent.ts';
import { DASHBOARD_DIST, ensureDashboardBuilt, launchBrowser, login, newContext, screenshot } from './browser.ts';

const FLEET = {
  city: { id: 'GZ', name: { zh: '广州市公安局', en: 'Guangzhou Public Security Bureau' } },
  districts: [{ id: 'GZ-YX', name: { zh: '越秀区分局', en: 'Yuexiu District Branch' } }],
  stations: [
    { id: 'GZ-YX-001', district: 'GZ-YX', name: { zh: '洪桥派出所', en: 'Hongqiao Police Station' } },
    { id: 'GZ-YX-003', district: 'GZ-YX', name: { zh: '东山派出所', en: 'Dongshan Police Station' } },
  ],
  terminals: [
    { id: 'GZ-YX-001-01', station: 'GZ-YX-001', type: 'id-card', serial: 'SN-UX-0101' },
    { id: 'GZ-YX-003-01', station: 'GZ-YX-003', type: 'id-card', serial: 'SN-UX-0301' },
  ],
};

let hub: HubProcess;
let sim: SimulatorProcess;
let browser: Browser;
let tmp: string;
const contexts: BrowserContext[] = [];
const pageErrors: string[] = [];

const poll = <V>(fn: () => V | Promise<V>, timeout = 20_000) => expect.poll(fn, { timeout, interval: 100 });

beforeAll(async () => {
  await ensureDashboardBuilt();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'kf-ux-more-'));
  writeFileSync(path.join(tmp, 'fleet.json'), JSON.stringify(FLEET));
  hub = await spawnHub({
    env: { KF_DASHBOARD_DIR: DASHBOARD_DIST, KF_ADMIN_PASSWORD: 'ux-more-admin-pass-1', KF_ALERT_START_GRACE_MS: '0', KF_ALERT_EVALUATE_MS: '300' },
  });
  sim = await spawnSimulator({ hubUrl: hub.mqttUrl, apiUrl: hub.url, token: hub.token, fleet: path.join(tmp, 'fleet.json'), provision: true, interval: 5 });
  // A peripheral alert opens a minute after the fault: the alert's card must count its age from the fault.
  const put = await hub.api('/api/v1/config/nodes/GZ', {
    method: 'PUT',
    json: { config: { alerts: { thresholds: { peripheralFaultMinutes: 1 } } }, expectedVersion: 0, reason: 'E2E: alert after a minute' },
  });
  expect(put.status).toBe(200);
  browser = await launchBrowser();
}, 240_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close().catch(() => {});
  await sim?.stop();
  await hub?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}, 60_000);

const GOOD_PASSWORD = 'violet harbour lantern 42';

/** A user made by the city admin, signed in through the page, past the forced password change. */
async function openAs(user: { username: string; role: string; nodeId: string | null }): Promise<Page> {
  const res = await hub.api('/api/v1/users', { method: 'POST', json: user });
  expect(res.status).toBe(201);
  const { password } = (await res.json()) as { password: string };
  const ctx = await newContext(browser, 'phone');
  contexts.push(ctx);
  const page = await ctx.newPage();
  page.setDefaultTimeout(30_000);
  page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
  await login(page, hub.url, { username: user.username, password });
  await page.waitForSelector('[data-testid="change-password"]');
  await page.locator('#new-password').fill(GOOD_PASSWORD);
  await page.locator('#new-password-again').fill(GOOD_PASSWORD);
  await page.getByRole('button', { name: '修改密码' }).click();
  await page.waitForSelector('[data-page="city"], [data-page="district"], [data-page="station"]');
  return page;
}

describe('issue 24 in Chromium, in Chinese', () => {
  it('a new user at the forced password change sees the rules first, is refused a weak password, then succeeds', async () => {
    const res = await hub.api('/api/v1/users', { method: 'POST', json: { username: 'zhangwei', role: 'city-admin', nodeId: null } });
    expect(res.status).toBe(201);
    const { password } = (await res.json()) as { password: string };
    const ctx = await newContext(browser, 'phone');
    contexts.push(ctx);
    const page = await ctx.newPage();
    page.setDefaultTimeout(30_000);
    page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
    await login(page, hub.url, { username: 'zhangwei', password });
    const form = page.locator('[data-testid="change-password"]');
    await form.waitFor();

    // Before typing anything: every rule the hub enforces, in Chinese.
    const rules = page.locator('[data-testid="password-rules"]');
    const text = (await rules.innerText()).replace(/\s+/g, ' ');
    for (const rule of ['至少 10 个字符', '控制字符', '全是空格', '不能包含用户名', '容易被猜到']) expect(text).toContain(rule);
    expect(await form.getByRole('alert').count()).toBe(0);
    await screenshot(page, 'ux-more-password-rules-phone');

    // A weak one (long enough, but a common pattern): the hub's refusal is shown, the form stays.
    await page.locator('#new-password').fill('1234567890');
    await page.locator('#new-password-again').fill('1234567890');
    await page.getByRole('button', { name: '修改密码' }).click();
    await poll(() => form.getByRole('alert').textContent()).toMatch(/失败：密码不符合要求.*：太容易被猜出$/);
    expect(await rules.isVisible()).toBe(true);

    // A good one goes through to the city page.
    await page.locator('#new-password').fill(GOOD_PASSWORD);
    await page.locator('#new-password-again').fill(GOOD_PASSWORD);
    await page.getByRole('button', { name: '修改密码' }).click();
    await page.waitForSelector('[data-page="city"]');
    expect(pageErrors).toEqual([]);
  }, 120_000);

  it('a technician on a phone sees, above the station cards, the station that cannot issue ID cards now', async () => {
    const page = await openAs({ username: 'yx-tech', role: 'technician', nodeId: 'GZ-YX' });
    await page.waitForSelector('[data-page="district"]');
    // The station's only ID-card terminal loses its card reader; the other station's still works.
    await sim.control('/terminals/GZ-YX-003-01/fault', { peripheral: 'idCardReader', code: 'E_NO_RESPONSE' });
    // 居民身份证申领 in the catalog (the "身份证办理"): it needs the card reader.
    expect(SERVICES['id-card-application'].name.zh).toBe('居民身份证申领');
    const row = page.locator('#services tr[data-service="id-card-application"]');
    await poll(() => row.locator('[data-station]').allTextContents(), 30_000).toEqual(['东山派出所']);
    expect(await row.locator('th').textContent()).toBe('居民身份证申领');
    expect(await page.locator('#services thead').textContent()).toContain('无法办理的派出所');
    // On the phone the table comes first: above the first station card.
    const table = await page.locator('#services').boundingBox();
    const firstCard = await page.locator('[data-page="district"] .overview-grid > :not(.overview-side)').first().boundingBox();
    expect(table && firstCard && table.y < firstCard.y).toBe(true);
    await screenshot(page, 'ux-more-district-services-phone');
    // It recovers: every station can offer it again.
    await sim.control('/terminals/GZ-YX-003-01/recover', { peripheral: 'idCardReader' });
    await poll(() => row.locator('td').last().textContent(), 30_000).toBe('各派出所均可办理');
    expect(pageErrors).toEqual([]);
  }, 120_000);

  it('a technician on a phone reads the fault on the alert card, is warned before resolving it, and adds a note after it closed itself', async () => {
    const page = await openAs({ username: 'yx-tech-alerts', role: 'technician', nodeId: 'GZ-YX' });
    await sim.control('/terminals/GZ-YX-001-01/fault', { peripheral: 'idCardReader', code: 'E_NO_RESPONSE' });
    await page.goto(`${hub.url}/alerts`);
    await page.waitForSelector('[data-page="alerts"]');
    const card = page.locator('[data-rule="peripheral-fault"][data-terminal="GZ-YX-001-01"]');
    await poll(() => card.count(), 120_000).toBe(1);
    const alertId = (await card.getAttribute('data-alert')) ?? '';

    // The peripheral, the agent's code and when the fault began.
    const fault = card.locator('[data-testid="alert-faults"] [data-peripheral="idCardReader"]');
    const faultText = await fault.innerText();
    expect(faultText).toContain('身份证读卡器');
    expect(faultText).toContain('E_NO_RESPONSE');
    expect(faultText).toContain('故障始于');
    // The alert opened a minute after the fault: its age counts from the fault (at least 1 min), not from the alert.
    const alert = (await (await hub.api(`/api/v1/alerts/${alertId}`)).json()) as { ageSeconds: number };
    expect(alert.ageSeconds).toBeLessThan(55);
    expect(await card.locator('[data-testid="alert-age"]').textContent()).toMatch(/^\d+ min$/);
    await screenshot(page, 'ux-more-alert-card-phone');

    // Resolving while the reader is still in fault: warned that it will open again.
    await card.getByRole('button', { name: '关闭', exact: true }).click();
    expect(await card.locator('[data-testid="alert-reopen-warning"]').textContent()).toContain('身份证读卡器 仍在故障中');
    await card.getByRole('button', { name: '关闭', exact: true }).first().click();

    // The reader recovers: the alert closes itself; a note can still be added to it.
    await sim.control('/terminals/GZ-YX-001-01/recover', { peripheral: 'idCardReader' });
    await page.locator('#queue select').selectOption('all');
    const closed = page.locator(`[data-alert="${alertId}"]`);
    await poll(() => closed.getAttribute('data-state'), 60_000).toBe('resolved');
    await closed.getByRole('button', { name: '添加备注' }).click();
    await closed.locator(`#alert-${alertId}-text`).fill('更换读卡器数据线');
    await closed.locator('form').getByRole('button', { name: '添加备注' }).click();
    await poll(async () => {
      const d = (await (await hub.api(`/api/v1/alerts/${alertId}`)).json()) as { history: { action: string; note: string | null }[] };
      return d.history.some((h) => h.action === 'note' && h.note === '更换读卡器数据线');
    }).toBe(true);
    expect(await closed.getByRole('alert').count()).toBe(0);
    expect(pageErrors).toEqual([]);
  }, 240_000);
});
