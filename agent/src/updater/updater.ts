/**
 * The update state machine of one terminal (kiosk app and agent self-update alike):
 *
 *   idle → downloading → verifying → waiting → installing → switching → restarting → health-check → committed
 *                                                                                       └→ rolling-back → failed
 *   (downloading/verifying can also end in failed; any state may receive a new target)
 *
 * Invariants (what makes a kill at any instant safe):
 * 1. `current` always points at a complete release: installs happen under a temp name and are renamed into place;
 *    the link is replaced by rename (layout.ts). So whatever instant the process dies, `current` is runnable.
 * 2. The state is persisted (atomic write + fsync) on entering a state, before the state's work starts; every
 *    state's work is idempotent, so `resume()` re-runs the step it died in. `previous` is persisted on entering
 *    switching, before the link moves, so a rollback always knows where to go.
 * 3. A new version is only committed after it passed its health check; its deadline is persisted once, so
 *    restarts (or a power cut) during the check do not extend it, and too many process starts during
 *    restarting/health-check (`maxBoots`) count as a failed check (boot loop).
 * 4. A release that failed (bad signature, bad sha256, failed health check, failed install) is remembered by
 *    sha256 and never retried, however often the hub re-sends it (loop detection).
 * 5. Before switching, a new target replaces the current one (latest wins; `release: null` cancels). From
 *    installing on, a new target waits until the update in progress is committed or rolled back: an abort never
 *    leaves a terminal half-way.
 * 6. Nothing restarts the kiosk app during a citizen session (`isSessionOpen`), and installs wait for the
 *    maintenance window unless the target is urgent (or the policy says `windowOnly: false`).
 * 7. One runner: `run()` applies one step at a time; `setTarget()` and `nudge()` only record and wake it.
 */
import { randomUUID, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import type { Logger } from 'pino';
import type { UpdateState, UpdateStatus, UpdateTarget } from '@kiosk-fleet/protocol';
import { Backoff } from '../backoff.ts';
import { DownloadError, downloadArtifact } from './download.ts';
import { installRelease } from './install.ts';
import { Layout } from './layout.ts';
import { initialState, loadState, saveState, type PersistedState, type Target, type UpdateError } from './state.ts';
import { verifyArtifact } from './verify.ts';

export type ReleaseKind = Target['kind'];

/** What the agent core publishes on `update/status` (it adds v, epoch, seq, ts). */
export type StatusReport = Omit<UpdateStatus, 'v' | 'epoch' | 'seq' | 'ts'>;

export interface HealthCheckContext {
  kind: ReleaseKind;
  version: string;
  /** The release directory now behind `current`. */
  dir: string;
  signal: AbortSignal;
}

export interface UpdaterHooks {
  /**
   * Restart what was switched: the app supervisor restarts the kiosk app; for the agent itself, the process exits
   * and its service manager starts it again from `current` (this promise then never settles).
   */
  restart(kind: ReleaseKind, version: string, signal: AbortSignal): Promise<void>;
  /** One probe of the new version's health (app heartbeat; for the agent: connected to the hub). */
  healthCheck(ctx: HealthCheckContext): Promise<boolean>;
  /** The session lock: true while a citizen is mid-transaction. */
  isSessionOpen(): boolean | Promise<boolean>;
  /** Whether `now` is inside this terminal's maintenance window (from its config). */
  isInMaintenanceWindow(now: Date): boolean | Promise<boolean>;
}

export interface UpdatePolicy {
  /** Install only inside the maintenance window unless the target is urgent. */
  windowOnly: boolean;
  /** Seconds the new version has to pass its health check. */
  healthCheckSeconds: number;
}

export interface UpdaterTiming {
  /** How often waiting re-checks the window and the session lock (nudge() wakes it sooner). */
  waitPollMs: number;
  /** Pause between health probes. */
  healthPollMs: number;
  /** Download retry backoff after a cut. */
  retryMinMs: number;
  retryMaxMs: number;
  /** Process starts tolerated in restarting/health-check before it counts as a boot loop. */
  maxBoots: number;
}

export interface UpdaterOptions {
  stateFile: string;
  /** Install roots per kind (see layout.ts). */
  roots: Record<ReleaseKind, string>;
  /** The agent's own trusted keys (KF_UPDATE_PUBKEY), never the hub's word. */
  publicKeys: readonly KeyObject[];
  terminalType: string;
  agentVersion: string;
  hooks: UpdaterHooks;
  /** Read at each use, so a pushed config applies at once. */
  policy?: () => UpdatePolicy;
  onStatus?: (s: StatusReport) => void;
  logger: Logger;
  timing?: Partial<UpdaterTiming>;
  /** This process start's id; must differ between starts (default: random). */
  bootId?: string;
  now?: () => Date;
  fetch?: typeof fetch;
}

const DEFAULT_TIMING: UpdaterTiming = { waitPollMs: 30_000, healthPollMs: 2_000, retryMinMs: 1_000, retryMaxMs: 5 * 60_000, maxBoots: 3 };
const DEFAULT_POLICY: UpdatePolicy = { windowOnly: true, healthCheckSeconds: 120 };

/** States with nothing to do until a new target arrives. */
const AT_REST: ReadonlySet<UpdateState> = new Set(['idle', 'committed', 'failed']);
/** States a new target may interrupt (nothing on disk that runs has changed yet). */
const INTERRUPTIBLE: ReadonlySet<UpdateState> = new Set(['idle', 'committed', 'failed', 'downloading', 'verifying', 'waiting']);

export class Updater {
  readonly #o: UpdaterOptions;
  readonly #timing: UpdaterTiming;
  readonly #log: Logger;
  readonly #bootId: string;
  readonly #now: () => Date;
  readonly #layouts: Record<ReleaseKind, Layout>;
  #s: PersistedState = initialState();
  #loaded = false;
  #wakers = new Set<() => void>();
  #stepAbort: AbortController | null = null;
  #lastDeferral: string | null = null;

  constructor(options: UpdaterOptions) {
    this.#o = { ...options, roots: { ...options.roots }, publicKeys: [...options.publicKeys], hooks: { ...options.hooks } };
    this.#timing = { ...DEFAULT_TIMING, ...options.timing };
    this.#log = options.logger.child({ module: 'updater' });
    this.#bootId = options.bootId ?? randomUUID();
    this.#now = options.now ?? (() => new Date());
    this.#layouts = { app: new Layout(this.#o.roots.app), agent: new Layout(this.#o.roots.agent) };
  }

  get state(): Readonly<PersistedState> {
    return this.#s;
  }

  layout(kind: ReleaseKind): Layout {
    return this.#layouts[kind];
  }

  /** Load the persisted state and account for this process start. Call once at start, before run(). */
  resume(): Readonly<PersistedState> {
    const r = loadState(this.#o.stateFile);
    if (r.ok) {
      this.#s = r.state;
    } else {
      // Atomic writes make this a disk fault; `current` is still a complete release, so starting afresh is safe.
      const aside = `${this.#o.stateFile}.corrupt-${Date.now()}`;
      this.#log.error({ reason: r.reason, movedTo: aside }, 'update state unreadable; starting idle');
      try {
        fs.renameSync(this.#o.stateFile, aside);
      } catch {
        // nothing to move
      }
      this.#s = initialState();
    }
    for (const l of Object.values(this.#layouts)) {
      l.ensure();
      l.sweep();
    }
    this.#loaded = true;
    const s = this.#s;
    if (s.state === 'restarting' || s.state === 'health-check') {
      const boots = s.boots + 1;
      if (boots > this.#timing.maxBoots) {
        this.#enter('rolling-back', {
          boots,
          restartBootId: null,
          error: { code: 'boot-loop', message: `${boots - 1} restarts without passing the health check` },
        });
        return this.#s;
      }
      this.#save({ boots });
    }
    this.#report();
    return this.#s;
  }

  /** Record a new desired release from `update/target` (retained; re-sent on every reconnect). */
  setTarget(payload: UpdateTarget): void {
    // A retained target can arrive before the agent called resume(): never write over the persisted state unread.
    if (!this.#loaded) this.resume();
    const r = payload.release;
    const target: Target | null = r
      ? {
          releaseId: r.id,
          kind: r.kind,
          version: r.version,
          url: r.url,
          size: r.size,
          sha256: r.sha256,
          manifest: r.manifest,
          signature: r.signature,
          ...(payload.token !== undefined ? { token: payload.token } : {}),
          ...(payload.rolloutId !== undefined ? { rolloutId: payload.rolloutId } : {}),
          urgent: payload.urgent,
        }
      : null;
    this.#save({ pending: { target } });
    const sameRelease = target !== null && this.#s.target?.sha256 === target.sha256 && this.#s.target.releaseId === target.releaseId;
    // A different release interrupts a download or a wait at once; the same one (a fresh token) just wakes it.
    if (!sameRelease && (this.#s.state === 'downloading' || this.#s.state === 'waiting')) this.#stepAbort?.abort();
    this.nudge();
  }

  /** Re-check now: a session ended, the window opened, the config changed, the hub link came back. */
  nudge(): void {
    const w = [...this.#wakers];
    this.#wakers.clear();
    for (const f of w) f();
  }

  /** The reconcile loop; returns when `signal` aborts. State stays persisted for the next start. */
  async run(signal: AbortSignal): Promise<void> {
    if (!this.#loaded) this.resume();
    const backoff = new Backoff({ minMs: this.#timing.retryMinMs, maxMs: this.#timing.retryMaxMs });
    while (!signal.aborted) {
      this.#adopt();
      if (AT_REST.has(this.#s.state)) {
        await this.#sleep(Number.POSITIVE_INFINITY, signal);
        continue;
      }
      const step = new AbortController();
      const onAbort = (): void => step.abort(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      this.#stepAbort = step;
      try {
        await this.#step(step.signal);
        backoff.reset();
      } catch (err) {
        if (signal.aborted) break;
        if (step.signal.aborted) continue;
        const delay = backoff.next();
        this.#log.error({ err, state: this.#s.state, retryInMs: delay }, 'update step failed; will retry');
        this.#report({ error: { code: 'step-error', message: String((err as Error).message).slice(0, 500) } });
        await this.#sleep(delay, signal);
      } finally {
        signal.removeEventListener('abort', onAbort);
        this.#stepAbort = null;
      }
    }
  }

  // ------------------------------------------------------------------ steps

  async #step(signal: AbortSignal): Promise<void> {
    const t = this.#s.target;
    if (!t) {
      this.#enter('idle', {});
      return;
    }
    switch (this.#s.state) {
      case 'downloading':
        return this.#download(t, signal);
      case 'verifying':
        return this.#verify(t);
      case 'waiting':
        return this.#wait(t, signal);
      case 'installing':
        return this.#install(t);
      case 'switching':
        this.layout(t.kind).switchTo(t.version);
        this.#enter('restarting', { restartBootId: null });
        return;
      case 'restarting':
        await this.#restart(t, signal);
        this.#enter('health-check', {
          healthDeadline: this.#s.healthDeadline ?? new Date(this.#now().getTime() + this.#policy().healthCheckSeconds * 1000).toISOString(),
        });
        return;
      case 'health-check':
        return this.#healthCheck(t, signal);
      case 'rolling-back':
        return this.#rollBack(t, signal);
      default:
        return;
    }
  }

  async #download(t: Target, signal: AbortSignal): Promise<void> {
    const layout = this.layout(t.kind);
    layout.ensure();
    const part = layout.partFile(t.sha256);
    const backoff = new Backoff({ minMs: this.#timing.retryMinMs, maxMs: this.#timing.retryMaxMs });
    let lastReport = 0;
    for (;;) {
      this.#refreshSameRelease(); // a fresh token may have arrived meanwhile
      try {
        const latest = this.#s.target ?? t;
        await downloadArtifact({
          url: latest.url,
          token: latest.token,
          partFile: part,
          size: t.size,
          sha256: t.sha256,
          signal,
          ...(this.#o.fetch ? { fetch: this.#o.fetch } : {}),
          onProgress: (have) => {
            // ~every 10%: enough for a progress bar, little enough for a thousand terminals.
            const progress = t.size === 0 ? 1 : have / t.size;
            if (progress - lastReport >= 0.1) {
              lastReport = progress;
              this.#report({ progress: Math.min(1, progress) });
            }
          },
        });
        break;
      } catch (err) {
        if (signal.aborted) throw err;
        if (!(err instanceof DownloadError)) throw err;
        if (err.code === 'not-found') {
          // The hub no longer has it: not this release's fault, so not remembered as failed.
          this.#enter('failed', { error: { code: 'not-found', message: err.message } });
          return;
        }
        if (err.code === 'too-large') return this.#fail(t, { code: 'too-large', message: err.message });
        const delay = err.code === 'unauthorized' ? this.#timing.retryMaxMs : backoff.next();
        this.#log.warn({ code: err.code, retryInMs: delay }, `download: ${err.message}`);
        this.#report({ error: { code: err.code === 'unauthorized' ? 'token-refused' : 'download-interrupted', message: err.message } });
        // A fresh token (setTarget of the same release) wakes this sleep.
        await this.#sleep(delay, signal);
        if (signal.aborted) throw signal.reason;
      }
    }
    this.#enter('verifying', {});
  }

  async #verify(t: Target): Promise<void> {
    const part = this.layout(t.kind).partFile(t.sha256);
    const err = await verifyArtifact(t, part, {
      publicKeys: this.#o.publicKeys,
      terminalType: this.#o.terminalType,
      agentVersion: this.#o.agentVersion,
    });
    if (err) return this.#fail(t, err);
    this.#enter('waiting', {});
  }

  async #deferral(t: Target): Promise<UpdateError | null> {
    if (await this.#o.hooks.isSessionOpen()) return { code: 'session-open', message: 'waiting for the citizen session to end' };
    if (!t.urgent && this.#policy().windowOnly && !(await this.#o.hooks.isInMaintenanceWindow(this.#now()))) {
      return { code: 'outside-window', message: 'waiting for the maintenance window' };
    }
    return null;
  }

  async #wait(t: Target, signal: AbortSignal): Promise<void> {
    for (;;) {
      this.#refreshSameRelease(); // an urgent flag may have arrived meanwhile
      const d = await this.#deferral(this.#s.target ?? t);
      if (!d) break;
      if (this.#lastDeferral !== d.code) {
        this.#lastDeferral = d.code;
        this.#log.info({ releaseId: t.releaseId, reason: d.code }, 'install deferred');
        this.#report({ error: d });
      }
      await this.#sleep(this.#timing.waitPollMs, signal);
      if (signal.aborted) throw signal.reason;
    }
    this.#lastDeferral = null;
    this.#enter('installing', {});
  }

  async #install(t: Target): Promise<void> {
    const layout = this.layout(t.kind);
    try {
      await installRelease(layout, t.version, layout.partFile(t.sha256));
    } catch (err) {
      return this.#fail(t, { code: 'install-failed', message: (err as Error).message });
    }
    // Invariant 2: where to roll back to is on disk before the link moves.
    this.#enter('switching', { previous: layout.currentVersion(), healthDeadline: null, boots: 0 });
  }

  /** Restart into what `current` points at, exactly once per step (for the agent: this process start counts). */
  async #restart(t: Target, signal: AbortSignal): Promise<void> {
    // Never restart the app under a citizen's hands, whatever the window or urgency.
    for (;;) {
      if (!(await this.#o.hooks.isSessionOpen())) break;
      if (this.#lastDeferral !== 'session-open') {
        this.#lastDeferral = 'session-open';
        this.#report({ error: { code: 'session-open', message: 'restart deferred until the citizen session ends' } });
      }
      await this.#sleep(this.#timing.waitPollMs, signal);
      if (signal.aborted) throw signal.reason;
    }
    this.#lastDeferral = null;
    const restartedByNewProcess = t.kind === 'agent' && this.#s.restartBootId !== null && this.#s.restartBootId !== this.#bootId;
    if (restartedByNewProcess) return;
    this.#save({ restartBootId: this.#bootId });
    await this.#o.hooks.restart(t.kind, this.layout(t.kind).currentVersion() ?? t.version, signal);
  }

  async #healthCheck(t: Target, signal: AbortSignal): Promise<void> {
    const layout = this.layout(t.kind);
    const deadline = this.#s.healthDeadline ? Date.parse(this.#s.healthDeadline) : this.#now().getTime();
    for (;;) {
      let ok = false;
      try {
        ok = await this.#o.hooks.healthCheck({ kind: t.kind, version: t.version, dir: layout.releaseDir(t.version), signal });
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        this.#log.warn({ err }, 'health probe threw');
      }
      if (ok) {
        this.#enter('committed', { healthDeadline: null, restartBootId: null, boots: 0, guardStarts: 0, error: null });
        this.#cleanUp(t, [t.version, this.#s.previous]);
        this.#log.info({ releaseId: t.releaseId, version: t.version }, 'update committed');
        return;
      }
      const left = deadline - this.#now().getTime();
      if (left <= 0) {
        this.#enter('rolling-back', {
          restartBootId: null,
          error: { code: 'health-check-failed', message: `version ${t.version} was not healthy within ${this.#policy().healthCheckSeconds} s` },
        });
        return;
      }
      await this.#sleep(Math.min(this.#timing.healthPollMs, left), signal);
      if (signal.aborted) throw signal.reason;
    }
  }

  async #rollBack(t: Target, signal: AbortSignal): Promise<void> {
    const layout = this.layout(t.kind);
    const prev = this.#s.previous;
    if (prev !== null && layout.isInstalled(prev)) {
      layout.switchTo(prev);
      await this.#restart(t, signal);
    } else {
      // The failed version was the first install: nothing worked before it, so nothing runs after it.
      fs.rmSync(layout.currentLink, { force: true });
    }
    this.#log.warn({ releaseId: t.releaseId, to: prev, reason: this.#s.error?.code }, 'update rolled back');
    this.#fail(t, this.#s.error ?? { code: 'rolled-back', message: 'rolled back' });
  }

  /** Final failure of this release: remembered (never retried), its download and install removed. */
  #fail(t: Target, error: UpdateError): void {
    this.#log.warn({ releaseId: t.releaseId, error }, 'update failed');
    this.#enter('failed', {
      error,
      restartBootId: null,
      healthDeadline: null,
      boots: 0,
      guardStarts: 0,
      failed: { ...this.#s.failed, [t.sha256]: { releaseId: t.releaseId, version: t.version, code: error.code, at: this.#now().toISOString() } },
    });
    const layout = this.layout(t.kind);
    try {
      fs.rmSync(layout.partFile(t.sha256), { force: true });
      if (layout.currentVersion() !== t.version) fs.rmSync(layout.releaseDir(t.version), { recursive: true, force: true });
    } catch (err) {
      this.#log.warn({ err }, 'cleanup after a failed update failed (harmless)');
    }
  }

  /** After a commit: drop the download and every release but the running one and the rollback target. */
  #cleanUp(t: Target, keep: (string | null)[]): void {
    const layout = this.layout(t.kind);
    try {
      fs.rmSync(layout.partFile(t.sha256), { force: true });
      layout.prune(keep);
    } catch (err) {
      this.#log.warn({ err }, 'cleanup after update failed (harmless; retried next time)');
    }
  }

  // ------------------------------------------------------------------ targets

  /** At a step boundary: take a pending target if the current state allows (invariant 5). */
  #adopt(): void {
    if (this.#refreshSameRelease()) {
      if (this.#s.state === 'committed') this.#report();
      if (this.#s.state === 'failed') {
        const t = this.#s.target!;
        const f = this.#s.failed[t.sha256];
        if (f) this.#report({ error: { code: 'previously-failed', message: `${t.releaseId} failed here before (${f.code}); not retried` } });
        // A failure not held against the release (the hub did not have it): try again.
        else this.#enter('downloading', { error: null, previous: null, healthDeadline: null, restartBootId: null, boots: 0, guardStarts: 0 });
      }
      return;
    }
    const p = this.#s.pending;
    if (!p) return;
    const t = p.target;
    if (!INTERRUPTIBLE.has(this.#s.state)) return;
    if (!t) {
      if (AT_REST.has(this.#s.state)) this.#save({ pending: null });
      else this.#enter('idle', { target: null, pending: null, error: null });
      return;
    }
    if (this.#s.failed[t.sha256]) {
      const f = this.#s.failed[t.sha256];
      this.#enter('failed', { target: t, pending: null, error: { code: 'previously-failed', message: `${t.releaseId} failed here before (${f?.code}); not retried` } });
      return;
    }
    if (this.layout(t.kind).currentVersion() === t.version) {
      this.#enter('committed', { target: t, pending: null, error: null });
      return;
    }
    this.#lastDeferral = null;
    this.#enter('downloading', { target: t, pending: null, error: null, previous: null, healthDeadline: null, restartBootId: null, boots: 0, guardStarts: 0 });
  }

  /** A pending target naming the release in progress only refreshes it (token, url, urgency, rollout). */
  #refreshSameRelease(): boolean {
    const t = this.#s.pending?.target;
    const cur = this.#s.target;
    if (!t || !cur || t.sha256 !== cur.sha256 || t.releaseId !== cur.releaseId) return false;
    this.#save({ target: t, pending: null });
    return true;
  }

  // ------------------------------------------------------------------ plumbing

  #policy(): UpdatePolicy {
    return { ...DEFAULT_POLICY, ...this.#o.policy?.() };
  }

  #save(patch: Partial<PersistedState>): void {
    this.#s = { ...this.#s, ...patch, updatedAt: this.#now().toISOString() };
    saveState(this.#o.stateFile, this.#s);
  }

  /** Invariant 2: persisted first, then reported, then the caller's loop runs the state's work. */
  #enter(state: UpdateState, patch: Partial<PersistedState>): void {
    this.#save({ ...patch, state });
    this.#log.info({ state, releaseId: this.#s.target?.releaseId }, 'update state');
    this.#report();
  }

  #report(extra: Pick<StatusReport, 'progress' | 'error'> = {}): void {
    const s = this.#s;
    const t = s.target;
    const error = extra.error ?? s.error ?? undefined;
    const status: StatusReport = {
      state: s.state,
      ...(t ? { releaseId: t.releaseId, version: t.version } : {}),
      ...(t?.rolloutId ? { rolloutId: t.rolloutId } : {}),
      ...(extra.progress !== undefined ? { progress: extra.progress } : {}),
      ...(error ? { error: { code: error.code.slice(0, 64), message: error.message.slice(0, 512) } } : {}),
    };
    try {
      this.#o.onStatus?.(status);
    } catch (err) {
      this.#log.error({ err }, 'status callback threw');
    }
  }

  /** Sleep until `ms` passes, nudge() or setTarget() wakes, or `signal` aborts. */
  #sleep(ms: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        if (timer) clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.#wakers.delete(done);
        resolve();
      };
      const timer = Number.isFinite(ms) ? setTimeout(done, ms) : undefined;
      signal.addEventListener('abort', done, { once: true });
      this.#wakers.add(done);
    });
  }
}
