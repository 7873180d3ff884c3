/**
 * The reference fleet (fixtures/guangzhou-fleet.json, 923 terminals), cut down or scaled up to any size in the
 * import format: above 923, each station is copied (`GZ-YX-001` → `GZ-YX-001C2`, …) with its terminals, so the tree
 * keeps the reference's shape (11 districts, the same mix of terminal types per station).
 */
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './proc.ts';

interface Name {
  zh: string;
  en: string;
}
export interface FleetJson {
  city: { id: string; name: Name };
  districts: Array<{ id: string; name: Name }>;
  stations: Array<{ id: string; district: string; name: Name; kind?: string }>;
  terminals: Array<{ id: string; station: string; type: string; serial: string }>;
}

export function referenceFleet(): FleetJson {
  return JSON.parse(fs.readFileSync(path.join(ROOT, 'fixtures/guangzhou-fleet.json'), 'utf8')) as FleetJson;
}

export function scaledFleet(n: number): FleetJson {
  const ref = referenceFleet();
  const out: FleetJson = { city: ref.city, districts: ref.districts, stations: [], terminals: [] };
  const byStation = new Map<string, FleetJson['terminals']>();
  for (const t of ref.terminals) byStation.set(t.station, [...(byStation.get(t.station) ?? []), t]);
  let serial = 1;
  for (let copy = 1; out.terminals.length < n; copy++) {
    for (const s of ref.stations) {
      if (out.terminals.length >= n) break;
      const sid = copy === 1 ? s.id : `${s.id}C${copy}`;
      out.stations.push({ ...s, id: sid, name: copy === 1 ? s.name : { zh: `${s.name.zh}${copy}`, en: `${s.name.en} ${copy}` } });
      for (const t of byStation.get(s.id) ?? []) {
        if (out.terminals.length >= n) break;
        const suffix = t.id.slice(s.id.length); // "-01"
        out.terminals.push({ id: `${sid}${suffix}`, station: sid, type: t.type, serial: `BN${String(serial++).padStart(10, '0')}` });
      }
    }
  }
  return out;
}
