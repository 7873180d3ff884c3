/**
 * The rollout engine: pure functions over a JSON-serialisable rollout state, with the clock and the fleet's
 * health passed in. The hub's rollout service persists the state, calls `tick` periodically and on every
 * `update/status`, and carries out the actions (publish or clear `update/target`, emit events).
 *
 * A rollout sends one release to the terminals in its scope (nodes of the tree, optionally terminal types) in
 * waves that follow the tree: a pilot (named stations or terminals), then a share of a district, then whole
 * districts, then the rest of the city. A wave passes when enough of its terminals installed the release AND stayed
 * healthy for the soak time: online, no new peripheral fault, app heartbeat alive, transaction failure rate not
 * worse than before the update (within a tolerance). Otherwise the rollout pauses by itself and says why.
 *
 * Invariants:
 * - Terminals are assigned to waves once, at creation (`createRollout`), deterministically: a share of a node
 *   takes the terminals first in sha256(rolloutId + terminalId) order, so the choice is stable and unbiased.
 * - Only `running` sends targets, and only to terminals of passed waves and the current one, never more than
 *   `maxInFlight` downloads at once (targeted but not yet past downloading; a slot held longer than
 *   `inFlightTimeoutMs` is freed, so an offline terminal cannot stall the rollout).
 * - `abort` clears the target of every terminal that has not started installing; terminals past that point
 *   finish (commit or roll back) on their own, so none is left half-way. Committed terminals keep the release.
 * - `pause` sends nothing new; terminals already targeted carry on. `resume` after an automatic pause accepts the
 *   wave as it stands (the operator looked at it) and goes on with the next.
 */
import { createHash } from 'node:crypto';
import { englishText, type Text, type UpdateState, type UpdateStatus } from '@kiosk-fleet/protocol';

// ------------------------------------------------------------------ specification

export type WaveSpec =
  /** Named stations and/or terminals. */
  | { kind: 'pilot'; name?: string; stations?: string[]; terminals?: string[] }
  /** A share (0-1] of the in-scope terminals under one node (typically a district) not already in a wave. */
  | { kind: 'share'; name?: string; nodeId: string; ratio: number }
  /** Every in-scope terminal under these nodes (typically districts) not already in a wave. */
  | { kind: 'nodes'; name?: string; nodeIds: string[] }
  /** Everything in scope not already in a wave (the city). */
  | { kind: 'rest'; name?: string };

export interface GateSpec {
  /** Share of a wave's terminals that must be committed and soaked for the wave to pass (0-1]. */
  successRatio: number;
  /** How long a committed terminal must stay healthy. */
  soakMs: number;
  /** Allowed rise of the transaction failure rate over the terminal's own baseline (absolute, 0-1). */
  failureRateTolerance: number;
}

export interface RolloutSpec {
  id: string;
  release: { id: string; version: string; terminalTypes: string[] };
  scope: { nodeIds: string[]; terminalTypes?: string[] };
  waves: WaveSpec[];
  gate: GateSpec;
  /** Downloads in flight at most (protects the hub's link). */
  maxInFlight: number;
  inFlightTimeoutMs: number;
  /** Pause when a wave has not passed after this long (null: wait forever, e.g. for maintenance windows). */
  waveTimeoutMs: number | null;
  urgent: boolean;
  /**
   * Re-send the target (with a fresh download token) to a terminal still before its download after this long:
   * tokens are short-lived, and a terminal that was offline gets the retained target with an old one.
   * Keep it below the token lifetime.
   */
  tokenRefreshMs?: number;
}

/** Below the 6 h download-token lifetime (releases/tokens.ts). */
export const DEFAULT_TOKEN_REFRESH_MS = 4 * 3600_000;

export const DEFAULT_GATE: GateSpec = { successRatio: 1, soakMs: 30 * 60_000, failureRateTolerance: 0.05 };

export interface FleetTerminal {
  id: string;
  type: string;
  /** Node ids from the terminal's station up to the city: [station, district, city]. */
  ancestors: string[];
}

/** What the hub knows of a terminal's health now, relative to `since` (its commit time). */
export interface HealthSample {
  online: boolean;
  /** A peripheral went into fault after `since`. */
  newPeripheralFault: boolean;
  appAlive: boolean;
  /** Transaction failure rate since `since`, and in the same span before the update; null when unknown. */
  failureRate: number | null;
  baselineFailureRate: number | null;
}

// ------------------------------------------------------------------ state

export type Phase = 'pending' | 'targeted' | UpdateState | 'soaked' | 'unhealthy' | 'cancelled';

export interface TerminalProgress {
  wave: number;
  phase: Phase;
  /** When the terminal was first sent the target (the in-flight limit counts from here). */
  targetedAt: number | null;
  /** When the target (and its token) was last sent. */
  sentAt?: number | null;
  committedAt: number | null;
  /** `text`: the hub's own verdict as a catalogue sentence; an agent's error is rendered from its `code`. */
  error: { code: string; message: string; text?: Text } | null;
}

export interface Reason {
  code: 'wave-gate-failed' | 'wave-timeout' | 'manual';
  /** English; `text` is the same sentence as a code with parameters (protocol's TEXTS) for other languages. */
  message: string;
  /** Absent in reasons stored before codes existed: readers show `message`. */
  text?: Text;
  terminals?: { id: string; code: string }[];
}

export interface RolloutState {
  status: 'running' | 'paused' | 'aborted' | 'completed';
  /** Index of the current wave. */
  wave: number;
  waveStartedAt: number;
  pauseReason: Reason | null;
  /** Waves passed, with how (gate or operator). */
  passed: { wave: number; at: number; by: 'gate' | 'operator' }[];
  terminals: Record<string, TerminalProgress>;
  createdAt: number;
  updatedAt: number;
}

export type Action =
  | { kind: 'send-target'; terminalId: string }
  | { kind: 'clear-target'; terminalId: string }
  | { kind: 'event'; event: 'wave-started' | 'wave-passed' | 'paused' | 'resumed' | 'aborted' | 'completed'; wave: number; reason?: Reason };

export interface Step {
  state: RolloutState;
  actions: Action[];
}

export class RolloutSpecError extends Error {
  override name = 'RolloutSpecError';
}

// ------------------------------------------------------------------ creation

function order(rolloutId: string, terminalId: string): string {
  return createHash('sha256').update(`${rolloutId}\0${terminalId}`).digest('hex');
}

/** Which in-scope terminal goes into which wave. Terminals in scope but in no wave are not part of the rollout. */
export function assignWaves(spec: RolloutSpec, fleet: readonly FleetTerminal[]): Map<string, number> {
  const inScope = fleet.filter(
    (t) =>
      spec.release.terminalTypes.includes(t.type) &&
      (!spec.scope.terminalTypes || spec.scope.terminalTypes.includes(t.type)) &&
      t.ancestors.some((a) => spec.scope.nodeIds.includes(a)),
  );
  const assigned = new Map<string, number>();
  spec.waves.forEach((w, i) => {
    const free = inScope.filter((t) => !assigned.has(t.id));
    let chosen: FleetTerminal[];
    switch (w.kind) {
      case 'pilot':
        chosen = free.filter((t) => (w.terminals ?? []).includes(t.id) || (w.stations ?? []).includes(t.ancestors[0] ?? ''));
        break;
      case 'share': {
        const under = free.filter((t) => t.ancestors.includes(w.nodeId)).sort((a, b) => (order(spec.id, a.id) < order(spec.id, b.id) ? -1 : 1));
        chosen = under.slice(0, Math.ceil(under.length * w.ratio));
        break;
      }
      case 'nodes':
        chosen = free.filter((t) => t.ancestors.some((a) => w.nodeIds.includes(a)));
        break;
      case 'rest':
        chosen = free;
        break;
    }
    for (const t of chosen) assigned.set(t.id, i);
  });
  return assigned;
}

export function validateSpec(spec: RolloutSpec): void {
  if (spec.waves.length === 0) throw new RolloutSpecError('waves: at least one');
  if (spec.scope.nodeIds.length === 0) throw new RolloutSpecError('scope.nodeIds: at least one node');
  if (!(spec.gate.successRatio > 0 && spec.gate.successRatio <= 1)) throw new RolloutSpecError('gate.successRatio: in (0, 1]');
  if (spec.gate.soakMs < 0) throw new RolloutSpecError('gate.soakMs: not negative');
  if (!(spec.maxInFlight >= 1)) throw new RolloutSpecError('maxInFlight: at least 1');
  spec.waves.forEach((w, i) => {
    if (w.kind === 'share' && !(w.ratio > 0 && w.ratio <= 1)) throw new RolloutSpecError(`waves.${i}.ratio: in (0, 1]`);
    if (w.kind === 'pilot' && !(w.stations?.length || w.terminals?.length)) throw new RolloutSpecError(`waves.${i}: a pilot names stations or terminals`);
  });
}

export function createRollout(spec: RolloutSpec, fleet: readonly FleetTerminal[], now: number): Step {
  validateSpec(spec);
  const assigned = assignWaves(spec, fleet);
  if (assigned.size === 0) throw new RolloutSpecError('no terminal in scope takes this release (check scope, terminal types, waves)');
  const terminals: Record<string, TerminalProgress> = {};
  for (const [id, wave] of assigned) terminals[id] = { wave, phase: 'pending', targetedAt: null, committedAt: null, error: null };
  const state: RolloutState = { status: 'running', wave: 0, waveStartedAt: now, pauseReason: null, passed: [], terminals, createdAt: now, updatedAt: now };
  const first = skipEmptyWaves(spec, state, now, []);
  return tick(spec, first.state, now, () => undefined, first.actions);
}

// ------------------------------------------------------------------ status from terminals

/** Apply an `update/status` from a terminal; statuses of other releases or rollouts are ignored. */
export function applyStatus(spec: RolloutSpec, state: RolloutState, terminalId: string, s: Pick<UpdateStatus, 'state' | 'releaseId' | 'rolloutId' | 'error'>, now: number): RolloutState {
  const t = state.terminals[terminalId];
  if (!t || s.releaseId !== spec.release.id || (s.rolloutId !== undefined && s.rolloutId !== spec.id)) return state;
  // Gate outcomes and cancellations are final for this rollout; an idle report after a cancel changes nothing.
  if (t.phase === 'soaked' || t.phase === 'unhealthy' || t.phase === 'cancelled') return state;
  const next: TerminalProgress = { ...t, phase: s.state };
  if (s.state === 'committed' && t.committedAt === null) next.committedAt = now;
  if (s.state === 'failed') next.error = s.error ?? { code: 'failed', message: 'update failed' };
  return { ...state, terminals: { ...state.terminals, [terminalId]: next }, updatedAt: now };
}

// ------------------------------------------------------------------ the tick

const IN_FLIGHT: ReadonlySet<Phase> = new Set(['targeted', 'idle', 'downloading', 'verifying']);
const NOT_STARTED: ReadonlySet<Phase> = new Set(['pending', 'targeted', 'idle', 'downloading', 'verifying', 'waiting']);

function unhealthyReason(h: HealthSample, gate: GateSpec): string | null {
  if (!h.online) return 'offline';
  if (h.newPeripheralFault) return 'peripheral-fault';
  if (!h.appAlive) return 'app-heartbeat';
  if (h.failureRate !== null && h.baselineFailureRate !== null && h.failureRate > h.baselineFailureRate + gate.failureRateTolerance) {
    return 'transaction-failures';
  }
  return null;
}

/** A reason whose English `message` is rendered from its text, so the two always say the same. */
function withText(code: Reason['code'], text: Text, more: Pick<Reason, 'terminals'> = {}): Reason {
  return { code, message: englishText(text), text, ...more };
}

function isFailure(p: TerminalProgress): boolean {
  return p.phase === 'failed' || p.phase === 'unhealthy';
}

function skipEmptyWaves(spec: RolloutSpec, state: RolloutState, now: number, actions: Action[]): Step {
  let s = state;
  while (s.wave < spec.waves.length && !Object.values(s.terminals).some((t) => t.wave === s.wave)) {
    s = { ...s, wave: s.wave + 1, waveStartedAt: now };
  }
  if (s.wave >= spec.waves.length) {
    return { state: { ...s, status: 'completed', updatedAt: now }, actions: [...actions, { kind: 'event', event: 'completed', wave: s.wave - 1 }] };
  }
  return { state: s, actions: [...actions, { kind: 'event', event: 'wave-started', wave: s.wave }] };
}

/**
 * Advance the rollout at `now`: judge soaking terminals with `health`, decide the current wave, send targets
 * within the in-flight limit. `health(id, committedAt)` returns undefined when the hub knows nothing yet.
 */
export function tick(spec: RolloutSpec, state: RolloutState, now: number, health: (terminalId: string, since: number) => HealthSample | undefined, carried: Action[] = []): Step {
  if (state.status === 'aborted' || state.status === 'completed') return { state, actions: carried };
  const actions = [...carried];
  const terminals = { ...state.terminals };

  // Soak: committed terminals must stay healthy for soakMs; one unhealthy look fails them (presence is already
  // flap-suppressed upstream, so a look is not a blip).
  for (const [id, t] of Object.entries(terminals)) {
    if (t.phase !== 'committed' || t.committedAt === null) continue;
    const h = health(id, t.committedAt);
    if (!h) continue;
    const bad = unhealthyReason(h, spec.gate);
    if (bad) {
      const text: Text = { code: 'rollout.unhealthy', params: { reason: bad } };
      terminals[id] = { ...t, phase: 'unhealthy', error: { code: bad, message: englishText(text), text } };
    }
    else if (now - t.committedAt >= spec.gate.soakMs) terminals[id] = { ...t, phase: 'soaked' };
  }
  let s: RolloutState = { ...state, terminals, updatedAt: now };

  const inWave = Object.entries(s.terminals).filter(([, t]) => t.wave === s.wave);
  const size = inWave.length;
  const failures = inWave.filter(([, t]) => isFailure(t));
  const allowedFailures = Math.floor(size * (1 - spec.gate.successRatio) + 1e-9);
  const gateReason = (): Reason =>
    withText('wave-gate-failed', {
      code: 'rollout.wave-gate-failed',
      params: { wave: s.wave + 1, name: spec.waves[s.wave]?.name ?? spec.waves[s.wave]?.kind ?? null, failed: failures.length, size, allowed: allowedFailures },
    }, { terminals: failures.map(([id, t]) => ({ id, code: t.error?.code ?? t.phase })) });
  if (s.status === 'paused' && s.pauseReason?.code === 'wave-gate-failed' && s.pauseReason.terminals?.length !== failures.length) {
    // The rest of the wave keeps reporting while paused: keep the reason complete for the operator.
    s = { ...s, pauseReason: gateReason() };
  }
  if (s.status === 'running') {
    const soaked = inWave.filter(([, t]) => t.phase === 'soaked').length;
    const needed = Math.ceil(size * spec.gate.successRatio - 1e-9);
    if (failures.length > allowedFailures) {
      const reason = gateReason();
      s = { ...s, status: 'paused', pauseReason: reason };
      actions.push({ kind: 'event', event: 'paused', wave: s.wave, reason });
    } else if (soaked >= needed) {
      s = { ...s, passed: [...s.passed, { wave: s.wave, at: now, by: 'gate' }] };
      actions.push({ kind: 'event', event: 'wave-passed', wave: s.wave });
      const next = skipEmptyWaves(spec, { ...s, wave: s.wave + 1, waveStartedAt: now }, now, actions);
      s = next.state;
      actions.splice(0, actions.length, ...next.actions);
    } else if (spec.waveTimeoutMs !== null && now - s.waveStartedAt >= spec.waveTimeoutMs) {
      const reason = withText('wave-timeout', { code: 'rollout.wave-timeout', params: { wave: s.wave + 1, minutes: Math.round(spec.waveTimeoutMs / 60_000), soaked, needed } });
      s = { ...s, status: 'paused', pauseReason: reason };
      actions.push({ kind: 'event', event: 'paused', wave: s.wave, reason });
    }
  }

  if (s.status === 'running') s = sendTargets(spec, s, now, actions);
  if (s.status === 'running' || s.status === 'paused') s = refreshTokens(spec, s, now, actions);
  return { state: s, actions };
}

/** Terminals still before their download get the target again, with a fresh token, before the old one expires. */
function refreshTokens(spec: RolloutSpec, state: RolloutState, now: number, actions: Action[]): RolloutState {
  const every = spec.tokenRefreshMs ?? DEFAULT_TOKEN_REFRESH_MS;
  let terminals: Record<string, TerminalProgress> | null = null;
  for (const [id, t] of Object.entries(state.terminals)) {
    const sent = t.sentAt ?? t.targetedAt;
    if (!IN_FLIGHT.has(t.phase) || sent === null || now - sent < every) continue;
    terminals ??= { ...state.terminals };
    terminals[id] = { ...t, sentAt: now };
    actions.push({ kind: 'send-target', terminalId: id });
  }
  return terminals ? { ...state, terminals } : state;
}

function sendTargets(spec: RolloutSpec, state: RolloutState, now: number, actions: Action[]): RolloutState {
  const terminals = { ...state.terminals };
  const inFlight = Object.values(terminals).filter((t) => IN_FLIGHT.has(t.phase) && t.targetedAt !== null && now - t.targetedAt < spec.inFlightTimeoutMs).length;
  let room = spec.maxInFlight - inFlight;
  if (room <= 0) return state;
  // Earlier waves' stragglers first, then the current wave, in a stable order.
  const candidates = Object.entries(terminals)
    .filter(([, t]) => t.phase === 'pending' && t.wave <= state.wave)
    .sort(([a, ta], [b, tb]) => ta.wave - tb.wave || (a < b ? -1 : 1));
  for (const [id, t] of candidates) {
    if (room <= 0) break;
    terminals[id] = { ...t, phase: 'targeted', targetedAt: now, sentAt: now };
    actions.push({ kind: 'send-target', terminalId: id });
    room--;
  }
  return { ...state, terminals };
}

// ------------------------------------------------------------------ operator actions

export function pause(state: RolloutState, now: number, message?: string): Step {
  if (state.status !== 'running') return { state, actions: [] };
  const reason = withText('manual', message === undefined ? { code: 'rollout.manual', params: {} } : { code: 'rollout.manual-note', params: { note: message } });
  return { state: { ...state, status: 'paused', pauseReason: reason, updatedAt: now }, actions: [{ kind: 'event', event: 'paused', wave: state.wave, reason }] };
}

/** Resume; after an automatic pause the current wave counts as passed by the operator. */
export function resume(spec: RolloutSpec, state: RolloutState, now: number, health: (terminalId: string, since: number) => HealthSample | undefined): Step {
  if (state.status !== 'paused') return { state, actions: [] };
  let s: RolloutState = { ...state, status: 'running', pauseReason: null, updatedAt: now };
  const actions: Action[] = [{ kind: 'event', event: 'resumed', wave: s.wave }];
  if (state.pauseReason && state.pauseReason.code !== 'manual') {
    s = { ...s, passed: [...s.passed, { wave: s.wave, at: now, by: 'operator' }] };
    const next = skipEmptyWaves(spec, { ...s, wave: s.wave + 1, waveStartedAt: now }, now, actions);
    if (next.state.status === 'completed') return next;
    return tick(spec, next.state, now, health, next.actions);
  }
  return tick(spec, s, now, health, actions);
}

/** Abort: clear the target of every terminal that has not begun installing; the others finish on their own. */
export function abort(state: RolloutState, now: number): Step {
  if (state.status === 'aborted' || state.status === 'completed') return { state, actions: [] };
  const terminals = { ...state.terminals };
  const actions: Action[] = [];
  for (const [id, t] of Object.entries(terminals)) {
    if (!NOT_STARTED.has(t.phase)) continue;
    if (t.phase !== 'pending') actions.push({ kind: 'clear-target', terminalId: id });
    terminals[id] = { ...t, phase: 'cancelled' };
  }
  actions.push({ kind: 'event', event: 'aborted', wave: state.wave });
  return { state: { ...state, status: 'aborted', terminals, updatedAt: now }, actions };
}

// ------------------------------------------------------------------ progress (API, event stream)

export interface WaveProgress {
  wave: number;
  name: string;
  size: number;
  counts: Partial<Record<Phase, number>>;
  passed: 'gate' | 'operator' | null;
}

export function progress(spec: RolloutSpec, state: RolloutState): WaveProgress[] {
  return spec.waves.map((w, i) => {
    const counts: Partial<Record<Phase, number>> = {};
    let size = 0;
    for (const t of Object.values(state.terminals)) {
      if (t.wave !== i) continue;
      size++;
      counts[t.phase] = (counts[t.phase] ?? 0) + 1;
    }
    return { wave: i, name: w.name ?? w.kind, size, counts, passed: state.passed.find((p) => p.wave === i)?.by ?? null };
  });
}
