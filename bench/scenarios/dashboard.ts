/**
 * Dashboard: in Chromium (Debian's, driven by playwright-core), the city page of the reference fleet (923
 * terminals connected and reporting): time from navigation until its figures are on screen (the online count shows
 * the fleet), and the script bytes transferred. Cold loads each in a fresh browser context (empty cache).
 * Baseline in the same run: the same browser loading a static page with the same figure from a bare Node HTTP server
 * (the navigation floor of this browser on this machine).
 *
 * Goal (issue 10): under 1 s and under 200 KB of script (gzipped).
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { chromium, type Browser } from 'playwright-core';
import { Load } from '../lib/load.ts';
import { tmpDir } from '../lib/brokers.ts';
import { ADMIN_TOKEN, hubAvailable, registerTerminals, startHub } from '../lib/hub.ts';
import { referenceFleet } from '../lib/fleet.ts';
import { ROOT, hardTimeout, sleep } from '../lib/proc.ts';
import { Report } from '../lib/report.ts';
import { fmt, ratio } from '../lib/stats.ts';

const RUNS = 5;
const CHROMIUM = process.env.KF_CHROMIUM ?? '/usr/bin/chromium';

hardTimeout(10 * 60 * 1000, 'dashboard');
const report = new Report('dashboard', 'Dashboard city page (reference fleet, 923 terminals)');

/** Builds the dashboard into a temporary directory (never over dashboard/dist); falls back to dashboard/dist. */
function build(): { dir: string; built: boolean } {
  const out = tmpDir('dashboard-dist');
  try {
    execFileSync('pnpm', ['--filter', '@kiosk-fleet/dashboard', 'exec', 'vite', 'build', '--outDir', out, '--emptyOutDir', '--logLevel', 'warn'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'], timeout: 180_000 });
    return { dir: out, built: true };
  } catch (err) {
    report.note(`dashboard build failed (${(err as Error).message.split('\n')[0]}); measured the existing dashboard/dist`);
    fs.rmSync(out, { recursive: true, force: true });
    return { dir: path.join(ROOT, 'dashboard/dist'), built: false };
  }
}

interface Load1 {
  ms: number;
  scriptTransferred: number;
  scripts: number;
}

/** One cold load: fresh context, navigate, wait until `ready` holds in the page; script bytes from CDP. */
async function coldLoad(browser: Browser, url: string, ready: string, init?: string): Promise<Load1> {
  const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'zh-CN' });
  try {
    if (init) await ctx.addInitScript(init);
    const page = await ctx.newPage();
    const cdp = await ctx.newCDPSession(page);
    await cdp.send('Network.enable');
    const types = new Map<string, string>();
    let scriptBytes = 0;
    let scripts = 0;
    cdp.on('Network.responseReceived', (e: { requestId: string; type: string }) => types.set(e.requestId, e.type));
    cdp.on('Network.loadingFinished', (e: { requestId: string; encodedDataLength: number }) => {
      if (types.get(e.requestId) === 'Script') {
        scriptBytes += e.encodedDataLength;
        scripts++;
      }
    });
    const t0 = performance.now();
    await page.goto(url, { waitUntil: 'commit', timeout: 30000 });
    await page.waitForFunction(ready, undefined, { timeout: 30000, polling: 'raf' });
    const ms = performance.now() - t0;
    await sleep(300); // lazily loaded chunks still count as the page's script
    return { ms, scriptTransferred: scriptBytes, scripts };
  } finally {
    await ctx.close();
  }
}

function gzipSizes(dir: string): { raw: number; gz: number; files: number } {
  let raw = 0;
  let gz = 0;
  let files = 0;
  const walk = (d: string) => {
    for (const f of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, f.name);
      if (f.isDirectory()) walk(p);
      else if (f.name.endsWith('.js')) {
        const b = fs.readFileSync(p);
        raw += b.length;
        gz += zlib.gzipSync(b, { level: 9 }).length;
        files++;
      }
    }
  };
  walk(dir);
  return { raw, gz, files };
}

if (!hubAvailable() || !fs.existsSync(CHROMIUM)) {
  report.note(`hub or ${CHROMIUM} missing: skipped`);
  report.save();
  process.exit(0);
}

const { dir: distDir, built } = build();
const js = gzipSizes(distDir);
const hub = await startHub({ env: { KF_DASHBOARD_DIR: distDir } });
let load: Load | null = null;
const floor = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end('<!doctype html><html><body><dl class="counts"><div class="c-online"><dt>在线</dt><dd>923</dd></div></dl></body></html>');
});
let browser: Browser | null = null;
const rows: Array<{ what: string; loads: Load1[] }> = [];
try {
  const creds = await registerTerminals(hub, 923, referenceFleet());
  load = await Load.start({
    port: hub.mqttPort,
    terminals: creds,
    processes: 4,
    keepalive: 60,
    presence: true,
    subscribeConfig: true,
    connectConcurrency: 50,
    connectTimeoutMs: 30000,
    readyTimeoutMs: 120000,
  });
  await load.run({ mode: 'flood', window: 1, durationMs: 20000, warmupMs: 0, maxMessages: creds.length });
  await sleep(1000);
  await new Promise<void>((r) => floor.listen(0, '127.0.0.1', r));
  const floorUrl = `http://127.0.0.1:${(floor.address() as { port: number }).port}/`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
  const readyCity = `(() => { const dd = document.querySelector('[data-page="city"] .counts .c-online dd'); return !!dd && Number(dd.textContent) >= ${creds.length}; })()`;
  const auth = `sessionStorage.setItem('kf.auth', ${JSON.stringify(JSON.stringify({ kind: 'token', token: ADMIN_TOKEN }))});`;
  // One untimed load first: Chromium's own first-start work is not the dashboard's.
  await coldLoad(browser, floorUrl, `!!document.querySelector('.counts dd')`);
  for (const [what, url, ready, init] of [
    ['static page, bare Node server (baseline)', floorUrl, `!!document.querySelector('.counts dd')`, undefined],
    ['dashboard city page', `http://127.0.0.1:${hub.httpPort}/`, readyCity, auth],
  ] as const) {
    const loads: Load1[] = [];
    for (let i = 0; i < RUNS; i++) loads.push(await coldLoad(browser, url, ready, init));
    rows.push({ what, loads });
  }
} finally {
  await browser?.close();
  floor.close();
  await load?.close('clean');
  await hub.stop();
  if (built) fs.rmSync(distDir, { recursive: true, force: true });
}

const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const base = rows[0];
report.table({
  title: `Cold loads in Chromium (headless, 1440×900, fresh context each), ${RUNS} each`,
  columns: ['page', 'figures on screen, median ms', 'max ms', 'vs baseline', 'scripts', 'script bytes transferred'],
  rows: rows.map((r) => {
    const m = med(r.loads.map((l) => l.ms));
    const bytes = med(r.loads.map((l) => l.scriptTransferred));
    return [r.what, fmt(m), fmt(Math.max(...r.loads.map((l) => l.ms))), ratio(m, base ? med(base.loads.map((l) => l.ms)) : NaN), fmt(med(r.loads.map((l) => l.scripts))), `${fmt(bytes / 1024, 1)} KB`];
  }),
  notes: [
    'figures on screen: from navigation start until the city page\'s online count shows every terminal (the token is already in the session, as after a login).',
    `build: ${js.files} JS files, ${fmt(js.raw / 1024, 1)} KB, ${fmt(js.gz / 1024, 1)} KB gzipped (level 9) — ${built ? 'built from the working tree for this run' : 'the existing dashboard/dist'}.`,
    'script bytes transferred: what Chromium received for scripts (CDP encodedDataLength), headers included; equal to the raw size when the hub does not compress.',
  ],
});
const d = rows.find((r) => r.what.startsWith('dashboard'));
if (d) {
  const m = med(d.loads.map((l) => l.ms));
  const bytes = med(d.loads.map((l) => l.scriptTransferred));
  report.goal({ what: 'city page figures on screen (cold)', target: '< 1 s', value: `${fmt(m)} ms`, met: m < 1000 });
  report.goal({ what: 'script transferred', target: '< 200 KB gzipped', value: `${fmt(bytes / 1024, 1)} KB transferred (${fmt(js.gz / 1024, 1)} KB gzipped)`, met: bytes < 200 * 1024 });
}
report.save();
process.exit(0);
