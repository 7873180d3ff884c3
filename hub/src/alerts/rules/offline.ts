/** A terminal offline (or silent: stale) for longer than `offlineMinutes`. */
import { MINUTE_MS, terminalCondition, type Condition, type Snapshot } from './types.ts';

export function offlineRule(s: Snapshot): Condition[] {
  const out: Condition[] = [];
  for (const t of s.terminals) {
    if (t.presence !== 'offline' && t.presence !== 'stale') continue;
    if (t.presenceSince === null || s.now - t.presenceSince < t.thresholds.offlineMinutes * MINUTE_MS) continue;
    out.push(
      terminalCondition(t, 'offline', 'major', {
        presence: t.presence,
        reason: t.presenceReason,
        since: new Date(t.presenceSince).toISOString(),
      }),
    );
  }
  return out;
}
