/**
 * A small fleet with a month of history, written row by row through SQL into either engine, the same rows in the same
 * order (so identity ids agree): for the read stores' contract tests (queries/, summary/, reports/). Samples are
 * encoded by the ingest codec, plus a share of values that are not whole numbers after scaling, so that the averages
 * depend on how each engine adds. Not imported by production code.
 */
import { EXAMPLES, seededRandom, TERMINAL_TYPES, type Telemetry, type TerminalType } from '@kiosk-fleet/protocol';
import type { Engine } from '../db/engine.ts';
import { ensureDailyPartitions } from '../db/postgres/partitions.ts';
import { encodeSample, SAMPLE_COLUMNS } from '../store/telemetry-codec.ts';

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
/** The fixture's "now": every bucket before it is settled, so the chart cache keeps them. */
export const NOW = Date.parse('2026-11-20T12:00:00Z');
export const HISTORY_FROM = NOW - 30 * DAY;

/** Siblings sharing a prefix (GZ-YX / GZ-YXA) and a city whose id differs from GZ only in case. */
export const STATIONS = ['GZ-YX-001', 'GZ-YX-002', 'GZ-YXA-001', 'GZ-TH-001', 'gz-YX-001'];

export interface FleetTerminal {
  id: string;
  type: TerminalType;
  serial: string;
  station: string;
  state: 'active' | 'decommissioned';
  createdAt: number;
  decommissionedAt: number | null;
  presence: string | null;
  faultCount: number;
  /** Peripherals in fault. */
  faults: string[];
}

export interface Fleet {
  terminals: FleetTerminal[];
  nodes: string[];
  /** Terminals with telemetry, events and rollups. */
  busy: string[];
}

export async function insertRows(engine: Engine, table: string, rows: readonly Record<string, unknown>[]): Promise<void> {
  if (rows.length === 0) return;
  const cols = Object.keys(rows[0]!);
  if (engine.kind === 'sqlite') {
    const st = engine.db.prepare(`INSERT INTO ${table} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`);
    engine.db.transaction(() => {
      for (const r of rows) st.run(...cols.map((c) => r[c] ?? null));
    })();
    return;
  }
  const sql = engine.pg.sql;
  for (let i = 0; i < rows.length; i += 500) {
    const part = rows.slice(i, i + 500).map((r) => Object.fromEntries(cols.map((c) => [c, r[c] ?? null])));
    await sql`insert into ${sql(table)} ${sql(part as Record<string, string | number | null>[], cols)}`;
  }
}

const TYPES = Object.keys(TERMINAL_TYPES) as TerminalType[];
const PRESENCE = ['online', 'online', 'offline', 'stale', 'unknown', null] as const;

/** The fixture, generated the same way every time, written into `engine`. */
export async function fillFleet(engine: Engine): Promise<Fleet> {
  const rnd = seededRandom(18);
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  if (engine.kind === 'postgres') {
    for (const t of ['telemetry_samples', 'events'] as const) await ensureDailyPartitions(engine.pg.sql, t, HISTORY_FROM - DAY, NOW + DAY);
  }

  const nodes = new Set<string>();
  for (const st of STATIONS) {
    const parts = st.split('-');
    for (let i = 1; i <= parts.length; i++) nodes.add(parts.slice(0, i).join('-'));
  }
  const level = (id: string) => (['city', 'district', 'station'] as const)[id.split('-').length - 1]!;
  await insertRows(
    engine,
    'nodes',
    [...nodes].map((id) => ({ id, level: level(id), parent_id: id.includes('-') ? id.slice(0, id.lastIndexOf('-')) : null, name_zh: `站${id}`, name_en: id, kind: null, created_at: HISTORY_FROM - DAY })),
  );

  const terminals: FleetTerminal[] = [];
  const serials = ['SN-%1', 'sn_low', 'Serial-X', 'abc\\d'];
  STATIONS.forEach((station, si) => {
    for (let n = 1; n <= 4; n++) {
      const id = `${station}-${n}${n === 3 ? 'a' : ''}`;
      const type = TYPES[(si + n) % TYPES.length]!;
      const decommissioned = n === 4 && si % 2 === 0;
      const peripherals = TERMINAL_TYPES[type].peripherals as readonly string[];
      const faults = peripherals.filter(() => rnd() < 0.25);
      terminals.push({
        id,
        type,
        serial: `${pick(serials)}-${si}${n}`,
        station,
        state: decommissioned ? 'decommissioned' : 'active',
        createdAt: HISTORY_FROM + int(10) * DAY,
        decommissionedAt: decommissioned ? NOW - int(5) * DAY - HOUR : null,
        presence: pick(PRESENCE),
        faultCount: faults.length,
        faults,
      });
    }
  });
  await insertRows(
    engine,
    'terminals',
    terminals.map((t) => ({ id: t.id, type: t.type, serial: t.serial, station_id: t.station, state: t.state, secret_hash: 'x', created_at: t.createdAt, decommissioned_at: t.decommissionedAt })),
  );
  const statuses = ['ok', 'degraded', 'unknown'] as const;
  await insertRows(
    engine,
    'terminal_state',
    terminals
      .filter((t) => t.presence !== null)
      .map((t, i) => {
        const peripherals = Object.fromEntries(
          (TERMINAL_TYPES[t.type].peripherals as readonly string[]).map((p) => [p, { status: t.faults.includes(p) ? 'fault' : pick(statuses), since: NOW - int(DAY) }]),
        );
        return {
          terminal_id: t.id,
          presence: t.presence,
          presence_reason: 'connected',
          presence_since: NOW - int(DAY),
          flapping: i % 5 === 0 ? 1 : 0,
          boot_id: `boot${i}`,
          conn_seq: i,
          interval_s: 30,
          agent_version: '1.2.3',
          app_version: i % 3 ? '3.2.1' : null,
          uptime: 1000.5 + i,
          last_exit: null,
          last_seen_at: NOW - int(HOUR),
          last_telemetry_at: NOW - int(HOUR),
          last_telemetry_ts: NOW - int(HOUR),
          clock_skew_ms: int(100) - 50,
          host: JSON.stringify({ cpu: 12.5, tempC: 48.25 }),
          peripherals: JSON.stringify(peripherals),
          app: JSON.stringify({ up: true }),
          services: JSON.stringify((TERMINAL_TYPES[t.type].services as readonly string[]).filter(() => rnd() < 0.7)),
          fault_count: t.faultCount,
          tel_epoch: i % 4 === 0 ? null : 'epochA',
          tel_first_seq: 1,
          tel_max_seq: 100 + i,
          tel_count: 90 + i,
          tel_last_at: NOW - int(HOUR),
          last_address: `10.0.0.${i}`,
        };
      }),
  );

  const busy = terminals.filter((t) => t.state === 'active' && t.presence !== null).slice(0, 3).map((t) => t.id);
  await insertRows(
    engine,
    'streams',
    busy.flatMap((id, i) => [
      { terminal_id: id, stream: 'telemetry', epoch: 'epoch0', first_seq: 1, max_seq: 50, count: 48, last_at: NOW - 2 * DAY + i },
      { terminal_id: id, stream: 'telemetry', epoch: 'epochA', first_seq: 101, max_seq: 120, count: 20, last_at: NOW - 3 * DAY },
      { terminal_id: id, stream: 'events', epoch: 'epochA', first_seq: 1, max_seq: 9, count: 9, last_at: NOW - DAY },
    ]),
  );

  // Telemetry: two epochs for the first busy terminal (an outbox re-created), one for the others; 26 hours every 30 s.
  const epochs = busy.flatMap((id, i) => (i === 0 ? [{ id: 1, terminal_id: id, epoch: 'epoch0' }, { id: 2, terminal_id: id, epoch: 'epochA' }] : [{ id: i + 2, terminal_id: id, epoch: 'epochA' }]));
  await insertRows(engine, 'telemetry_epochs', epochs);
  const sampleCols = SAMPLE_COLUMNS.split(', ');
  const samples: Record<string, unknown>[] = [];
  const seqs = new Map<number, number>();
  for (const e of epochs) {
    for (let ts = NOW - 26 * HOUR; ts < NOW; ts += 30_000) {
      if (e.id === 1 && ts > NOW - 20 * HOUR) break; // the old epoch ends where the new one begins
      if (e.id === 2 && ts <= NOW - 20 * HOUR) continue;
      if (rnd() < 0.05) continue; // gaps
      const seq = (seqs.get(e.id) ?? 0) + 1;
      seqs.set(e.id, seq);
      const t = structuredClone(EXAMPLES.telemetry) as unknown as Telemetry;
      t.host.cpu = rnd() < 0.9 ? int(10000) / 100 : rnd() * 100;
      t.host.memUsed = rnd() < 0.5 ? 1024 * int(4_000_000) : int(4_000_000_000);
      t.host.memTotal = rnd() < 0.03 ? 0 : 4_294_967_296;
      t.host.diskUsed = int(60_000_000_000);
      t.host.tempC = rnd() < 0.1 ? null : rnd() < 0.8 ? int(900) / 10 : rnd() * 90;
      (t.peripherals as Record<string, { status: string }>).camera = { status: pick(['ok', 'fault', 'degraded']) };
      t.app = { ...t.app!, up: rnd() < 0.9, transactionsOk: int(20), transactionsFailed: int(3) };
      const values = encodeSample(t, rnd() < 0.1 ? null : ['id-card-application', 'progress-inquiry'].filter(() => rnd() < 0.7));
      const row: Record<string, unknown> = { epoch_id: e.id, ts: ts + int(1000), seq, recv_delay: int(200), skewed: rnd() < 0.02 ? 1 : 0 };
      sampleCols.forEach((c, i) => (row[c] = values[i]));
      samples.push(row);
    }
  }
  await insertRows(engine, 'telemetry_samples', samples);

  // A month of hourly rollups for the busy terminals, with holes.
  const rollups: Record<string, unknown>[] = [];
  for (const id of busy) {
    for (let hour = HISTORY_FROM; hour < NOW; hour += HOUR) {
      if (rnd() < 0.1) continue;
      const cpu = int(10000) / 100;
      rollups.push({
        terminal_id: id,
        hour,
        samples: 100 + int(20),
        cpu_min: cpu / 2,
        cpu_avg: cpu,
        cpu_max: cpu * 1.5,
        mem_pct_min: rnd() * 40,
        mem_pct_avg: rnd() * 60,
        mem_pct_max: rnd() * 100,
        disk_pct_min: 10,
        disk_pct_avg: 12.5,
        disk_pct_max: 15,
        temp_min: rnd() < 0.1 ? null : 30,
        temp_avg: rnd() < 0.1 ? null : 40.05,
        temp_max: rnd() < 0.1 ? null : 55,
        peripheral_ok: JSON.stringify({ idCardReader: 1, camera: int(5) / 4, touchscreen: 1, fingerprintScanner: rnd() < 0.8 ? 1 : 0.5 }),
        services: JSON.stringify({ 'id-card-application': int(5) / 4, 'id-card-collection': 1, 'progress-inquiry': int(3) / 2 }),
      });
    }
  }
  await insertRows(engine, 'rollups_hourly', rollups);

  // Events over the month (some on day edges), and presence transitions.
  const events: Record<string, unknown>[] = [];
  const kinds = ['peripheral.fault', 'peripheral.recovered', 'app.crash'];
  for (const id of busy) {
    for (let i = 0; i < 200; i++) {
      const ts = HISTORY_FROM + int(30) * DAY + (rnd() < 0.1 ? 0 : int(DAY));
      events.push({
        terminal_id: id,
        epoch: 'epochA',
        seq: i + 1,
        ts,
        received_at: ts + int(500),
        skewed: 0,
        kind: pick(kinds),
        severity: pick(['info', 'warning', 'critical']),
        peripheral: rnd() < 0.5 ? 'camera' : null,
        code: rnd() < 0.5 ? 'E_X' : null,
        message: rnd() < 0.5 ? 'it broke' : null,
        data: rnd() < 0.3 ? JSON.stringify({ n: i }) : null,
      });
    }
  }
  await insertRows(engine, 'events', events);

  const transitions: Record<string, unknown>[] = [];
  for (const t of terminals) {
    let state = 'unknown';
    for (let at = t.createdAt + int(HOUR); at < NOW; at += int(3 * DAY)) {
      const next = state === 'online' ? pick(['offline', 'stale']) : 'online';
      transitions.push({ terminal_id: t.id, at, from_state: state, to_state: next, reason: 'connected', boot_id: null, conn_seq: null, address: next === 'online' ? '10.1.1.1' : null });
      state = next;
    }
  }
  transitions.sort((a, b) => (a.at as number) - (b.at as number));
  await insertRows(engine, 'presence_transitions', transitions);

  await insertRows(engine, 'maintenance', [
    { target_kind: 'node', target_id: 'GZ-YX', node_id: 'GZ-YX', reason: 'power', starts_at: NOW - 5 * DAY, ends_at: NOW - 5 * DAY + 3 * HOUR, created_by: 'test', created_at: HISTORY_FROM },
    { target_kind: 'terminal', target_id: busy[0]!, node_id: 'GZ-YX-001', reason: 'screen', starts_at: NOW - 2 * DAY, ends_at: NOW - 2 * DAY + HOUR, created_by: 'test', created_at: HISTORY_FROM },
  ]);
  return { terminals, nodes: [...nodes].sort(), busy };
}
