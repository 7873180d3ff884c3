/**
 * The simulated terminal's updater: no download, no files. It answers `update/target` the way the real updater
 * (agent/src/updater) reports, walking idle → downloading → verifying → waiting → installing → switching →
 * restarting → health-check → committed, one state every `stepMs`, so rollouts can run over a simulated fleet.
 * It keeps the rules a rollout can see: it waits for no citizen session, a release that failed here is not
 * retried (`previously-failed`), a different target or `release: null` replaces or cancels the update only before
 * installing, and `failHealthCheck` (the control API's lever) makes the health check fail: rolling-back → failed.
 * Like the real updater it waits in `waiting` for the terminal's maintenance window (its applied config's
 * `maintenanceWindow`, unless `updatePolicy.windowOnly` is false or the target is `urgent`): without this, a demo
 * pilot installed within seconds of its district's window being set to 02:00-04:00.
 * Its state lives on the simulated terminal, so it survives the agent being replaced (power loss, restart).
 */
import type { UpdateTarget } from '@kiosk-fleet/protocol';
import { isInWindow } from '../updater/maintenance-window.ts';
import type { Agent, AgentUpdater } from '../agent.ts';
import type { StatusReport } from '../updater/updater.ts';

type Release = NonNullable<UpdateTarget['release']>;
interface Pending {
  release: Release;
  rolloutId: string | undefined;
  urgent: boolean;
}

/** How often a terminal outside its window looks again (a window opens on the minute; a fleet need not poll faster). */
const WINDOW_RECHECK_MS = 15_000;

const BEFORE_INSTALL = new Set(['downloading', 'verifying', 'waiting']);
const WALK = ['downloading', 'verifying', 'waiting', 'installing', 'switching', 'restarting', 'health-check'] as const;

export class SimulatedUpdater {
  /** The control API's lever: the next health checks fail. */
  failHealthCheck = false;
  state: StatusReport['state'] = 'idle';
  #target: Pending | null = null;
  #failed = new Set<string>();
  #wakers = new Set<() => void>();
  #report: (s: StatusReport) => void = () => undefined;
  #agent: Agent | null = null;

  constructor(private readonly o: { stepMs: number; version: () => string; installed: (version: string) => void; timeZone?: string }) {}

  /** The AgentUpdater the terminal's current agent drives. */
  attach(agent: Agent, report: (s: StatusReport) => void): AgentUpdater {
    this.#agent = agent;
    this.#report = report;
    return {
      resume: () => this.state,
      run: (signal) => this.#run(signal),
      setTarget: (t) => this.#setTarget(t),
      nudge: () => this.#wake(),
    };
  }

  get targetVersion(): string | null {
    return this.#target?.release.version ?? null;
  }

  #setTarget(t: UpdateTarget): void {
    const busy = this.#target !== null && !BEFORE_INSTALL.has(this.state) && this.state !== 'idle' && this.state !== 'committed' && this.state !== 'failed';
    // from installing on, the update in progress finishes first (never half-way); the hub re-sends its target
    if (busy) return;
    if (t.release === null) {
      if (this.#target && BEFORE_INSTALL.has(this.state)) this.#say('idle', this.#target, undefined);
      this.#target = null;
      this.state = 'idle';
    } else if (this.#target?.release.sha256 === t.release.sha256 && (WALK as readonly string[]).includes(this.state)) {
      // the same release again, in progress (a fresh token): carry on, urgent now if the hub says so
      this.#target.urgent = t.urgent;
      this.#wake();
      return;
    } else if (t.release.version === this.o.version()) {
      this.#target = { release: t.release, rolloutId: t.rolloutId, urgent: t.urgent };
      this.#say('committed', this.#target);
    } else if (this.#failed.has(t.release.sha256)) {
      this.#target = { release: t.release, rolloutId: t.rolloutId, urgent: t.urgent };
      this.#say('failed', this.#target, { code: 'previously-failed', message: 'this release failed here before; not retried' });
    } else {
      this.#target = { release: t.release, rolloutId: t.rolloutId, urgent: t.urgent };
      this.state = 'idle';
    }
    this.#wake();
  }

  async #run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const t = this.#target;
      if (!t || this.state === 'committed' || this.state === 'failed') {
        await this.#sleep(60_000, signal);
        continue;
      }
      await this.#walk(t, signal);
    }
  }

  async #walk(t: Pending, signal: AbortSignal): Promise<void> {
    // resume where a replaced agent left off: a step is re-run, never skipped
    const from = Math.max(0, WALK.indexOf(this.state as (typeof WALK)[number]));
    for (const state of WALK.slice(from)) {
      if (signal.aborted || this.#target !== t) return;
      this.#say(state, t);
      if (state === 'waiting') {
        let said = false;
        while (!signal.aborted && this.#target?.release.sha256 === t.release.sha256 && this.#outsideWindow()) {
          if (!said) this.#say('waiting', t, { code: 'outside-window', message: 'waiting for the maintenance window' });
          said = true;
          await this.#sleep(WINDOW_RECHECK_MS, signal);
        }
        while (this.#agent?.sessionActive && !signal.aborted && this.#target?.release.sha256 === t.release.sha256) await this.#sleep(1000, signal);
      }
      await this.#sleep(this.o.stepMs, signal);
      if (signal.aborted) return;
    }
    if (this.#target !== t) return;
    if (this.failHealthCheck) {
      this.#say('rolling-back', t, { code: 'health-check-failed', message: 'the app sent no heartbeat after the restart (simulated)' });
      await this.#sleep(this.o.stepMs, signal);
      this.#failed.add(t.release.sha256);
      this.#say('failed', t, { code: 'health-check-failed', message: 'the app sent no heartbeat after the restart (simulated)' });
      return;
    }
    this.o.installed(t.release.version);
    this.#say('committed', t);
  }

  /** Outside the applied config's maintenance window, for a target that is not urgent (no window set: never). */
  #outsideWindow(): boolean {
    const config = this.#agent?.appliedConfig?.config;
    const w = config?.maintenanceWindow;
    if (this.#target?.urgent || w === undefined || config?.updatePolicy?.windowOnly === false) return false;
    return !isInWindow(w, new Date(), this.o.timeZone ?? 'Asia/Shanghai');
  }

  #say(state: StatusReport['state'], t: Pending, error?: { code: string; message: string }): void {
    this.state = state;
    this.#report({
      state,
      releaseId: t.release.id,
      version: t.release.version,
      ...(t.rolloutId !== undefined ? { rolloutId: t.rolloutId } : {}),
      ...(error ? { error } : {}),
    });
  }

  #wake(): void {
    const w = [...this.#wakers];
    this.#wakers.clear();
    for (const f of w) f();
  }

  #sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.#wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      this.#wakers.add(done);
    });
  }
}
