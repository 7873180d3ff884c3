/**
 * One terminal's credentials used by two clients from two addresses, which keep taking the connection over from each
 * other (broker/takeover.ts): a stolen or cloned secret. Critical: the other client gets the terminal's config and
 * commands; issue a new secret (POST /terminals/{id}/secret) once the real terminal is identified.
 */
import { terminalCondition, type Condition, type Snapshot } from './types.ts';

export function credentialReuseRule(s: Snapshot): Condition[] {
  const out: Condition[] = [];
  for (const t of s.terminals) {
    const c = t.credentialConflict;
    if (!c) continue;
    out.push(
      terminalCondition(t, 'credential-reuse', 'critical', {
        since: new Date(c.since).toISOString(),
        addresses: c.addresses,
        takeovers: c.takeovers,
        refused: c.refused,
        heldOff: c.heldOff ? { address: c.heldOff.address, until: new Date(c.heldOff.until).toISOString() } : null,
      }),
    );
  }
  return out;
}
