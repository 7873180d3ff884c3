/**
 * What every scenario records: the machine it ran on, what else was running, and its tables, as JSON in
 * bench/results/<scenario>.json, from which `pnpm bench` writes BENCHMARKS.md.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { BENCH_DIR } from './proc.ts';
import { goalVerdict, renderText, type Goal, type Machine, type ScenarioResult, type Table } from './stats.ts';

export const RESULTS_DIR = path.join(BENCH_DIR, 'results');

/** The busiest other processes right now (by CPU share since they started), so a noisy run is seen as such. */
function otherProcesses(): string {
  try {
    const out = execFileSync('ps', ['-eo', 'pcpu,comm', '--sort=-pcpu', '--no-headers'], { encoding: 'utf8' });
    return out
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .slice(0, 5)
      .map((l) => l.replace(/\s+/, '% '))
      .join(', ');
  } catch {
    return 'unknown';
  }
}

/** Busy and total CPU time of the whole machine so far (all cores, jiffies), from /proc/stat. */
export function systemCpu(): { busy: number; total: number } {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = (line[3] ?? 0) + (line[4] ?? 0);
    const total = line.reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

export function machine(): Machine {
  return {
    // the machine's cores, not this process's (a scenario runs pinned to the load core by taskset)
    cores: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100),
    otherProcessesCpu: otherProcesses(),
  };
}

export class Report {
  readonly tables: Table[] = [];
  readonly goals: Goal[] = [];
  readonly notes: string[] = [];
  private readonly started = Date.now();
  private readonly machineAtStart = machine();
  private readonly cpuAtStart = systemCpu();

  constructor(
    readonly scenario: string,
    readonly title: string,
  ) {}

  table(t: Table): void {
    this.tables.push(t);
    process.stdout.write(`${renderText(t)}\n`);
  }

  goal(g: Goal): void {
    this.goals.push(g);
    process.stdout.write(`goal: ${g.what} — target ${g.target}, measured ${g.value} — ${goalVerdict(g, 'MET', 'MISSED')}\n`);
  }

  note(s: string): void {
    this.notes.push(s);
    process.stdout.write(`note: ${s}\n`);
  }

  /** How busy the whole machine was during the scenario (ours and everyone else's), and the load at the end. */
  private busy(): NonNullable<ScenarioResult['busy']> {
    const now = systemCpu();
    const share = now.total > this.cpuAtStart.total ? (now.busy - this.cpuAtStart.busy) / (now.total - this.cpuAtStart.total) : 0;
    const end = machine();
    return { machineCpuPercent: Math.round(share * 1000) / 10, loadAverageAtEnd: end.loadAverage, busiestAtEnd: end.otherProcessesCpu };
  }

  save(): ScenarioResult {
    const result: ScenarioResult = {
      scenario: this.scenario,
      title: this.title,
      date: new Date(this.started).toISOString(),
      command: process.env.BENCH_COMMAND ?? `pnpm bench ${this.scenario}`,
      durationSeconds: Math.round((Date.now() - this.started) / 1000),
      machine: this.machineAtStart,
      busy: this.busy(),
      tables: this.tables,
      goals: this.goals,
      notes: this.notes,
    };
    fs.mkdirSync(RESULTS_DIR, { recursive: true });
    fs.writeFileSync(path.join(RESULTS_DIR, `${this.scenario}.json`), `${JSON.stringify(result, null, 2)}\n`);
    return result;
  }
}

/** Scale knob for development runs: BENCH_SCALE=0.1 shortens durations and counts. */
export function scale(): number {
  const s = Number(process.env.BENCH_SCALE ?? '1');
  return Number.isFinite(s) && s > 0 ? s : 1;
}
