/**
 * The rollout service: keeps rollouts in its store, feeds the engine (engine.ts) with the clock, the fleet, terminal
 * health and `update/status`, and carries out its actions through ports (publish `update/target`, emit events).
 *
 * Invariants:
 * - Every change is saved (RolloutStore.save) before its actions run: after a crash the hub re-reads the rollout and
 *   the retained targets it already published (the downlink store re-publishes those itself).
 * - Operations on one rollout run one at a time (a per-rollout promise chain), so a status arriving during a tick
 *   is applied after it, never lost between read and write.
 * - A target whose publish failed goes back to `pending` and is sent again on a later tick.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { UpdateStatus, UpdateTarget } from '@kiosk-fleet/protocol';
import type { ReleaseRecord } from '../releases/artifact-store.ts';
import {
  abort,
  applyStatus,
  createRollout,
  DEFAULT_GATE,
  pause,
  progress,
  resume,
  RolloutSpecError,
  tick,
  type Action,
  type FleetTerminal,
  type HealthSample,
  type RolloutSpec,
  type RolloutState,
  type Step,
  type WaveProgress,
  type WaveSpec,
} from './engine.ts';
import type { RolloutStore } from './store.ts';

export interface RolloutPorts {
  /** Active terminals with their ancestors (station, district, city). */
  fleet(): Promise<FleetTerminal[]>;
  health(terminalId: string, since: number): Promise<HealthSample | undefined>;
  release(id: string): Promise<ReleaseRecord | undefined>;
  /** The update/target that sends `release` to the terminal (fresh download token included). */
  makeTarget(release: ReleaseRecord, terminalId: string, o: { rolloutId: string; urgent: boolean }): UpdateTarget;
  /** Publish (retained, persisted) the terminal's update/target; `release: null` clears it. */
  publishTarget(terminalId: string, target: UpdateTarget): Promise<void>;
  /** Rollout events for the event stream (SSE) and the audit log; `nodeIds` is the rollout's scope. */
  emit(e: { rolloutId: string; action: Action; by: string; nodeIds: readonly string[] }): void;
}

export interface CreateRolloutInput {
  releaseId: string;
  nodeIds: string[];
  terminalTypes?: string[];
  waves: WaveSpec[];
  gate?: Partial<RolloutSpec['gate']>;
  maxInFlight?: number;
  inFlightTimeoutMs?: number;
  waveTimeoutMs?: number | null;
  urgent?: boolean;
}

export interface RolloutRecord {
  v: 1;
  spec: RolloutSpec;
  state: RolloutState;
  createdBy: string;
}

export interface RolloutView {
  id: string;
  releaseId: string;
  version: string;
  /** The rollout's scope: nodes of the tree (access to a rollout follows them). */
  nodeIds: string[];
  status: RolloutState['status'];
  wave: number;
  pauseReason: RolloutState['pauseReason'];
  waves: WaveProgress[];
  urgent: boolean;
  /** The gate each wave must pass (soak time, share that must succeed), and when the current wave began: what the
   * dashboard needs to say when the next wave starts. */
  gate: { successRatio: number; soakMinutes: number; failureRateTolerance: number };
  waveStartedAt: string;
  createdAt: string;
  updatedAt: string;
  createdBy: string;
}

export class RolloutNotFound extends Error {
  override name = 'RolloutNotFound';
}

/** A new rollout over terminals that an unfinished (running or paused) one still covers: two would race on them. */
export class RolloutConflict extends Error {
  override name = 'RolloutConflict';
  constructor(
    message: string,
    readonly details: { rolloutId: string; releaseId: string; status: string; terminals: string[] },
  ) {
    super(message);
  }
}

export { RolloutSpecError };

export class RolloutService {
  readonly #store: RolloutStore;
  readonly #ports: RolloutPorts;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #rollouts = new Map<string, RolloutRecord>();
  readonly #chains = new Map<string, Promise<unknown>>();
  #timer: NodeJS.Timeout | null = null;
  readonly #shared: boolean;
  readonly #leads: () => boolean;

  /**
   * `shared`: several hubs run on this database (PostgreSQL, issue 19). Then the records in memory are a view: every
   * operation re-reads its rollout under the store's per-rollout lock (`exclusive`) before changing it, whichever
   * hub it runs on. `leads`: whether this hub runs the periodic tick (job leadership, cluster/leader.ts).
   */
  constructor(o: { store: RolloutStore; ports: RolloutPorts; logger: Logger; now?: () => number; shared?: boolean; leads?: () => boolean }) {
    this.#store = o.store;
    this.#ports = { ...o.ports };
    this.#log = o.logger.child({ module: 'rollouts' });
    this.#now = o.now ?? Date.now;
    this.#shared = o.shared ?? false;
    this.#leads = o.leads ?? (() => true);
  }

  /** Load the stored rollouts. Call once at start. */
  async init(): Promise<this> {
    await this.reload();
    return this;
  }

  /** Re-reads every stored rollout: those other hubs created or changed (shared), or when this hub becomes leader. */
  async reload(): Promise<void> {
    for (const r of await this.#store.list()) this.#rollouts.set(r.spec.id, r);
  }

  /**
   * Tick every running rollout every `everyMs` (soak gates are time-based), on the leading hub only; other hubs of a
   * shared database refresh their view of the rollouts meanwhile.
   */
  start(everyMs = 30_000): void {
    this.stop();
    this.#timer = setInterval(() => void this.#periodic(), everyMs);
    this.#timer.unref();
  }

  async #periodic(): Promise<void> {
    try {
      if (this.#shared) await this.reload();
      await this.tickAll();
    } catch (err) {
      this.#log.error({ err }, 'rollout tick failed');
    }
  }

  /**
   * Before an API read: with several hubs on the database (shared), the rollout as stored (another hub applies the
   * statuses of the terminals connected to it, the leader ticks); one hub alone: its memory is the truth already.
   */
  async refresh(id?: string): Promise<void> {
    if (!this.#shared) return;
    if (id === undefined) await this.reload();
    else await this.#loadOne(id);
  }

  /** This hub became the rollouts' leader: carry on every rollout from what is stored, now. */
  async takeOver(): Promise<void> {
    await this.reload();
    await this.tickAll();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  list(): RolloutView[] {
    return [...this.#rollouts.values()].map((r) => this.#view(r)).sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
  }

  get(id: string): RolloutView & { terminals: RolloutState['terminals'] } {
    const r = this.#require(id);
    return { ...this.#view(r), terminals: r.state.terminals };
  }

  async create(input: CreateRolloutInput, by: string): Promise<RolloutView> {
    // (another hub's rollouts count in the overlap check below)
    if (this.#shared) await this.reload();
    const release = await this.#ports.release(input.releaseId);
    if (!release) throw new RolloutSpecError(`releaseId: no release ${input.releaseId}`);
    const id = `r-${randomBytes(6).toString('base64url')}`;
    const spec: RolloutSpec = {
      id,
      release: { id: release.id, version: release.version, terminalTypes: release.terminalTypes },
      scope: { nodeIds: input.nodeIds, ...(input.terminalTypes ? { terminalTypes: input.terminalTypes } : {}) },
      waves: input.waves,
      gate: { ...DEFAULT_GATE, ...input.gate },
      maxInFlight: input.maxInFlight ?? 50,
      inFlightTimeoutMs: input.inFlightTimeoutMs ?? 30 * 60_000,
      waveTimeoutMs: input.waveTimeoutMs ?? null,
      urgent: input.urgent ?? false,
    };
    const step = createRollout(spec, await this.#ports.fleet(), this.#now());
    this.#refuseOverlap(Object.keys(step.state.terminals));
    const record: RolloutRecord = { v: 1, spec, state: step.state, createdBy: by };
    // Registered before the first await, so a second create arriving meanwhile sees this one in #refuseOverlap.
    this.#rollouts.set(id, record);
    await this.#serial(id, async () => {
      await this.#commit(record, step, by);
    });
    this.#log.info({ rolloutId: id, releaseId: release.id, terminals: Object.keys(step.state.terminals).length, by }, 'rollout created');
    return this.#view(this.#require(id));
  }

  /**
   * One unfinished rollout per terminal: a paused one counts too (resume would send its target again), so a second
   * rollout is refused naming the first; the operator aborts it or waits until it completes.
   */
  #refuseOverlap(terminals: string[]): void {
    const wanted = new Set(terminals);
    for (const r of this.#rollouts.values()) {
      if (r.state.status !== 'running' && r.state.status !== 'paused') continue;
      const shared = Object.keys(r.state.terminals).filter((t) => wanted.has(t)).sort();
      if (shared.length === 0) continue;
      const named = shared.slice(0, 5).join(', ') + (shared.length > 5 ? ` and ${shared.length - 5} more` : '');
      throw new RolloutConflict(
        `rollout ${r.spec.id} of ${r.spec.release.id} (${r.state.status}) already covers ${shared.length} of these terminals (${named}): abort it or wait until it completes`,
        { rolloutId: r.spec.id, releaseId: r.spec.release.id, status: r.state.status, terminals: shared },
      );
    }
  }

  pause(id: string, by: string, message?: string): Promise<RolloutView> {
    return this.#op(id, by, (r) => pause(r.state, this.#now(), message));
  }

  resume(id: string, by: string): Promise<RolloutView> {
    return this.#op(id, by, async (r) => resume(r.spec, r.state, this.#now(), await this.#health(r.state)));
  }

  abort(id: string, by: string): Promise<RolloutView> {
    return this.#op(id, by, (r) => abort(r.state, this.#now()));
  }

  /** Feed an `update/status` (after the hub stored it). Statuses of no known rollout are ignored. */
  async onStatus(terminalId: string, s: Pick<UpdateStatus, 'state' | 'releaseId' | 'rolloutId' | 'error'>): Promise<void> {
    // a rollout made on another hub since this one last looked
    if (this.#shared && s.rolloutId !== undefined && !this.#rollouts.has(s.rolloutId)) await this.#loadOne(s.rolloutId);
    for (const r of this.#rollouts.values()) {
      if (!r.state.terminals[terminalId] || r.spec.release.id !== s.releaseId) continue;
      if (s.rolloutId !== undefined && s.rolloutId !== r.spec.id) continue;
      await this.#op(r.spec.id, 'terminal', async (cur) => {
        const state = applyStatus(cur.spec, cur.state, terminalId, s, this.#now());
        return tick(cur.spec, state, this.#now(), await this.#health(state));
      });
    }
  }

  async tickAll(): Promise<void> {
    if (!this.#leads()) return;
    for (const r of this.#rollouts.values()) {
      if (r.state.status !== 'running' && r.state.status !== 'paused') continue;
      try {
        await this.#op(r.spec.id, 'hub', async (cur) => tick(cur.spec, cur.state, this.#now(), await this.#health(cur.state)));
      } catch (err) {
        this.#log.error({ err, rolloutId: r.spec.id }, 'rollout tick failed');
      }
    }
  }

  // ------------------------------------------------------------------ internals

  #require(id: string): RolloutRecord {
    const r = this.#rollouts.get(id);
    if (!r) throw new RolloutNotFound(`no rollout ${id}`);
    return r;
  }

  #serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#chains.get(id) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    this.#chains.set(id, run.catch(() => undefined));
    return run;
  }

  /** The health of the terminals `tick` judges (committed ones, since their commit), read before it runs. */
  async #health(state: RolloutState): Promise<(terminalId: string, since: number) => HealthSample | undefined> {
    const got = new Map<string, HealthSample | undefined>();
    for (const [id, t] of Object.entries(state.terminals)) {
      if (t.phase === 'committed' && t.committedAt !== null) got.set(`${id}\u0000${t.committedAt}`, await this.#ports.health(id, t.committedAt));
    }
    return (terminalId, since) => got.get(`${terminalId}\u0000${since}`);
  }

  async #loadOne(id: string): Promise<RolloutRecord | undefined> {
    const r = await this.#store.load(id);
    if (r) this.#rollouts.set(id, r);
    return r;
  }

  async #op(id: string, by: string, f: (r: RolloutRecord) => Step | Promise<Step>): Promise<RolloutView> {
    if (this.#shared && !this.#rollouts.has(id)) await this.#loadOne(id);
    this.#require(id);
    return this.#serial(id, () =>
      this.#store.exclusive(id, async () => {
        // shared: the stored record is the truth (another hub may have changed it since this one read it)
        if (this.#shared) await this.#loadOne(id);
        const r = this.#require(id);
        await this.#commit(r, await f(r), by);
        return this.#view(this.#require(id));
      }),
    );
  }

  /** Persist the new state, then carry out its actions. */
  async #commit(r: RolloutRecord, step: Step, by: string): Promise<void> {
    let record: RolloutRecord = { ...r, state: step.state };
    await this.#store.save(record);
    this.#rollouts.set(r.spec.id, record);
    const release = await this.#ports.release(r.spec.release.id);
    const failed: string[] = [];
    for (const a of step.actions) {
      if (a.kind === 'event') {
        this.#ports.emit({ rolloutId: r.spec.id, action: a, by, nodeIds: r.spec.scope.nodeIds });
        if (a.event === 'paused') this.#log.warn({ rolloutId: r.spec.id, reason: a.reason }, 'rollout paused');
        continue;
      }
      try {
        if (a.kind === 'send-target') {
          if (!release) throw new Error(`release ${r.spec.release.id} is gone from the store`);
          await this.#ports.publishTarget(a.terminalId, this.#ports.makeTarget(release, a.terminalId, { rolloutId: r.spec.id, urgent: r.spec.urgent }));
        } else {
          await this.#ports.publishTarget(a.terminalId, { v: 1, release: null, rolloutId: r.spec.id, urgent: false });
        }
        this.#ports.emit({ rolloutId: r.spec.id, action: a, by, nodeIds: r.spec.scope.nodeIds });
      } catch (err) {
        this.#log.error({ err, rolloutId: r.spec.id, terminalId: a.terminalId, action: a.kind }, 'update/target publish failed');
        if (a.kind === 'send-target') failed.push(a.terminalId);
      }
    }
    if (failed.length > 0) {
      const terminals = { ...record.state.terminals };
      for (const id of failed) if (terminals[id]) terminals[id] = { ...terminals[id]!, phase: 'pending', targetedAt: null };
      record = { ...record, state: { ...record.state, terminals } };
      await this.#store.save(record);
      this.#rollouts.set(r.spec.id, record);
    }
  }

  #view(r: RolloutRecord): RolloutView {
    return {
      id: r.spec.id,
      releaseId: r.spec.release.id,
      version: r.spec.release.version,
      nodeIds: r.spec.scope.nodeIds,
      status: r.state.status,
      wave: r.state.wave,
      pauseReason: r.state.pauseReason,
      waves: progress(r.spec, r.state),
      urgent: r.spec.urgent,
      gate: { successRatio: r.spec.gate.successRatio, soakMinutes: r.spec.gate.soakMs / 60_000, failureRateTolerance: r.spec.gate.failureRateTolerance },
      waveStartedAt: new Date(r.state.waveStartedAt).toISOString(),
      createdAt: new Date(r.state.createdAt).toISOString(),
      updatedAt: new Date(r.state.updatedAt).toISOString(),
      createdBy: r.createdBy,
    };
  }
}
