/**
 * The one citizens feel: a station that can no longer offer a citizen service it offers (by the protocol's catalog:
 * some terminal there is of a type that offers it), because no terminal there can offer it now. A terminal offers
 * what its last sample says only while it is online (or merely late: stale); an offline one offers nothing.
 * Terminals in maintenance and terminals that never reported are left out: a station being set up is not an outage. Critical when an ID card
 * service is lost, major otherwise.
 */
import { isTerminalType, TERMINAL_TYPES, type ServiceId } from '@kiosk-fleet/protocol';
import { alertTitle } from '../text.ts';
import type { Condition, MemberView, StationSnapshot } from './types.ts';

const CRITICAL: readonly string[] = ['id-card-application', 'id-card-collection'];

export function stationServiceRule(s: StationSnapshot): Condition[] {
  const byStation = new Map<string, MemberView[]>();
  for (const t of s.terminals) {
    if (t.services === null || t.inMaintenance || !isTerminalType(t.type)) continue;
    const list = byStation.get(t.stationId) ?? [];
    list.push(t);
    byStation.set(t.stationId, list);
  }
  const out: Condition[] = [];
  for (const [station, terms] of byStation) {
    const offered = new Set<ServiceId>();
    const available = new Set<string>();
    for (const t of terms) {
      for (const sv of TERMINAL_TYPES[t.type as keyof typeof TERMINAL_TYPES].services) offered.add(sv);
      if (t.presence === 'online' || t.presence === 'stale') for (const sv of t.services ?? []) available.add(sv);
    }
    const lost = [...offered].filter((sv) => !available.has(sv)).sort();
    if (lost.length === 0) continue;
    out.push({
      subjectKind: 'node',
      subjectId: station,
      nodeId: station,
      rule: 'station-service-lost',
      severity: lost.some((sv) => CRITICAL.includes(sv)) ? 'critical' : 'major',
      title: alertTitle('station-service-lost', station, { services: lost }),
      details: {
        services: lost,
        terminals: terms.filter((t) => lost.some((sv) => (TERMINAL_TYPES[t.type as keyof typeof TERMINAL_TYPES].services as readonly string[]).includes(sv))).map((t) => t.id)
          // by id, not in the order the members came in (a database's row order, an incremental run's): the full
          // pass and an incremental run must write the same details, or every full pass "updates" the alert
          .sort(),
      },
    });
  }
  return out;
}
