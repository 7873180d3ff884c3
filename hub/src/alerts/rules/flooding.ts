/**
 * A terminal sending more than its ingest quota (ingest/quota.ts): its messages over the limit are dropped, so one
 * alert for the terminal while it lasts (not one per message); it resolves once the terminal stayed within its quota
 * for a minute. A real agent never gets here: stolen credentials or a broken agent.
 */
import { terminalCondition, type Condition, type Snapshot } from './types.ts';

export function floodingRule(s: Snapshot): Condition[] {
  const out: Condition[] = [];
  for (const t of s.terminals) {
    const f = t.flooding;
    if (!f) continue;
    out.push(
      terminalCondition(t, 'terminal-flooding', 'major', {
        since: new Date(f.since).toISOString(),
        dropped: f.dropped,
      }),
    );
  }
  return out;
}
