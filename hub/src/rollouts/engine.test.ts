import { describe, expect, it } from 'vitest';
import {
  abort,
  applyStatus,
  assignWaves,
  createRollout,
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
} from './engine.ts';

// City GZ → districts TH, YX → stations; 4 terminals per station, id-card and endorsement types.
const fleet: FleetTerminal[] = [];
for (const [district, stations] of [['TH', ['TH-S1', 'TH-S2', 'TH-S3']], ['YX', ['YX-S1', 'YX-S2']]] as const) {
  for (const st of stations) {
    for (let i = 1; i <= 4; i++) fleet.push({ id: `${st}-T${i}`, type: i === 4 ? 'endorsement' : 'id-card', ancestors: [st, district, 'GZ'] });
  }
}

const MIN = 60_000;
function spec(over: Partial<RolloutSpec> = {}): RolloutSpec {
  return {
    id: 'r-1',
    release: { id: 'app-3.3.0', version: '3.3.0', terminalTypes: ['id-card'] },
    scope: { nodeIds: ['GZ'] },
    waves: [
      { kind: 'pilot', name: 'pilot', stations: ['TH-S1'] },
      { kind: 'share', name: 'half of Tianhe', nodeId: 'TH', ratio: 0.5 },
      { kind: 'nodes', name: 'Tianhe', nodeIds: ['TH'] },
      { kind: 'rest', name: 'city' },
    ],
    gate: { successRatio: 1, soakMs: 30 * MIN, failureRateTolerance: 0.05 },
    maxInFlight: 100,
    inFlightTimeoutMs: 60 * MIN,
    waveTimeoutMs: null,
    urgent: false,
    ...over,
  };
}

const healthy: HealthSample = { online: true, newPeripheralFault: false, appAlive: true, failureRate: 0.01, baselineFailureRate: 0.01 };
const allHealthy = (): HealthSample => healthy;
const sent = (a: Action[]): string[] => a.filter((x) => x.kind === 'send-target').map((x) => (x as { terminalId: string }).terminalId).sort();
const events = (a: Action[]): string[] => a.filter((x) => x.kind === 'event').map((x) => `${(x as { event: string }).event}:${(x as { wave: number }).wave}`);

/** Every targeted terminal reports `state` for the release. */
function report(sp: RolloutSpec, s: RolloutState, ids: string[], state: 'committed' | 'failed' | 'installing' | 'downloading' | 'waiting', now: number, code = 'health-check-failed'): RolloutState {
  let out = s;
  for (const id of ids) out = applyStatus(sp, out, id, { state, releaseId: sp.release.id, rolloutId: sp.id, ...(state === 'failed' ? { error: { code, message: code } } : {}) }, now);
  return out;
}

describe('wave assignment along the tree', () => {
  it('pilot stations, then a stable share of a district, then the district, then the rest; only matching types', () => {
    const sp = spec();
    const a = assignWaves(sp, fleet);
    const byWave = (w: number): string[] => [...a].filter(([, i]) => i === w).map(([id]) => id).sort();
    expect(byWave(0)).toEqual(['TH-S1-T1', 'TH-S1-T2', 'TH-S1-T3']);
    expect(byWave(1)).toHaveLength(3); // half of the 6 id-card terminals left in Tianhe
    expect(byWave(2)).toHaveLength(3);
    expect(byWave(3).every((id) => id.startsWith('YX'))).toBe(true);
    expect(a.has('TH-S1-T4')).toBe(false); // endorsement: the release is for id-card only
    expect(assignWaves(sp, [...fleet].reverse())).toEqual(a); // stable whatever the input order
    expect(assignWaves({ ...sp, id: 'r-2' }, fleet)).not.toEqual(a); // but differs between rollouts
  });

  it('refuses a spec that cannot work, naming the field', () => {
    expect(() => createRollout(spec({ waves: [] }), fleet, 0)).toThrow(/waves/);
    expect(() => createRollout(spec({ waves: [{ kind: 'share', nodeId: 'TH', ratio: 0 }] }), fleet, 0)).toThrow(/ratio/);
    expect(() => createRollout(spec({ scope: { nodeIds: ['NOWHERE'] } }), fleet, 0)).toThrow(RolloutSpecError);
    expect(() => createRollout(spec({ waves: [{ kind: 'pilot' }] }), fleet, 0)).toThrow(/pilot/);
  });
});

describe('gates', () => {
  it('a healthy release goes wave by wave to completion, each wave after its soak', () => {
    const sp = spec();
    let now = 0;
    let step = createRollout(sp, fleet, now);
    expect(sent(step.actions)).toEqual(['TH-S1-T1', 'TH-S1-T2', 'TH-S1-T3']);
    let s = step.state;
    const waves: string[] = [];
    for (let w = 0; w < 4; w++) {
      const targeted = Object.entries(s.terminals).filter(([, t]) => t.phase === 'targeted').map(([id]) => id);
      s = report(sp, s, targeted, 'committed', now);
      now += 10 * MIN;
      step = tick(sp, s, now, allHealthy);
      expect(events(step.actions)).toEqual([]); // soaking: not yet
      now += 25 * MIN;
      step = tick(sp, step.state, now, allHealthy);
      waves.push(...events(step.actions));
      s = step.state;
    }
    expect(waves).toEqual(['wave-passed:0', 'wave-started:1', 'wave-passed:1', 'wave-started:2', 'wave-passed:2', 'wave-started:3', 'wave-passed:3', 'completed:3']);
    expect(s.status).toBe('completed');
    expect(Object.values(s.terminals).every((t) => t.phase === 'soaked')).toBe(true);
  });

  it('a release whose health check fails on the pilot pauses the rollout after the pilot wave, saying why', () => {
    const sp = spec();
    const step = createRollout(sp, fleet, 0);
    let s = report(sp, step.state, ['TH-S1-T1', 'TH-S1-T2', 'TH-S1-T3'], 'failed', 5 * MIN);
    const r = tick(sp, s, 6 * MIN, allHealthy);
    expect(r.state.status).toBe('paused');
    expect(r.state.pauseReason).toMatchObject({ code: 'wave-gate-failed', terminals: [{ id: 'TH-S1-T1', code: 'health-check-failed' }, { id: 'TH-S1-T2' }, { id: 'TH-S1-T3' }] });
    expect(sent(r.actions)).toEqual([]);
    s = tick(sp, r.state, 60 * MIN, allHealthy).state;
    expect(Object.values(s.terminals).filter((t) => t.wave > 0).every((t) => t.phase === 'pending')).toBe(true);
  });

  it('pauses at the first failure beyond the allowance and keeps the reason complete as the wave reports', () => {
    const sp = spec();
    let s = report(sp, createRollout(sp, fleet, 0).state, ['TH-S1-T1'], 'failed', 1);
    s = tick(sp, s, 2, allHealthy).state;
    expect(s.pauseReason?.terminals).toEqual([{ id: 'TH-S1-T1', code: 'health-check-failed' }]);
    s = report(sp, s, ['TH-S1-T2'], 'failed', 3, 'boot-loop');
    const r = tick(sp, s, 4, allHealthy);
    expect(r.state.pauseReason?.terminals).toEqual([{ id: 'TH-S1-T1', code: 'health-check-failed' }, { id: 'TH-S1-T2', code: 'boot-loop' }]);
    expect(events(r.actions)).toEqual([]); // no second pause event
  });

  it('fails the soak on each health signal: offline, new peripheral fault, dead app heartbeat, worse failure rate', () => {
    const cases: [Partial<HealthSample>, string][] = [
      [{ online: false }, 'offline'],
      [{ newPeripheralFault: true }, 'peripheral-fault'],
      [{ appAlive: false }, 'app-heartbeat'],
      [{ failureRate: 0.2, baselineFailureRate: 0.02 }, 'transaction-failures'],
    ];
    for (const [bad, code] of cases) {
      const sp = spec();
      const st = report(sp, createRollout(sp, fleet, 0).state, ['TH-S1-T1', 'TH-S1-T2', 'TH-S1-T3'], 'committed', 0);
      const r = tick(sp, st, 5 * MIN, (id) => (id === 'TH-S1-T2' ? { ...healthy, ...bad } : healthy));
      expect(r.state.status).toBe('paused');
      expect(r.state.terminals['TH-S1-T2']).toMatchObject({ phase: 'unhealthy', error: { code } });
    }
    // within tolerance is fine
    const sp = spec();
    const st = report(sp, createRollout(sp, fleet, 0).state, ['TH-S1-T1', 'TH-S1-T2', 'TH-S1-T3'], 'committed', 0);
    expect(tick(sp, st, 5 * MIN, () => ({ ...healthy, failureRate: 0.05, baselineFailureRate: 0.02 })).state.status).toBe('running');
  });

  it('a success ratio below 1 tolerates that many failures', () => {
    const sp = spec({ gate: { successRatio: 0.6, soakMs: 0, failureRateTolerance: 0.05 } });
    let s = createRollout(sp, fleet, 0).state;
    s = report(sp, s, ['TH-S1-T1'], 'failed', 0);
    s = report(sp, s, ['TH-S1-T2', 'TH-S1-T3'], 'committed', 0);
    const r = tick(sp, s, 1, allHealthy);
    expect(events(r.actions)).toContain('wave-passed:0');
  });

  it('pauses a wave that does not pass in time, when a timeout is set', () => {
    const sp = spec({ waveTimeoutMs: 120 * MIN });
    const s = createRollout(sp, fleet, 0).state;
    expect(tick(sp, s, 119 * MIN, allHealthy).state.status).toBe('running');
    expect(tick(sp, s, 120 * MIN, allHealthy).state.pauseReason).toMatchObject({ code: 'wave-timeout' });
  });
});

describe('in-flight limit', () => {
  it('never has more downloads in flight than the limit, and frees the slot of a silent terminal', () => {
    const sp = spec({ waves: [{ kind: 'rest' }], maxInFlight: 4, inFlightTimeoutMs: 30 * MIN });
    let step = createRollout(sp, fleet, 0);
    expect(sent(step.actions)).toHaveLength(4);
    const first = sent(step.actions);
    let s = report(sp, step.state, first.slice(0, 2), 'downloading', 1);
    step = tick(sp, s, 2, allHealthy);
    expect(sent(step.actions)).toEqual([]);
    s = report(sp, step.state, first.slice(0, 2), 'installing', 3); // downloaded: no longer using the link
    step = tick(sp, s, 4, allHealthy);
    expect(sent(step.actions)).toHaveLength(2);
    // the other two never answer: after the timeout their slots are freed
    step = tick(sp, step.state, 30 * MIN + 1, allHealthy);
    expect(sent(step.actions)).toHaveLength(2);
  });
});

describe('download tokens', () => {
  it('re-sends the target with a fresh token to terminals still before their download', () => {
    const sp = spec({ waves: [{ kind: 'rest' }], maxInFlight: 2, inFlightTimeoutMs: 24 * 60 * MIN, tokenRefreshMs: 240 * MIN });
    let step = createRollout(sp, fleet, 0);
    const [a, b] = sent(step.actions) as [string, string];
    const s = report(sp, step.state, [a], 'waiting', 10 * MIN); // downloaded already: needs no token
    step = tick(sp, s, 11 * MIN, allHealthy);
    const [c] = sent(step.actions) as [string]; // a's slot went to c
    step = tick(sp, step.state, 239 * MIN, allHealthy);
    expect(sent(step.actions)).toEqual([]);
    step = tick(sp, step.state, 240 * MIN, allHealthy);
    expect(sent(step.actions)).toEqual([b]); // not a (past its download), not c (sent at 11 min)
    expect(step.state.terminals[b]).toMatchObject({ targetedAt: 0, sentAt: 240 * MIN });
    step = tick(sp, step.state, 251 * MIN, allHealthy);
    expect(sent(step.actions)).toEqual([c]);
  });
});

describe('operator actions', () => {
  it('pause stops new targets; resume goes on; resume after an automatic pause accepts the wave', () => {
    const sp = spec();
    let s = createRollout(sp, fleet, 0).state;
    let r = pause(s, 1, 'checking a complaint');
    expect(r.state.pauseReason).toMatchObject({ code: 'manual', message: 'checking a complaint' });
    s = report(sp, r.state, ['TH-S1-T1', 'TH-S1-T2', 'TH-S1-T3'], 'committed', 1);
    r = tick(sp, s, 60 * MIN, allHealthy);
    expect(r.state.status).toBe('paused');
    expect(sent(r.actions)).toEqual([]);
    r = resume(sp, r.state, 61 * MIN, allHealthy);
    expect(r.state.status).toBe('running');
    expect(events(r.actions)).toEqual(['resumed:0', 'wave-passed:0', 'wave-started:1']);
    expect(sent(r.actions)).toHaveLength(3);

    const failing = report(sp, createRollout(sp, fleet, 0).state, ['TH-S1-T1'], 'failed', 0);
    const paused = tick(sp, failing, 1, allHealthy).state;
    expect(paused.status).toBe('paused');
    const accepted = resume(sp, paused, 2, allHealthy);
    expect(accepted.state.passed).toEqual([{ wave: 0, at: 2, by: 'operator' }]);
    expect(accepted.state.wave).toBe(1);
  });

  it('abort clears targets that have not begun installing and lets the others finish; nothing is sent after', () => {
    const sp = spec({ waves: [{ kind: 'rest' }] });
    let s = createRollout(sp, fleet, 0).state;
    const ids = Object.keys(s.terminals).sort();
    s = report(sp, s, ids.slice(0, 2), 'installing', 1);
    s = report(sp, s, ids.slice(2, 3), 'committed', 1);
    s = report(sp, s, ids.slice(3, 4), 'downloading', 1);
    const r = abort(s, 2);
    expect(r.state.status).toBe('aborted');
    const cleared = r.actions.filter((a) => a.kind === 'clear-target').map((a) => (a as { terminalId: string }).terminalId).sort();
    expect(cleared).toEqual(ids.slice(3).sort());
    expect(r.state.terminals[ids[0]!]!.phase).toBe('installing');
    expect(r.state.terminals[ids[2]!]!.phase).toBe('committed');
    // the installing ones report their end; the rollout records it but sends nothing
    const after = report(sp, r.state, ids.slice(0, 1), 'failed', 3);
    expect(after.terminals[ids[0]!]!.phase).toBe('failed');
    expect(tick(sp, after, 4, allHealthy).actions).toEqual([]);
    // a late report from a cancelled terminal changes nothing
    expect(report(sp, after, [ids[5]!], 'downloading', 5).terminals[ids[5]!]!.phase).toBe('cancelled');
  });

  it('ignores statuses of other releases and rollouts, and reports progress per wave', () => {
    const sp = spec();
    const s = createRollout(sp, fleet, 0).state;
    expect(applyStatus(sp, s, 'TH-S1-T1', { state: 'committed', releaseId: 'app-9.9.9', rolloutId: 'r-1' }, 1)).toBe(s);
    expect(applyStatus(sp, s, 'TH-S1-T1', { state: 'committed', releaseId: 'app-3.3.0', rolloutId: 'r-other' }, 1)).toBe(s);
    expect(applyStatus(sp, s, 'NOT-IN-ROLLOUT', { state: 'committed', releaseId: 'app-3.3.0' }, 1)).toBe(s);
    const p = progress(sp, report(sp, s, ['TH-S1-T1'], 'committed', 1));
    expect(p[0]).toMatchObject({ name: 'pilot', size: 3, counts: { committed: 1, targeted: 2 }, passed: null });
    expect(p[3]!.counts).toEqual({ pending: p[3]!.size });
  });
});
