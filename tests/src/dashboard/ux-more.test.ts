/**
 * Issue 24, "Makes the user's question hard to answer": the forced password change shows the hub's rules before
 * the first try. Real Chromium against a real hub process, in Chinese.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnHub, type HubProcess } from '../helpers/hub.ts';
import { DASHBOARD_DIST, ensureDashboardBuilt, launchBrowser, login, newContext, screenshot } from './browser.ts';

let hub: HubProcess;
let browser: Browser;
let tmp: string;
const contexts: BrowserContext[] = [];
const pageErrors: string[] = [];

const poll = <V>(fn: () => V | Promise<V>, timeout = 20_000) => expect.poll(fn, { timeout, interval: 100 });

beforeAll(async () => {
  await ensureDashboardBuilt();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'kf-ux-more-'));
  hub = await spawnHub({ env: { KF_DASHBOARD_DIR: DASHBOARD_DIST, KF_ADMIN_PASSWORD: 'ux-more-admin-pass-1' } });
  browser = await launchBrowser();
}, 240_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close().catch(() => {});
  await hub?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}, 60_000);

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
    await poll(() => form.getByRole('alert').textContent()).toMatch(/失败：.*easy to guess/);
    expect(await rules.isVisible()).toBe(true);

    // A good one goes through to the city page.
    await page.locator('#new-password').fill('violet harbour lantern 42');
    await page.locator('#new-password-again').fill('violet harbour lantern 42');
    await page.getByRole('button', { name: '修改密码' }).click();
    await page.waitForSelector('[data-page="city"]');
    expect(pageErrors).toEqual([]);
  }, 120_000);
});
