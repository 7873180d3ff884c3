/** Read-side SQL for the API: lists with filters and keyset pagination, telemetry ranges, summaries. */
import { scopeClause } from '../auth/scope.ts';
import type { Db } from './db.ts';

export interface TerminalListRow {
  id: string;
  type: string;
  serial: string;
  stationId: string;
  state: string;
  createdAt: number;
  presence: string | null;
  presenceReason: string | null;
  presenceSince: number | null;
  flapping: number | null;
  lastSeenAt: number | null;
  faultCount: number | null;
  peripherals: string | null;
  services: string | null;
}

export interface TerminalDetailRow extends TerminalListRow {
  decommissionedAt: number | null;
  bootId: string | null;
  connSeq: number | null;
  intervalS: number | null;
  agentVersion: string | null;
  appVersion: string | null;
  uptime: number | null;
  lastExit: string | null;
  lastTelemetryAt: number | null;
  lastTelemetryTs: number | null;
  clockSkewMs: number | null;
  host: string | null;
  app: string | null;
}

export interface TerminalFilter {
  node?: string | undefined;
  /** The caller's node (auth): only terminals under it; null or absent: all. */
  scope?: string | null | undefined;
  type?: string | undefined;
  presence?: string | undefined;
  /** A peripheral id, or `any`: terminals with that peripheral (any peripheral) in fault. */
  fault?: string | undefined;
  q?: string | undefined;
  state?: 'active' | 'decommissioned' | 'all' | undefined;
  after?: string | undefined;
  limit: number;
}

const LIST_COLUMNS = `t.id, t.type, t.serial, t.station_id AS stationId, t.state, t.created_at AS createdAt,
  s.presence, s.presence_reason AS presenceReason, s.presence_since AS presenceSince, s.flapping,
  s.last_seen_at AS lastSeenAt, s.fault_count AS faultCount, s.peripherals, s.services`;

export class QueryStore {
  private readonly s;

  constructor(private readonly db: Db) {
    this.s = {
      detail: db.prepare(
        `SELECT ${LIST_COLUMNS}, t.decommissioned_at AS decommissionedAt, s.boot_id AS bootId, s.conn_seq AS connSeq,
           s.interval_s AS intervalS, s.agent_version AS agentVersion, s.app_version AS appVersion, s.uptime,
           s.last_exit AS lastExit, s.last_telemetry_at AS lastTelemetryAt, s.last_telemetry_ts AS lastTelemetryTs,
           s.clock_skew_ms AS clockSkewMs, s.host, s.app
         FROM terminals t LEFT JOIN terminal_state s ON s.terminal_id = t.id WHERE t.id = ?`,
      ),
      streams: db.prepare(
        `SELECT stream, epoch, first_seq AS firstSeq, max_seq AS maxSeq, count, last_at AS lastAt FROM streams
         WHERE terminal_id = ? ORDER BY last_at DESC LIMIT 20`,
      ),
      children: db.prepare(
        'SELECT id, level, name_zh AS nameZh, name_en AS nameEn FROM nodes WHERE parent_id = ? ORDER BY id',
      ),
      underNode: db.prepare(
        `SELECT t.id, t.type, t.station_id AS stationId, s.presence, s.fault_count AS faultCount, s.services
         FROM terminals t LEFT JOIN terminal_state s ON s.terminal_id = t.id
         WHERE t.state = 'active' AND (t.station_id = ? OR t.station_id LIKE ? || '-%')`,
      ),
    };
  }

  terminals(f: TerminalFilter): TerminalListRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (f.state !== 'all') {
      where.push('t.state = ?');
      args.push(f.state ?? 'active');
    }
    for (const node of [f.node, f.scope]) {
      if (!node) continue;
      const sc = scopeClause('t.station_id', node);
      where.push(sc.sql);
      args.push(...sc.args);
    }
    if (f.type) {
      where.push('t.type = ?');
      args.push(f.type);
    }
    if (f.presence) {
      where.push("coalesce(s.presence, 'unknown') = ?");
      args.push(f.presence);
    }
    if (f.fault === 'any') where.push('s.fault_count > 0');
    else if (f.fault) {
      where.push("json_extract(s.peripherals, '$.' || ? || '.status') = 'fault'");
      args.push(f.fault);
    }
    if (f.q) {
      where.push("(t.id LIKE '%' || ? || '%' ESCAPE '\\' OR t.serial LIKE '%' || ? || '%' ESCAPE '\\')");
      const q = f.q.replace(/[\\%_]/g, (c) => `\\${c}`);
      args.push(q, q);
    }
    if (f.after) {
      where.push('t.id > ?');
      args.push(f.after);
    }
    const sql = `SELECT ${LIST_COLUMNS} FROM terminals t LEFT JOIN terminal_state s ON s.terminal_id = t.id
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY t.id LIMIT ?`;
    return this.db.prepare(sql).all(...args, f.limit) as TerminalListRow[];
  }

  terminal(id: string): TerminalDetailRow | undefined {
    return this.s.detail.get(id) as TerminalDetailRow | undefined;
  }

  streams(id: string) {
    return this.s.streams.all(id) as { stream: string; epoch: string; firstSeq: number; maxSeq: number; count: number; lastAt: number }[];
  }

  children(id: string) {
    return this.s.children.all(id) as { id: string; level: string; nameZh: string; nameEn: string }[];
  }

  underNode(id: string) {
    return this.s.underNode.all(id, id) as {
      id: string;
      type: string;
      stationId: string;
      presence: string | null;
      faultCount: number | null;
      services: string | null;
    }[];
  }

  telemetryRaw(id: string, from: number, to: number, afterId: number, limit: number) {
    return this.db
      .prepare(
        `SELECT id, seq, epoch, ts, received_at AS receivedAt, skewed, cpu, mem_used AS memUsed, mem_total AS memTotal,
           disk_used AS diskUsed, disk_total AS diskTotal, temp_c AS tempC, uptime, peripherals, app, services
         FROM telemetry WHERE terminal_id = ? AND ts >= ? AND ts < ? AND id > ? ORDER BY ts, id LIMIT ?`,
      )
      .all(id, from, to, afterId, limit) as {
      id: number;
      seq: number;
      epoch: string;
      ts: number;
      receivedAt: number;
      skewed: number;
      cpu: number;
      memUsed: number;
      memTotal: number;
      diskUsed: number;
      diskTotal: number;
      tempC: number | null;
      uptime: number;
      peripherals: string;
      app: string | null;
      services: string | null;
    }[];
  }

  telemetryBuckets(id: string, from: number, to: number, bucketMs: number, limit: number) {
    return this.db
      .prepare(
        `SELECT (ts / CAST(? AS INTEGER)) * CAST(? AS INTEGER) AS start, count(*) AS samples, min(cpu) AS cpuMin, avg(cpu) AS cpuAvg, max(cpu) AS cpuMax,
           avg(100.0 * mem_used / nullif(mem_total, 0)) AS memPctAvg, max(100.0 * mem_used / nullif(mem_total, 0)) AS memPctMax,
           avg(100.0 * disk_used / nullif(disk_total, 0)) AS diskPctAvg, max(100.0 * disk_used / nullif(disk_total, 0)) AS diskPctMax,
           min(temp_c) AS tempMin, avg(temp_c) AS tempAvg, max(temp_c) AS tempMax
         FROM telemetry WHERE terminal_id = ? AND ts >= ? AND ts < ? GROUP BY start ORDER BY start LIMIT ?`,
      )
      .all(bucketMs, bucketMs, id, from, to, limit) as Record<string, number | null>[];
  }

  rollups(id: string, from: number, to: number, limit: number) {
    return this.db
      .prepare(
        `SELECT hour, samples, cpu_min AS cpuMin, cpu_avg AS cpuAvg, cpu_max AS cpuMax, mem_pct_avg AS memPctAvg,
           mem_pct_max AS memPctMax, disk_pct_avg AS diskPctAvg, disk_pct_max AS diskPctMax, temp_min AS tempMin,
           temp_avg AS tempAvg, temp_max AS tempMax, peripheral_ok AS peripheralOk, services
         FROM rollups_hourly WHERE terminal_id = ? AND hour >= ? AND hour < ? ORDER BY hour LIMIT ?`,
      )
      .all(id, from, to, limit) as (Record<string, number | null> & { hour: number; peripheralOk: string; services: string })[];
  }

  events(id: string, from: number, to: number, beforeId: number, limit: number, kind?: string) {
    return this.db
      .prepare(
        `SELECT id, seq, epoch, ts, received_at AS receivedAt, skewed, kind, severity, peripheral, code, message, data
         FROM events WHERE terminal_id = ? AND ts >= ? AND ts < ? AND id < ? ${kind ? 'AND kind = ?' : ''}
         ORDER BY id DESC LIMIT ?`,
      )
      .all(...[id, from, to, beforeId, ...(kind ? [kind] : []), limit]) as {
      id: number;
      seq: number;
      epoch: string;
      ts: number;
      receivedAt: number;
      skewed: number;
      kind: string;
      severity: string;
      peripheral: string | null;
      code: string | null;
      message: string | null;
      data: string | null;
    }[];
  }

  presenceHistory(id: string, from: number, to: number, beforeId: number, limit: number) {
    return this.db
      .prepare(
        `SELECT id, at, from_state AS fromState, to_state AS toState, reason, boot_id AS bootId, conn_seq AS connSeq
         FROM presence_transitions WHERE terminal_id = ? AND at >= ? AND at < ? AND id < ? ORDER BY id DESC LIMIT ?`,
      )
      .all(id, from, to, beforeId, limit) as {
      id: number;
      at: number;
      fromState: string;
      toState: string;
      reason: string;
      bootId: string | null;
      connSeq: number | null;
    }[];
  }
}
