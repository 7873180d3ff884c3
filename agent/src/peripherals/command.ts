/**
 * `command`: runs the vendor's diagnostic program (argv, no shell) with a timeout.
 *
 * Its exit code and a JSON object on stdout (`{"status","code","message","reads","failedReads"}`, every field
 * optional) give the status. A program that hangs is killed with its whole process group (a wrapper script's
 * children would otherwise hold the pipe open) and is a fault; one that crashes is a fault; one that prints
 * something other than that JSON is `unknown` when it exits 0 (we cannot tell) and a fault otherwise.
 */
import { spawn } from 'node:child_process';
import * as z from 'zod';
import { peripheralStatus, type PeripheralSample } from '@kiosk-fleet/protocol';
import { safeCode, safeText, type PeripheralDriver } from './driver.ts';

const MAX_OUTPUT = 64 * 1024;

const reportSchema = z.object({
  status: peripheralStatus.optional(),
  code: z.string().optional(),
  message: z.string().optional(),
  reads: z.int().min(0).optional(),
  failedReads: z.int().min(0).optional(),
});

export interface CommandRun {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  spawnError?: string;
}

/** Run argv with a timeout; never rejects. Used by this driver and by the restart-app/reboot commands. */
export function runCommand(argv: readonly string[], timeoutMs: number): Promise<CommandRun> {
  return new Promise((resolve) => {
    const [file, ...args] = argv;
    if (!file) {
      resolve({ exitCode: null, signal: null, stdout: '', stderr: '', timedOut: false, spawnError: 'empty command' });
      return;
    }
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let settled = false;
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const finish = (run: CommandRun): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.stdout?.destroy();
      child.stderr?.destroy();
      resolve(run);
    };
    const killGroup = (): void => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, timeoutMs);
    child.stdout?.on('data', (d: Buffer) => {
      if (stdout.length < MAX_OUTPUT) stdout += d.toString('utf8');
    });
    child.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < MAX_OUTPUT) stderr += d.toString('utf8');
    });
    child.on('error', (err) => finish({ exitCode: null, signal: null, stdout, stderr, timedOut, spawnError: err.message }));
    // 'exit' rather than 'close': a grandchild may keep the pipes open after the program itself is gone
    child.on('exit', (exitCode, signal) => {
      if (timedOut) killGroup();
      setImmediate(() => finish({ exitCode, signal, stdout, stderr, timedOut }));
    });
  });
}

function parseReport(stdout: string): z.infer<typeof reportSchema> | null {
  const text = stdout.trim();
  if (!text) return null;
  // a diagnostic may log lines before its verdict: the verdict is the last line
  const candidates = [text, text.split('\n').at(-1) ?? ''];
  for (const c of candidates) {
    try {
      const r = reportSchema.safeParse(JSON.parse(c));
      if (r.success) return r.data;
    } catch {
      // not JSON: try the next candidate
    }
  }
  return null;
}

export function sampleFromRun(run: CommandRun, timeoutMs: number): PeripheralSample {
  if (run.spawnError) return { status: 'fault', code: 'E_SPAWN', message: safeText(`cannot run diagnostic: ${run.spawnError}`) };
  if (run.timedOut) return { status: 'fault', code: 'E_TIMEOUT', message: `diagnostic did not finish within ${timeoutMs} ms` };
  if (run.signal) return { status: 'fault', code: 'E_CRASH', message: `diagnostic killed by ${run.signal}` };
  const report = parseReport(run.stdout);
  const extra = {
    ...(report?.reads !== undefined ? { reads: report.reads } : {}),
    ...(report?.failedReads !== undefined ? { failedReads: report.failedReads } : {}),
  };
  if (run.exitCode === 0) {
    if (!report) return { status: 'unknown', code: 'E_BAD_OUTPUT', message: safeText(`diagnostic printed no status: ${run.stdout.trim().slice(0, 200)}`) };
    return {
      status: report.status ?? 'ok',
      ...(report.code ? { code: safeCode(report.code) } : {}),
      ...(report.message ? { message: safeText(report.message) } : {}),
      ...extra,
    };
  }
  const usable = report?.status === 'ok' || report?.status === 'unknown' || !report?.status;
  return {
    status: usable ? 'fault' : (report?.status ?? 'fault'),
    code: safeCode(report?.code ?? `EXIT_${run.exitCode}`),
    message: safeText(report?.message ?? (run.stderr.trim().split('\n').at(-1) || `diagnostic exited with ${run.exitCode}`)),
    ...extra,
  };
}

export class CommandDriver implements PeripheralDriver {
  readonly driver = 'command' as const;
  constructor(
    private readonly argv: readonly string[],
    private readonly timeoutMs = 10_000,
  ) {}

  async probe(): Promise<PeripheralSample> {
    return sampleFromRun(await runCommand(this.argv, this.timeoutMs), this.timeoutMs);
  }
}
