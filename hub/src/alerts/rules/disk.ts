/** Disk use above `diskPercent` (default 90 %) in the last sample. */
import { terminalCondition, type Condition, type Snapshot } from './types.ts';

export function diskRule(s: Snapshot): Condition[] {
  const out: Condition[] = [];
  for (const t of s.terminals) {
    if (!t.host || t.host.diskTotal <= 0 || t.presence === 'offline') continue;
    const pct = (100 * t.host.diskUsed) / t.host.diskTotal;
    if (pct <= t.thresholds.diskPercent) continue;
    out.push(
      terminalCondition(t, 'disk-full', pct >= 98 ? 'critical' : 'minor', {
        percent: Math.round(pct * 10) / 10,
        limit: t.thresholds.diskPercent,
      }),
    );
  }
  return out;
}
