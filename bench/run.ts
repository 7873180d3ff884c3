/**
 * `pnpm bench [scenario …]`: runs the scenarios (all, or the ones named), one after another, each in its own
 * process, then rewrites BENCHMARKS.md from the latest result of every scenario (bench/results/*.json) and the
 * hand-written analysis (bench/analysis.md).
 */
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BENCH_DIR, LOAD_CORE, ROOT } from './lib/proc.ts';
import { RESULTS_DIR, machine } from './lib/report.ts';
import { goalVerdict, renderMarkdown, type ScenarioResult } from './lib/stats.ts';
import { hasMosquitto } from './lib/brokers.ts';

/** In the order the issue lists them (cheapest and most telling first). */
export const SCENARIOS = ['ingest', 'connections', 'reconnect', 'config-push', 'api', 'offline', 'agent', 'storage', 'postgres', 'cluster', 'dashboard'] as const;
const SCENARIO_TIMEOUT_MS = 25 * 60 * 1000;

function available(): string[] {
  return SCENARIOS.filter((s) => fs.existsSync(path.join(BENCH_DIR, 'scenarios', `${s}.ts`)));
}

function preflight(): void {
  if (!hasMosquitto()) {
    process.stderr.write('bench: Mosquitto (the comparison broker) is not installed: run `apt-get install mosquitto` (Debian).\n');
  }
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
  } catch {
    process.stderr.write('bench: `taskset` (util-linux) is required to pin the hub and the load to separate cores.\n');
    process.exit(1);
  }
}

function runScenario(name: string, command: string): Promise<number> {
  return new Promise((resolve) => {
    // The scenario process itself drives load (and, for Mosquitto, is the counting subscriber): load core.
    const child = spawn('taskset', ['-c', String(LOAD_CORE), process.execPath, '--import', 'tsx', path.join(BENCH_DIR, 'scenarios', `${name}.ts`)], {
      cwd: ROOT,
      stdio: 'inherit',
      env: { ...process.env, BENCH_COMMAND: command },
    });
    const timer = setTimeout(() => {
      process.stderr.write(`bench: ${name} exceeded ${SCENARIO_TIMEOUT_MS / 60000} min; killing it\n`);
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }, SCENARIO_TIMEOUT_MS);
    const forward = () => child.kill('SIGTERM');
    process.once('SIGINT', forward);
    process.once('SIGTERM', forward);
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(code ?? (sig ? 1 : 0));
    });
  });
}

function loadResults(): ScenarioResult[] {
  if (!fs.existsSync(RESULTS_DIR)) return [];
  const all = fs
    .readdirSync(RESULTS_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(fs.readFileSync(path.join(RESULTS_DIR, f), 'utf8')) as ScenarioResult);
  const order = (s: string) => {
    const i = (SCENARIOS as readonly string[]).indexOf(s);
    return i < 0 ? 99 : i;
  };
  return all.sort((a, b) => order(a.scenario) - order(b.scenario));
}

function writeBenchmarksMd(command: string): void {
  const results = loadResults();
  const m = machine();
  const out: string[] = [
    '# Benchmarks',
    '',
    '<!-- Written by `pnpm bench` (bench/run.ts) from bench/results/*.json and bench/analysis.md. Do not edit by hand. -->',
    '',
    `Last written ${new Date().toISOString()} by \`${command}\`.`,
    '',
    `Machine: ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB memory, Node ${m.node}, ${m.kernel}.`,
    '',
    'How to read: each scenario runs the system under test (the hub, bare Aedes, Mosquitto or a raw SQLite writer) as its',
    'own process pinned to core 0 and the load generators as separate processes pinned to core 1 (`taskset`), over',
    '127.0.0.1 only, from several source addresses of 127.0.0.0/8. Every figure is also given as a ratio to a baseline',
    'measured in the same run, because this machine\'s absolute speed drifts. "load CPU %" is the load side\'s use of its',
    'core: near 100 % means the figure is bounded by the load generator, not the server.',
    '',
  ];
  const goals = results.flatMap((r) => r.goals.map((g) => ({ ...g, scenario: r.scenario })));
  if (goals.length) {
    out.push('## Goals', '', '| scenario | goal | target | measured | |', '| --- | --- | --- | ---: | --- |');
    for (const g of goals) out.push(`| ${g.scenario} | ${g.what} | ${g.target} | ${g.value} | ${goalVerdict(g, 'met', '**missed**')} |`);
    out.push('');
  }
  const analysis = path.join(BENCH_DIR, 'analysis.md');
  if (fs.existsSync(analysis)) out.push(fs.readFileSync(analysis, 'utf8').trim(), '');
  for (const r of results) {
    out.push(`## ${r.title}`, '');
    out.push(
      `Run ${r.date} (${r.durationSeconds} s) with \`${r.command}\`; ${r.machine.cores} cores, ${r.machine.memoryGiB} GiB, Node ${r.machine.node}. Machine during the run: load average ${r.machine.loadAverage.join(' / ')} at start${r.busy ? `, ${r.busy.loadAverageAtEnd.join(' / ')} at the end; all cores ${r.busy.machineCpuPercent} % busy on average (this benchmark and everything else running)` : ''}; busiest processes (lifetime CPU share) at start: ${r.machine.otherProcessesCpu}.`,
      '',
    );
    for (const t of r.tables) out.push(renderMarkdown(t), '');
    if (r.notes.length) out.push(...r.notes.map((n) => `- ${n}`), '');
  }
  fs.writeFileSync(path.join(ROOT, 'BENCHMARKS.md'), `${out.join('\n').trimEnd()}\n`);
  process.stdout.write(`\nbench: wrote BENCHMARKS.md (${results.length} scenarios)\n`);
}

const args = process.argv.slice(2);
const known = available();
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(`usage: pnpm bench [scenario …]\nscenarios: ${known.join(', ')}\nenv: BENCH_SCALE=0.2 for a short run\n`);
  process.exit(0);
}
if (args.includes('--report-only')) {
  writeBenchmarksMd('pnpm bench --report-only');
  process.exit(0);
}
const unknown = args.filter((a) => !known.includes(a));
if (unknown.length) {
  process.stderr.write(`bench: unknown scenario ${unknown.join(', ')}; known: ${known.join(', ')}\n`);
  process.exit(1);
}
preflight();
const chosen = args.length ? args : known;
const command = `pnpm bench${args.length ? ` ${args.join(' ')}` : ''}${process.env.BENCH_SCALE ? ` (BENCH_SCALE=${process.env.BENCH_SCALE})` : ''}`;
let failed = 0;
for (const s of chosen) {
  process.stdout.write(`\n=== ${s} ===\n`);
  const code = await runScenario(s, command);
  if (code !== 0) {
    failed++;
    process.stderr.write(`bench: ${s} failed (exit ${code})\n`);
  }
}
writeBenchmarksMd(command);
process.exit(failed ? 1 : 0);
