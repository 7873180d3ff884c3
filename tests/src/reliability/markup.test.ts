/**
 * Markup and script in names: districts, stations, terminal serials and a user's display name carrying HTML and
 * script payloads are imported through the real API, then every dashboard page that shows them is opened in real
 * Chromium. Nothing may run (each payload calls `__xss()`, which counts) and the text must show literally.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnHub, type HubProcess } from '../helpers/hub.ts';
import { DASHBOARD_DIST, ensureDashboardBuilt, launchBrowser, login, newContext } from '../dashboard/browser.ts';

const PASSWORD = 'reliability-markup-pw-1';
const P = {
  img: '<img src=x onerror=__xss()>',
  script: '<script>__xss()</script>',
  svg: '"><svg onload=__xss()>',
  attr: "' onmouseover='__xss()' x='",
  js: 'javascript:__xss()',
} as const;

const FLEET = {
  city: { id: 'GZ', name: { zh: '广州', en: 'Guangzhou' } },
  districts: [{ id: 'GZ-XS', name: { zh: `分局${P.img}`, en: `Branch ${P.script}` } }],
  stations: [{ id: 'GZ-XS-001', district: 'GZ-XS', name: { zh: `派出所${P.svg}`, en: `Station ${P.attr}` } }],
  terminals: [
    { id: 'GZ-XS-001-01', station: 'GZ-XS-001', type: 'id-card', serial: `SN${P.img}` },
    { id: 'GZ-XS-001-02', station: 'GZ-XS-001', type: 'weijingwu', serial: P.js },
  ],
};

/** What the page's global scope holds for the probe (the tests' tsconfig has no DOM lib). */
interface Probe {
  __xssHits: number;
  __xss: () => void;
  document: { body: { insertAdjacentHTML(where: string, html: string): void } };
}

let hub: HubProcess;
let browser: Browser;
let page: Page;
const dialogs: string[] = [];
const pageErrors: string[] = [];

beforeAll(async () => {
  await ensureDashboardBuilt();
  hub = await spawnHub({ env: { KF_DASHBOARD_DIR: DASHBOARD_DIST, KF_ADMIN_PASSWORD: PASSWORD } });
  await hub.importFleet(FLEET);
  const u = await hub.api('/api/v1/users', { method: 'POST', json: { username: 'markup-tech', displayName: `Tech ${P.svg}${P.img}`, role: 'technician', nodeId: 'GZ-XS' } });
  expect(u.status).toBe(201);
  browser = await launchBrowser();
  // The hub's Content-Security-Policy would stop an inline payload even if the dashboard rendered it as markup: this
  // test checks the dashboard's own escaping, the first line of defence, so it runs without the CSP (which
  // tests/src/dashboard/csp.test.ts checks on its own). The control below proves a payload that does reach the DOM as
  // markup runs here.
  const ctx = await newContext(browser, 'desk', 'en-US', { bypassCSP: true });
  // Every payload calls this; a call means a payload ran.
  await ctx.addInitScript(() => {
    (globalThis as unknown as Probe).__xssHits = 0;
    (globalThis as unknown as Probe).__xss = () => {
      (globalThis as unknown as Probe).__xssHits++;
    };
  });
  page = await ctx.newPage();
  page.setDefaultTimeout(20_000);
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await login(page, hub.url, { username: 'admin', password: PASSWORD });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await hub?.stop();
});

async function visit(path: string, mustShow: string[]): Promise<void> {
  await page.goto(`${hub.url}${path}`);
  for (const text of mustShow) await page.getByText(text, { exact: false }).first().waitFor();
  // Let late renders (live updates, lazy parts) happen too.
  await page.waitForTimeout(500);
  await page.mouse.move(200, 300);
  await page.mouse.move(600, 400);
}

describe('markup and script in names', () => {
  it('show as text on the city, district, station, terminal, terminal-list and users pages, and never run', async () => {
    await visit('/', ['Branch']);
    await visit('/nodes/GZ-XS', ['Station']);
    await visit('/nodes/GZ-XS-001', ['GZ-XS-001-01']);
    await visit('/terminals/GZ-XS-001-01', ['GZ-XS-001-01']);
    await visit('/terminals', ['GZ-XS-001-02']);
    await visit('/users', ['markup-tech']);
    expect(await page.evaluate(() => (globalThis as unknown as Probe).__xssHits)).toBe(0);
    expect(dialogs).toEqual([]);
    // No element the payloads would have created exists anywhere.
    expect(await page.locator('img[src="x"], svg[onload]').count()).toBe(0);
  });

  it('the payloads are shown literally, as the operator typed them', async () => {
    await visit('/nodes/GZ-XS', ['Station']);
    const text = await page.locator('body').innerText();
    expect(text).toContain(`Branch ${P.script}`);
    await visit('/users', ['markup-tech']);
    expect(await page.locator('body').innerText()).toContain(`Tech ${P.svg}${P.img}`);
    expect(await page.evaluate(() => (globalThis as unknown as Probe).__xssHits)).toBe(0);
    expect(pageErrors).toEqual([]);
  });

  it('the detector works: the same payload, inserted as HTML, does run', async () => {
    await page.evaluate((html) => (globalThis as unknown as Probe).document.body.insertAdjacentHTML('beforeend', html), P.img);
    await expect.poll(() => page.evaluate(() => (globalThis as unknown as Probe).__xssHits), { timeout: 5000 }).toBe(1);
  });
});
