/**
 * The dashboard reads times in the hub's zone (KF_TIMEZONE), not in a zone built into it: a hub configured for
 * Europe/Berlin, a browser in UTC, and the terminal page's "since" reads Berlin's clock.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawnAgent, type AgentProcess } from '../helpers/agent.ts';
import { spawnHub, type HubProcess } from '../helpers/hub.ts';
import { DASHBOARD_DIST, ensureDashboardBuilt, launchBrowser, login, newContext } from './browser.ts';

const T = 'GZ-YX-001-01';
const ADMIN = { username: 'admin', password: 'tz-admin-password-1' };
let hub: HubProcess;
let agent: AgentProcess;
let browser: Browser;

beforeAll(async () => {
  await ensureDashboardBuilt();
  hub = await spawnHub({ env: { KF_TIMEZONE: 'Europe/Berlin', KF_DASHBOARD_DIR: DASHBOARD_DIST, KF_ADMIN_PASSWORD: ADMIN.password } });
  const imported = await hub.importFleet({
    city: { id: 'GZ', name: { zh: '广州', en: 'Guangzhou' } },
    districts: [{ id: 'GZ-YX', name: { zh: '越秀', en: 'Yuexiu' } }],
    stations: [{ id: 'GZ-YX-001', district: 'GZ-YX', name: { zh: '洪桥', en: 'Hongqiao' } }],
    terminals: [{ id: T, station: 'GZ-YX-001', type: 'id-card', serial: 'SN-TZ-1' }],
  });
  agent = await spawnAgent({ hubUrl: hub.mqttUrl, terminalId: T, secret: imported.terminals.created[0]!.secret });
  browser = await launchBrowser();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await agent?.stop();
  await hub?.stop();
});

it('shows times in the zone the hub is configured for (Europe/Berlin), in a browser running in UTC', async () => {
  const health = (await (await fetch(`${hub.url}/api/v1/health`)).json()) as { timeZone: string };
  expect(health.timeZone).toBe('Europe/Berlin');
  const ctx = await newContext(browser, 'desk', 'en-US');
  const page: Page = await ctx.newPage();
  page.setDefaultTimeout(30_000);
  await login(page, hub.url, ADMIN);
  await page.goto(`${hub.url}/terminals/${T}`);
  const detail = (await (await hub.api(`/api/v1/terminals/${T}`)).json()) as { presence: { since: string } };
  const at = (timeZone: string) =>
    new Intl.DateTimeFormat('en', { timeZone, hourCycle: 'h23', hour: '2-digit', minute: '2-digit', second: '2-digit' }).format(new Date(detail.presence.since));
  // Berlin and Shanghai are 6 or 7 hours apart: the two readings can never be the same text
  await expect.poll(() => page.locator('[data-testid="presence"]').textContent(), { timeout: 30_000, interval: 200 }).toContain(at('Europe/Berlin'));
  expect(await page.locator('[data-testid="presence"]').textContent()).not.toContain(at('Asia/Shanghai'));
  await ctx.close();
}, 90_000);
