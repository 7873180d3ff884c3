/**
 * Per-node counters of the active terminals, kept in memory so that a node's summary costs O(its children) instead of
 * loading every terminal under it. For each node (and each station) under which a terminal stands: how many are
 * online / offline / stale / unknown, how many have a peripheral in fault, how many of each type (what services the
 * node offers), and per citizen service how many online terminals can offer it now.
 *
 * Measured with `pnpm bench api` (20,000 terminals): the city summary cost the hub about 65 ms of CPU per request when
 * it read the 20,000 rows of terminals ⨝ terminal_state, parsed each one's services and looked up its child; a SQL
 * GROUP BY (child, type, presence, fault, services) over the same rows still took about 47 ms on this machine.
 *
 * Invariants:
 * - Between two writes the counters equal a count from scratch over `terminals ⨝ terminal_state` (state 'active');
 *   `node-counters.test.ts` checks this after presence, services, moves, decommissions, imports and flapping.
 * - They are a cache of the store, never a source: seeded from SQL when the hub starts, then moved by what each
 *   committed write leaves behind. Services and faults: the `telemetry` change the batch writer emits after its commit
 *   carries what was written to terminal_state. Presence: every change of terminal_state.presence is stored as a row
 *   of presence_transitions (presence/service.ts), so the rows after the last one seen are read, in order, when a
 *   `presence` change arrives and before every read; unlike the change events this includes a flapping terminal's
 *   transitions, which presence stores without broadcasting. Registry: a `terminal` change (register, import, move,
 *   decommission) re-reads that terminal's row.
 * - Writes by another connection to the same file (the `import` CLI while the hub runs) change `PRAGMA data_version`:
 *   the counters are then reloaded before the next read. On PostgreSQL, which has no such counter, the store follows
 *   presence_transitions and placements by id instead (summary/store.postgres.ts says what that does not see).
 * - Reads of the store are async: changes are applied one batch after the other (a promise chain), and every read of
 *   the counters first waits for the changes heard before it and for a look at the store (`sync`).
 */
import { isTerminalType, isUnderNode, SERVICE_IDS, servicesOfType } from '@kiosk-fleet/protocol';
import type { Change } from '../ingest/writer.ts';
import type { TerminalFilter } from '../queries/store.ts';
import type { CounterChanges, CounterRow, SummaryStore } from './store.ts';

export type PresenceKey = 'online' | 'offline' | 'stale' | 'unknown';
const PRESENCE: readonly PresenceKey[] = ['online', 'offline', 'stale', 'unknown'];

export interface NodeCounts {
  total: number;
  online: number;
  offline: number;
  stale: number;
  unknown: number;
  withFault: number;
}

interface Counts extends NodeCounts {
  /** Active terminals by type. */
  types: Map<string, number>;
  /** Online terminals by service they can offer now. */
  available: Map<string, number>;
}

interface Entry {
  station: string;
  type: string;
  presence: PresenceKey;
  faulty: boolean;
  services: readonly string[];
}

type Row = CounterRow;

export interface ServiceCount {
  service: string;
  offeredBy: number;
  availableNow: number;
  /** Stations under the node with a terminal whose type offers the service, none of which can offer it now. */
  stationsWithout: string[];
}

const RELOAD_AFTER = 1000;

const presenceOf = (p: unknown): PresenceKey => (PRESENCE.includes(p as PresenceKey) ? (p as PresenceKey) : 'unknown');

function parseServices(json: string | null): readonly string[] {
  if (json === null) return [];
  try {
    const v: unknown = JSON.parse(json);
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

const sameList = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

export class NodeCounters {
  private readonly entries = new Map<string, Entry>();
  private readonly counts = new Map<string, Counts>();
  /** Station id → the node ids it lies under, itself included (`GZ-YX-001` → GZ, GZ-YX, GZ-YX-001). */
  private readonly paths = new Map<string, string[]>();
  /**
   * Every active terminal's id in order, and per station: the terminal list pages from them (`page`). Terminal ids are
   * ASCII (TERMINAL_ID_PATTERN), so JavaScript's string order is SQLite's BINARY order.
   */
  private sorted: string[] = [];
  private readonly byStation = new Map<string, string[]>();
  /** The keys of byStation, sorted: the stations under a node are one range of it. */
  private stations: string[] = [];
  private loading = false;
  /** One array per distinct service list (a fleet has a few dozen), not one per terminal. */
  private readonly lists = new Map<string, readonly string[]>();
  /** Loaded, and nothing failed since: else everything is loaded again before the next read. */
  private loaded = false;
  /** The store's reads, one after the other. */
  private chain: Promise<unknown> = Promise.resolve();
  /** A sync queued and not yet started: readers arriving meanwhile share it. */
  private queuedSync: Promise<void> | null = null;

  constructor(private readonly store: SummaryStore) {
    // Seeded at once; a failure leaves `loaded` false, and the next read loads.
    this.serial(() => this.load()).catch(() => {});
  }

  /** Loads everything from the tables again (as after another connection wrote to the file). */
  reload(): Promise<void> {
    return this.serial(() => this.load());
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn);
    this.chain = p.catch(() => {});
    return p;
  }

  private async load(): Promise<void> {
    this.loaded = false;
    const rows = await this.store.load();
    this.entries.clear();
    this.counts.clear();
    this.byStation.clear();
    this.stations = [];
    this.loading = true;
    try {
      for (const r of rows) this.put(r);
    } finally {
      this.loading = false;
    }
    this.sorted = [...this.entries.keys()].sort();
    for (const id of this.sorted) {
      const station = this.entries.get(id)!.station;
      const ids = this.byStation.get(station);
      if (ids) ids.push(id);
      else this.byStation.set(station, [id]);
    }
    this.stations = [...this.byStation.keys()].sort();
    this.loaded = true;
  }

  /**
   * Follows the committed changes (the hub's `changes` bus). Never throws: after an error it reloads before the next
   * read. The returned promise settles once they are applied (tests wait for it; the bus does not).
   */
  apply(changes: readonly Change[]): Promise<void> {
    return this.serial(async () => {
      if (!this.loaded) return; // the load before the next read sees them
      try {
        // An import of thousands of terminals: one reload instead of a lookup per terminal.
        if (changes.length > RELOAD_AFTER && changes.filter((c) => c.type === 'terminal').length > RELOAD_AFTER) return await this.load();
        let presence = false;
        const refresh = new Set<string>();
        for (const c of changes) {
          if (c.type === 'telemetry') this.telemetry(c, refresh);
          else if (c.type === 'presence') presence = true;
          else if (c.type === 'terminal') refresh.add(c.terminalId);
        }
        // Read after the batch: a row read now is at least as new as every change above.
        if (refresh.size > 0) await this.refresh([...refresh]);
        if (presence) await this.follow(await this.store.changes());
      } catch {
        this.loaded = false; // reload before the next read
      }
    });
  }

  /** The counts of the terminals under `nodeId` and under each of `childIds`, and per service. */
  async summary(nodeId: string, childIds: readonly string[]): Promise<{ totals: NodeCounts; children: (NodeCounts & { id: string })[]; services: ServiceCount[] }> {
    await this.sync();
    const totals = this.counts.get(nodeId);
    const offered = new Map<string, number>();
    for (const [type, n] of totals?.types ?? []) {
      if (n > 0 && isTerminalType(type)) for (const sv of servicesOfType(type)) offered.set(sv, (offered.get(sv) ?? 0) + n);
    }
    // A district's total can hide a station that cannot offer a service at all (issue 24): name those stations.
    // Only the node's own range of the sorted station ids, and a Set per service: with 20,000 terminals (3,800
    // stations) offline, a list search per station made the city summary cost 320 ms of CPU (`pnpm bench postgres`).
    const without = new Map<string, Set<string>>();
    for (let i = upperBound(this.stations, nodeId, true); i < this.stations.length && this.stations[i]! < `${nodeId}.`; i++) {
      const station = this.stations[i]!;
      if (!isUnderNode(station, nodeId)) continue;
      const c = this.counts.get(station);
      for (const [type, n] of c?.types ?? []) {
        if (n <= 0 || !isTerminalType(type)) continue;
        for (const sv of servicesOfType(type)) {
          if ((c?.available.get(sv) ?? 0) > 0) continue;
          let set = without.get(sv);
          if (!set) without.set(sv, (set = new Set()));
          set.add(station);
        }
      }
    }
    return {
      totals: plain(totals),
      children: childIds.map((id) => ({ id, ...plain(this.counts.get(id)) })),
      services: SERVICE_IDS.filter((sv) => offered.has(sv)).map((service) => ({
        service,
        offeredBy: offered.get(service) ?? 0,
        availableNow: totals?.available.get(service) ?? 0,
        stationsWithout: [...(without.get(service) ?? [])],
      })),
    };
  }

  /**
   * The ids of one page of the terminal list (`limit` of them at most, in id order, after `after`), exactly those
   * queries.terminals would return; null for a filter the entries cannot answer (text search, a given peripheral in
   * fault, decommissioned terminals). CPU per call on 20,000 terminals, against queries.terminals: a district
   * (2,332) with nobody matching 0.37 against 1.1-1.4 ms, a station 0.006 against 0.05 ms, the city with nobody
   * matching 1.2-1.8 against 11-12 ms (SQL walks and joins every terminal: no index on presence or faults); a page
   * of 51 rows then costs about 0.23 ms to read either way.
   */
  async page(f: TerminalFilter): Promise<string[] | null> {
    if ((f.state ?? 'active') !== 'active' || f.q || (f.fault !== undefined && f.fault !== 'any')) return null;
    await this.sync();
    const nodes = [f.node, f.scope].filter((n): n is string => Boolean(n)).sort((a, b) => b.split('-').length - a.split('-').length);
    const under = (station: string) => nodes.every((n) => isUnderNode(station, n));
    const { after, type, presence } = f;
    const faulty = f.fault === 'any';
    const match = (id: string, e: Entry) =>
      (after === undefined || id > after) && (!type || e.type === type) && (!presence || e.presence === presence) && (!faulty || e.faulty);
    const deepest = nodes[0];
    const out: string[] = [];
    // A node with a small share of the fleet: the terminals of its stations (one range of `stations`), then sorted
    // (already in order when ids begin with their station's). Else the whole fleet in id order, up to a page.
    if (deepest !== undefined && (this.counts.get(deepest)?.total ?? 0) * 4 < this.sorted.length) {
      for (let i = upperBound(this.stations, deepest, true); i < this.stations.length && this.stations[i]! < `${deepest}.`; i++) {
        const station = this.stations[i]!;
        if (!under(station)) continue;
        for (const id of this.byStation.get(station)!) if (match(id, this.entries.get(id)!)) out.push(id);
      }
      return out.sort().slice(0, f.limit);
    }
    for (let i = after === undefined ? 0 : upperBound(this.sorted, after); i < this.sorted.length && out.length < f.limit; i++) {
      const id = this.sorted[i]!;
      const e = this.entries.get(id)!;
      if (match(id, e) && under(e.station)) out.push(id);
    }
    return out;
  }

  /** Before a read: the changes heard so far applied, and what the store saw since (or everything loaded again). */
  private sync(): Promise<void> {
    this.queuedSync ??= this.serial(async () => {
      this.queuedSync = null;
      if (!this.loaded) return this.load();
      try {
        await this.follow(await this.store.changes());
      } catch (err) {
        this.loaded = false;
        throw err;
      }
    });
    return this.queuedSync;
  }

  /** Applies what the store saw change: presence transitions in order, rows read again, or a reload. */
  private async follow(ch: CounterChanges): Promise<void> {
    if (ch.reload) return this.load();
    for (const t of ch.transitions) {
      const e = this.entries.get(t.terminalId);
      const presence = presenceOf(t.toState);
      if (e && e.presence !== presence) this.move(t.terminalId, e, { ...e, presence });
    }
    if (ch.refresh.length > 0) await this.refresh(ch.refresh);
  }

  private telemetry(c: Change, refresh: Set<string>): void {
    const e = this.entries.get(c.terminalId);
    if (!e) return;
    const d = c.data as { services?: unknown; faults?: unknown } | undefined;
    if (!Array.isArray(d?.services) || typeof d.faults !== 'number') {
      refresh.add(c.terminalId);
      return;
    }
    const faulty = d.faults > 0;
    const services = d.services as string[];
    if (faulty === e.faulty && sameList(services, e.services)) return;
    this.move(c.terminalId, e, { ...e, faulty, services: this.list(`l${services.join('\u0000')}`, () => [...services]) });
  }

  /** Re-reads these terminals' rows. */
  private async refresh(ids: readonly string[]): Promise<void> {
    const rows = new Map((await this.store.rows(ids)).map((r) => [r.id, r]));
    for (const id of ids) {
      const e = this.entries.get(id);
      if (e) {
        this.add(e, -1);
        this.entries.delete(id);
        remove(this.sorted, id);
        const list = this.byStation.get(e.station);
        if (list) remove(list, id);
      }
      const r = rows.get(id);
      if (r) this.put(r);
    }
  }

  private put(r: Row): void {
    if (r.state !== 'active') return;
    const e: Entry = {
      station: r.stationId,
      type: r.type,
      presence: presenceOf(r.presence ?? 'unknown'),
      faulty: (r.faultCount ?? 0) > 0,
      services: this.list(`j${r.services ?? ''}`, () => parseServices(r.services)),
    };
    this.entries.set(r.id, e);
    this.add(e, 1);
    if (this.loading) return;
    insert(this.sorted, r.id);
    const ids = this.byStation.get(e.station);
    if (ids) insert(ids, r.id);
    else {
      this.byStation.set(e.station, [r.id]);
      insert(this.stations, e.station);
    }
  }

  private list(key: string, make: () => readonly string[]): readonly string[] {
    let l = this.lists.get(key);
    if (!l) {
      if (this.lists.size > 10_000) this.lists.clear();
      this.lists.set(key, (l = make()));
    }
    return l;
  }

  private move(id: string, from: Entry, to: Entry): void {
    this.add(from, -1);
    this.entries.set(id, to);
    this.add(to, 1);
  }

  private add(e: Entry, by: 1 | -1): void {
    for (const node of this.pathOf(e.station)) {
      let c = this.counts.get(node);
      if (!c) this.counts.set(node, (c = { total: 0, online: 0, offline: 0, stale: 0, unknown: 0, withFault: 0, types: new Map(), available: new Map() }));
      c.total += by;
      c[e.presence] += by;
      if (e.faulty) c.withFault += by;
      c.types.set(e.type, (c.types.get(e.type) ?? 0) + by);
      // A terminal offers a service now only while it is online and its peripherals allow it.
      if (e.presence === 'online') for (const sv of e.services) c.available.set(sv, (c.available.get(sv) ?? 0) + by);
    }
  }

  /** Every node id a station lies under in the `isUnderNode` sense: each prefix ending before a `-`, and itself. */
  private pathOf(station: string): string[] {
    let p = this.paths.get(station);
    if (!p) {
      p = [];
      for (let i = station.indexOf('-'); i !== -1; i = station.indexOf('-', i + 1)) p.push(station.slice(0, i));
      p.push(station);
      this.paths.set(station, p);
    }
    return p;
  }
}

/** The index of the first element greater than `x` (or equal to it, with `orEqual`) in a sorted array. */
function upperBound(a: readonly string[], x: string, orEqual = false): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < x || (!orEqual && a[mid] === x)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function insert(a: string[], x: string): void {
  const i = upperBound(a, x);
  if (a[i - 1] !== x) a.splice(i, 0, x);
}

function remove(a: string[], x: string): void {
  const i = upperBound(a, x) - 1;
  if (a[i] === x) a.splice(i, 1);
}

function plain(c: Counts | undefined): NodeCounts {
  return c
    ? { total: c.total, online: c.online, offline: c.offline, stale: c.stale, unknown: c.unknown, withFault: c.withFault }
    : { total: 0, online: 0, offline: 0, stale: 0, unknown: 0, withFault: 0 };
}
