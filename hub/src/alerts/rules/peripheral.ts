/**
 * Peripherals in fault for longer than `peripheralFaultMinutes`: one alert per terminal listing them. Critical when
 * the ID card reader is among them (every citizen service but check-in needs it), major otherwise.
 */
import { MINUTE_MS, terminalCondition, type Condition, type Snapshot } from './types.ts';

export function peripheralRule(s: Snapshot): Condition[] {
  const out: Condition[] = [];
  for (const t of s.terminals) {
    // An offline terminal's last report is old news: the offline rule speaks for it.
    if (!t.peripherals || t.presence === 'offline') continue;
    const limit = t.thresholds.peripheralFaultMinutes * MINUTE_MS;
    const faulty = Object.entries(t.peripherals)
      .filter(([, p]) => p.status === 'fault' && s.now - p.since >= limit)
      .sort(([a], [b]) => (a === 'idCardReader' ? -1 : b === 'idCardReader' ? 1 : a.localeCompare(b)));
    if (faulty.length === 0) continue;
    out.push(
      terminalCondition(t, 'peripheral-fault', faulty.some(([id]) => id === 'idCardReader') ? 'critical' : 'major', {
        peripherals: faulty.map(([id, p]) => ({ id, since: new Date(p.since).toISOString(), code: p.code ?? null, message: p.message ?? null })),
      }),
    );
  }
  return out;
}
