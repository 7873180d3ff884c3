/** Applied config behind the desired one (or rejected) for longer than `driftMinutes`. */
import { MINUTE_MS, terminalCondition, type Condition, type Snapshot } from './types.ts';

export function driftRule(s: Snapshot): Condition[] {
  const byId = new Map(s.terminals.map((t) => [t.id, t]));
  const out: Condition[] = [];
  for (const d of s.drift) {
    const t = byId.get(d.terminalId);
    if (!t || s.now - d.since < t.thresholds.driftMinutes * MINUTE_MS) continue;
    out.push(
      terminalCondition(t, 'config-drift', d.status === 'rejected' ? 'major' : 'minor', {
        desiredVersion: d.desiredVersion,
        appliedVersion: d.appliedVersion,
        status: d.status,
        since: new Date(d.since).toISOString(),
      }),
    );
  }
  return out;
}
