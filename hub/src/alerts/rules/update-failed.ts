/** The terminal's latest update status is `failed` (it rolled back or could not install). Clears on the next status. */
import { terminalCondition, type Condition, type Snapshot } from './types.ts';

export function updateFailedRule(s: Snapshot): Condition[] {
  const byId = new Map(s.terminals.map((t) => [t.id, t]));
  const out: Condition[] = [];
  for (const f of s.failedUpdates) {
    const t = byId.get(f.terminalId);
    if (!t) continue;
    out.push(
      terminalCondition(t, 'update-failed', 'major', {
        version: f.version,
        error: f.error,
        at: new Date(f.at).toISOString(),
      }),
    );
  }
  return out;
}
