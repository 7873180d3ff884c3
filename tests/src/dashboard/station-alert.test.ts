/**
 * Issue 24, "Alert cards": the station alert (a citizen service no terminal of a station can offer now) names the
 * station and the service, and has the self-test button too — pressed, it tests each of the station's terminals
 * that should offer the service and shows their results. Real Chromium against a real hub process and the fleet
 * simulator, as a district technician on a phone, in Chinese.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SERVICES } from '@kiosk-fleet/protocol';
import { spawnHub, type HubProcess } from '../helpers/hub.ts';
import { spawnSimulator, type SimulatorProcess } from '../helpers/agent.ts';
import { DASHBOARD_DIST, ensureDashboardBuilt, launchBrowser, login, newContext, screenshot } from './browser.ts';

const FLEET = {
  city: { id: 'GZ', name: { zh: '广州市公安局', en: 'Guangzhou Public Security Bureau' } },
  districts: [
    { id: 'GZ-YX', name: { zh: '越秀区分局', en: 'Yuexiu District Branch' } },
    { id: 'GZ-HZ', name: { zh: '海珠区分局', en: 'Haizhu District Branch' } },
  ],
  stations: [
    { id: 'GZ-YX-001', district: 'GZ-YX', name: { zh: '洪桥派出所', en: 'Hongqiao Police Station' } },
    { id: 'GZ-YX-003', district: 'GZ-YX', name: { zh: '东山派出所', en: 'Dongshan Police Station' } },
    { id: 'GZ-HZ-001', district: 'GZ-HZ', name: { zh: '赤岗派出所', en: 'Chigang Police Station' } },
  ],
  terminals: [
    { id: 'GZ-YX-001-01', station: 'GZ-YX-001', type: 'id-card', serial: 'SN-SA-0101' },
    // 东山派出所: two ID-card machines (the ones that should issue ID cards) and a police kiosk that offers no ID card service.
    { id: 'GZ-YX-003-01', station: 'GZ-YX-003', type: 'id-card', serial: 'SN-SA-0301' },
    { id: 'GZ-YX-003-02', station: 'GZ-YX-003', type: 'id-card', serial: 'SN-SA-0302' },
    { id: 'GZ-YX-003-03', station: 'GZ-YX-003', type: 'police-multi', serial: 'SN-SA-0303' },
    { id: 'GZ-HZ-001-01', station: 'GZ-HZ-001', type: 'id-card', serial: 'SN-SA-0401' },
  ],
};
const ID_CARD_TERMINALS = ['GZ-YX-003-01', 'GZ-YX-003-02'];

let hub: HubProcess;
let sim: SimulatorProcess;
let browser: Browser;
let tmp: string;
const contexts: BrowserContext[] = [];
const pageErrors: string[] = [];

const poll = <V>(fn: () => V | Promise<V>, timeout = 20_000) => expect.poll(fn, { timeout, interval: 100 });

beforeAll(async () => {
  await ensureDashboardBuilt();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'kf-station-alert-'));
  writeFileSync(path.join(tmp, 'fleet.json'), JSON.stringify(FLEET));
  hub = await spawnHub({
    env: { KF_DASHBOARD_DIR: DASHBOARD_DIST, KF_ADMIN_PASSWORD: 'station-alert-admin-1', KF_ALERT_START_GRACE_MS: '0', KF_ALERT_EVALUATE_MS: '300' },
  });
  sim = await spawnSimulator({ hubUrl: hub.mqttUrl, apiUrl: hub.url, token: hub.token, fleet: path.join(tmp, 'fleet.json'), provision: true, interval: 5 });
  // Every terminal has reported once (its services known) before anything breaks: a station being set up is no outage.
  for (const until = Date.now() + 60_000; ; ) {
    const { items } = (await (await hub.api('/api/v1/terminals?presence=online')).json()) as { items: { lastSeenAt: string | null }[] };
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

afterEach(async (ctx) => {
  if (ctx.task.result?.state !== 'fail') return;
  const shown: string[] = [];
  for (const c of contexts) {
    for (const p of c.pages()) {
      await screenshot(p, 'station-alert-failed').catch(() => {});
      shown.push(`--- ${p.url()}\n${(await p.locator('body').innerText({ timeout: 2000 }).catch(() => '(no text)')).slice(0, 1500)}`);
    }
  }
  console.error(`[station-alert] "${ctx.task.name}" failed; open pages:\n${shown.join('\n')}\nerrors: ${pageErrors.join('\n')}`);
});

/** A user made by the city admin, signed in on a phone in Chinese, past the forced password change. */
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
  await page.locator('#new-password').fill('station alert lantern 42');
  await page.locator('#new-password-again').fill('station alert lantern 42');
  await page.getByRole('button', { name: '修改密码' }).click();
  await page.waitForSelector('[data-page="city"], [data-page="district"], [data-page="station"]');
  return page;
}

describe('the station alert card, in Chromium, in Chinese', () => {
  it("a district technician on a phone reads which station cannot offer which service, self-tests the station's ID-card machines and sees their results", async () => {
    const page = await openAs({ username: 'yx-tech-station', role: 'technician', nodeId: 'GZ-YX' });
    expect(page.viewportSize()).toEqual({ width: 390, height: 844 });
    expect(await page.locator('html').getAttribute('lang')).toMatch(/^zh/);
    // Both ID-card machines of 东山派出所 lose their card reader: the station can no longer issue ID cards.
    for (const id of ID_CARD_TERMINALS) await sim.control(`/terminals/${id}/fault`, { peripheral: 'idCardReader', code: 'E_NO_RESPONSE' });
    await page.goto(`${hub.url}/alerts`);
    await page.waitForSelector('[data-page="alerts"]');
    const card = page.locator('.alert-item[data-rule="station-service-lost"]');
    await poll(() => card.count(), 60_000).toBe(1);

    // The station by its Chinese name and the services by theirs, not ids or the hub's English title.
    const line = card.locator('[data-testid="alert-station-services"]');
    await poll(() => line.textContent()).toContain(SERVICES['id-card-collection'].name.zh);
    const text = (await line.textContent()) ?? '';
    expect(text).toContain('东山派出所');
    expect(text).toContain(SERVICES['id-card-application'].name.zh); // 居民身份证申领
    expect(text).not.toContain('GZ-YX-003');
    await screenshot(page, 'station-alert-card-phone');

    // Self-test: each ID-card machine of the station is tested (not the police kiosk), and each result shows.
    await card.getByRole('button', { name: '执行自检' }).click();
    const tests = card.locator('[data-testid="alert-self-tests"] li');
    await poll(async () => (await tests.evaluateAll((ls) => ls.map((l) => l.getAttribute('data-terminal')))).sort(), 30_000).toEqual(ID_CARD_TERMINALS);
    for (const id of ID_CARD_TERMINALS) {
      const result = card.locator(`[data-testid="alert-self-tests"] li[data-terminal="${id}"]`);
      await poll(() => result.getAttribute('data-status'), 60_000).toBe('ok');
      // The terminal's own answer: the reader fails.
      await poll(() => result.textContent()).toContain('未通过');
      expect(await result.textContent()).toContain('身份证读卡器');
      expect(await result.textContent()).toContain(id);
    }
    await screenshot(page, 'station-alert-self-test-phone');
    expect(await card.getByRole('alert').count()).toBe(0);

    for (const id of ID_CARD_TERMINALS) await sim.control(`/terminals/${id}/recover`, { peripheral: 'idCardReader' });
    expect(pageErrors).toEqual([]);
  }, 240_000);
});
