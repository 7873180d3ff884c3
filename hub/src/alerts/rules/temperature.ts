/** Temperature above `temperatureC` in the last sample. */
import { terminalCondition, type Condition, type Snapshot } from './types.ts';

export function temperatureRule(s: Snapshot): Condition[] {
  const out: Condition[] = [];
  for (const t of s.terminals) {
    const temp = t.host?.tempC;
    if (temp === null || temp === undefined || t.presence === 'offline' || temp <= t.thresholds.temperatureC) continue;
    out.push(terminalCondition(t, 'temperature', 'major', { tempC: temp, limit: t.thresholds.temperatureC }));
  }
  return out;
}
