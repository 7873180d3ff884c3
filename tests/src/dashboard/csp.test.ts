/**
 * Issue 20, item 13b: every HTTP answer carries the security headers, and the dashboard works under its
 * Content-Security-Policy: each page (charts included) loads in real Chromium without one CSP violation, while a
 * violation made on purpose is caught (so the check cannot pass by hearing nothing).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { EXAMPLES, topicFor } from '@kiosk-fleet/protocol';
import { spawnHub, type HubProcess } from '../helpers/hub.ts';
import { DASHBOARD_DIST, ensureDashboardBuilt, launchBrowser, login, newContext } from './browser.ts';

const ADMIN = { username: 'admin', password: 'csp-admin-password-1' };
const T = 'GZ-YX-001-01';
let hub: HubProcess;
let browser: Browser;
let tmp: string;
let client: mqtt.MqttClient | null = null;

beforeAll(async () => {
  await ensureDashboardBuilt();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'kf-csp-'));
  hub = await spawnHub({ env: { KF_DASHBOARD_DIR: DASHBOARD_DIST, KF_ADMIN_PASSWORD: ADMIN.password } });
  const { terminals } = await hub.importFleet({
    city: { id: 'GZ', name: { zh: '广州市公安局', en: 'Guangzhou' } },
    districts: [{ id: 'GZ-YX', name: { zh: '越秀区分局', en: 'Yuexiu' } }],
    stations: [{ id: 'GZ-YX-001', district: 'GZ-YX', name: { zh: '洪桥派出所', en: 'Hongqiao' } }],
    terminals: [{ id: T, station: 'GZ-YX-001', type: 'id-card', serial: 'SN-CSP-01' }],
  });
  // A terminal that reports, so the terminal page draws its charts (uPlot).
  client = await mqtt.connectAsync(hub.mqttUrl, { clientId: T, username: T, password: terminals.created[0]!.secret, protocolVersion: 4, reconnectPeriod: 0 });
  await client.publishAsync(topicFor(T, 'presence'), JSON.stringify({ ...EXAMPLES.presence, bootId: 'bootCSP001', connSeq: 1, ts: new Date().toISOString() }), { qos: 1, retain: true });
  for (let seq = 1; seq <= 3; seq++) {
    const ts = new Date(Date.now() - (3 - seq) * 60_000).toISOString();
    await client.publishAsync(topicFor(T, 'telemetry'), JSON.stringify({ ...EXAMPLES.telemetry, epoch: 'epochCSP01', seq, ts }), { qos: 1 });
  }
  browser = await launchBrowser();
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await client?.endAsync();
  await hub?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('every answer carries the security headers', async () => {
  const answers = [
    await fetch(`${hub.url}/`),
    await fetch(`${hub.url}/terminals/${T}`),
    await fetch(`${hub.url}/api/v1/health`),
    await fetch(`${hub.url}/api/v1/terminals`),
    await hub.api('/api/v1/terminals'),
    await fetch(`${hub.url}/api/v1/nope`),
    await fetch(`${hub.url}/metrics`),
    await hub.api('/api/v1/releases'),
  ];
  for (const res of answers) {
    const where = `${res.url} ${res.status}`;
    expect(res.headers.get('x-content-type-options'), where).toBe('nosniff');
    expect(res.headers.get('x-frame-options'), where).toBe('DENY');
    expect(res.headers.get('referrer-policy'), where).toBe('no-referrer');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp, where).toContain("frame-ancestors 'none'");
    expect(csp, where).toContain("default-src 'self'");
    expect(csp, where).toContain("script-src 'self'");
    expect(csp, where).not.toContain('unsafe-inline');
    await res.body?.cancel();
  }
});

test('the dashboard shows every page under its CSP without a violation', async () => {
  const ctx = await newContext(browser, 'desk', 'en-US');
  // Collected in the page (securitypolicyviolation) and from the console (Chromium's "Refused to ..." lines).
  await ctx.addInitScript(`window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));`);
  const page: Page = await ctx.newPage();
  page.setDefaultTimeout(30_000);
  const consoleCsp: string[] = [];
  const errors: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) consoleCsp.push(`${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`${page.url()}: ${e.message}`));
  const violations = async () => [...((await page.evaluate<string[] | undefined>('window.__csp')) ?? []), ...consoleCsp];

  await login(page, hub.url, ADMIN);
  const pages: [string, string][] = [
    ['/', 'city'],
    ['/nodes/GZ-YX', 'district'],
    ['/nodes/GZ-YX-001', 'station'],
    ['/terminals', 'terminals'],
    [`/terminals/${T}`, 'terminal'],
    ['/alerts', 'alerts'],
    ['/placement', 'placement'],
    ['/config', 'config'],
    ['/releases', 'releases'],
    ['/users', 'users'],
  ];
  for (const [url, name] of pages) {
    await page.goto(`${hub.url}${url}`);
    await page.waitForSelector(`[data-page="${name}"]`);
    if (name === 'terminal') await page.waitForSelector('figure.chart canvas');
    // Its sections have loaded (the live stream keeps the network busy, so no network-idle wait).
    // (A locator, not waitForFunction: a string predicate is run with eval in the page, itself a CSP violation.)
    await page.locator('p.muted[role="status"]').first().waitFor({ state: 'detached', timeout: 15_000 }).catch(() => undefined);
    expect(await violations(), url).toEqual([]);
  }
  expect(errors).toEqual([]);

  // The collector hears a violation when there is one: an inline style attribute is refused.
  await page.evaluate(`document.body.insertAdjacentHTML('beforeend', '<div id="csp-probe" style="color: red"></div>')`);
  await expect.poll(async () => (await violations()).join('\n'), { timeout: 10_000 }).toMatch(/style-src/);
  await ctx.close();
}, 180_000);
