/**
 * Test support, not used by the agent at run time: a child process that runs the real updater (agent/src/updater) the way the agent does: resume() on start, the
 * retained update/target applied, the reconcile loop running. Driven by the scenario tests through files and env:
 *
 *   KF_TEST_UPDATER = JSON RunnerConfig
 *   - session open  ⇔ `sessionFile` exists;  inside the maintenance window ⇔ `windowFile` exists
 *   - health check  = `node <release dir>/health.mjs` exits 0 (for the agent kind: "reached the hub")
 *   - restart: app → a line in `<appRoot>/restarts.log`; agent → this process exits (the supervisor restarts it)
 *   - `pauseAt`: on entering that state (persisted, work not begun) print {"paused":state} and block, to be SIGKILLed;
 *     `downloading@0.3` pauses mid-download instead, once 30% is on disk
 *
 * Prints one JSON line per status: {"status": {...}, "pid": n}.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import type { UpdateTarget } from '@kiosk-fleet/protocol';
import { publicKeyFromPem } from '@kiosk-fleet/protocol/release-signing';
import { Updater } from './updater.ts';

export interface RunnerConfig {
  stateFile: string;
  appRoot: string;
  agentRoot: string;
  pubkeyPem: string;
  terminalType: string;
  agentVersion: string;
  target?: UpdateTarget;
  pauseAt?: string;
  sessionFile: string;
  windowFile: string;
  healthCheckSeconds: number;
}

const cfg = JSON.parse(process.env.KF_TEST_UPDATER ?? '{}') as RunnerConfig;
const out = (o: unknown): void => void process.stdout.write(`${JSON.stringify({ ...(o as object), pid: process.pid })}\n`);

function healthy(dir: string): Promise<boolean> {
  return new Promise((resolve) => execFile(process.execPath, [path.join(dir, 'health.mjs')], (err) => resolve(!err)));
}

let paused = false;
const updater = new Updater({
  stateFile: cfg.stateFile,
  roots: { app: cfg.appRoot, agent: cfg.agentRoot },
  publicKeys: [publicKeyFromPem(cfg.pubkeyPem)],
  terminalType: cfg.terminalType,
  agentVersion: cfg.agentVersion,
  logger: pino({ level: process.env.KF_LOG_LEVEL ?? 'silent' }, pino.destination(2)),
  policy: () => ({ windowOnly: true, healthCheckSeconds: cfg.healthCheckSeconds }),
  timing: { waitPollMs: 100, healthPollMs: 100, retryMinMs: 50, retryMaxMs: 500 },
  hooks: {
    restart: async (kind, version) => {
      if (kind === 'agent') {
        out({ exiting: 'restart', version });
        process.exit(0);
      }
      fs.appendFileSync(path.join(cfg.appRoot, 'restarts.log'), `${version}\n`);
    },
    healthCheck: ({ dir }) => healthy(dir),
    isSessionOpen: () => fs.existsSync(cfg.sessionFile),
    isInMaintenanceWindow: () => fs.existsSync(cfg.windowFile),
  },
  onStatus: (status) => {
    out({ status });
    // pauseAt "state", or "downloading@0.3": the first download progress report at or past 30%.
    const [pauseState, pauseProgress] = (cfg.pauseAt ?? '').split('@');
    const progressReached = pauseProgress === undefined || (status.progress ?? 0) >= Number(pauseProgress);
    if (!paused && status.state === pauseState && progressReached) {
      paused = true;
      out({ paused: status.state });
      // Block right here: the state is persisted, its work has not begun. The test SIGKILLs us now.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120_000);
    }
  },
});

updater.resume();
if (cfg.target) updater.setTarget(cfg.target);
const ac = new AbortController();
process.on('SIGTERM', () => ac.abort());
void updater.run(ac.signal).then(() => process.exit(0));
