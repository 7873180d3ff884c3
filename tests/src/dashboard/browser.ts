/**
 * Real Chromium (Debian's package) driven by playwright-core, and the dashboard's static build.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const DASHBOARD_DIST = path.join(REPO_ROOT, 'dashboard', 'dist');
export const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts', 'dashboard');

export const SIZES = {
  phone: { width: 390, height: 844 },
  desk: { width: 1440, height: 900 },
} as const;
export type SizeName = keyof typeof SIZES;

/** Builds the dashboard once when there is no build to serve (a fresh checkout). */
export async function ensureDashboardBuilt(): Promise<void> {
  if (existsSync(path.join(DASHBOARD_DIST, 'index.html'))) return;
  await promisify(execFile)('pnpm', ['--filter', '@kiosk-fleet/dashboard', 'run', 'build'], { cwd: REPO_ROOT, timeout: 180_000 });
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.KF_CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
}

export async function newContext(
  browser: Browser,
  size: SizeName,
  locale: 'zh-CN' | 'en-US' = 'zh-CN',
  opts: { bypassCSP?: boolean } = {},
): Promise<BrowserContext> {
  return browser.newContext({
    ...(opts.bypassCSP ? { bypassCSP: true } : {}),
    viewport: SIZES[size],
    locale,
    // The browser's own zone differs from the bureau's on purpose: times must still read in Asia/Shanghai.
    timezoneId: 'UTC',
    deviceScaleFactor: 1,
    isMobile: size === 'phone',
    hasTouch: size === 'phone',
  });
}

export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

export type Login = { username: string; password: string } | { token: string };

/** Log in through the page's own forms: user name and password, or an API / admin token. */
export async function login(page: Page, origin: string, cred: Login): Promise<void> {
  await page.goto(`${origin}/`);
  await page.waitForURL(/\/login/);
  if ('token' in cred) {
    await page.locator('[data-testid="password-login"] button.link').click();
    await page.locator('#token').fill(cred.token);
  } else {
    await page.locator('#username').fill(cred.username);
    await page.locator('#password').fill(cred.password);
  }
  await page.locator('form button[type=submit]').click();
  await page.waitForSelector('[data-page="city"], [data-page="district"], [data-page="station"], [data-testid="change-password"]');
}

/**
 * Clicks a link and waits for the page it leads to. A page that is still loading its sections can move the link
 * between Playwright's checks and its click, which then lands on whatever took the link's place (a CI run lost 30 s
 * that way on the terminal page): when the address has not changed within a few seconds, click again.
 */
export async function follow(page: Page, link: Locator, to: RegExp): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await link.click();
    try {
      await page.waitForURL(to, { timeout: 5000 });
      return;
    } catch (e) {
      if (attempt === 3) throw new Error(`clicked ${String(link)} ${attempt} times, still at ${page.url()} (expected ${String(to)}): ${String(e)}`);
    }
  }
}
