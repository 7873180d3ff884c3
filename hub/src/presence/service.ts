/**
 * Presence: online / offline / stale with a reason, from the broker's connection events, the agent's birth and will
 * messages and heartbeat staleness. State lives in terminal_state; every transition is stored.
 *
 * Invariants:
 * - Connection events decide online/offline, per connection: a connection that was taken over, or a will whose
 *   (bootId, connSeq) is not the latest birth's, never marks a terminal offline (Sparkplug's bdSeq rule).
 * - Several hubs (issue 19): the row names the hub holding the connection and the connection's generation; a
 *   connection's end writes offline only while the row still names that very connection, decided under the row's
 *   lock, so hub A's late close after the terminal moved to hub B never marks it offline. A connect is the newest
 *   word: it reads the row afresh (another hub may have written it) and writes online, a takeover when the row still
 *   said online.
 * - The reason of an offline transition can be refined once the terminal is back and says why it went away
 *   (agent crash, power loss / reboot from a new boot id with a short uptime).
 * - A terminal with more than `flapTransitions` transitions in `flapWindowMs` is flagged flapping; while it is,
 *   its transitions are still stored but not broadcast one by one.
 */
import type { Presence } from '@kiosk-fleet/protocol';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { Tx } from '../db/engine.ts';
import type { BatchWriter, TxContext } from '../ingest/writer.ts';
import type { IngestStore, StateRow } from '../ingest/store.ts';
import type { HubSelection, PresenceStore } from './store.ts';

function isSelection(w: readonly string[] | HubSelection): w is HubSelection {
  return !Array.isArray(w);
}

export type PresenceState = 'online' | 'offline' | 'stale';
export type PresenceReason =
  | 'connected'
  | 'takeover'
  | 'clean'
  | 'connection-lost'
  | 'power-loss'
  | 'reboot'
  | 'agent-crash'
  | 'agent-restart'
  | 'heartbeat-missed'
  | 'heartbeat-resumed'
  | 'hub-restart'
  | 'hub-lost'
  | 'credentials-revoked';

/** A new boot id with host uptime under this means the machine itself restarted (power loss or reboot). */
const REBOOT_UPTIME_S = 600;

export interface PresenceOptions {
  flapTransitions: number;
  flapWindowMs: number;
  /** KF_HUB_ID: written into the presence row of each connection this hub holds (default `local`). */
  hubId?: string;
}

export class PresenceService {
  /**
   * Told of each transition that is not broadcast (a flapping terminal's), inside its transaction: the alert engine
   * evaluates terminals when they change and must hear of these too.
   */
  readonly quiet = new Set<(terminalId: string) => void>();
  readonly hubId: string;
  /**
   * The next connection generation. Seeded from the clock in microseconds, so a restarted hub with the same id never
   * reuses one of its previous life's (it would need a million connections a second to catch up with the clock).
   */
  #generation = Date.now() * 1000;

  constructor(
    private readonly ingest: IngestStore,
    private readonly store: PresenceStore,
    private readonly writer: BatchWriter,
    private readonly opts: PresenceOptions,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    this.hubId = opts.hubId ?? 'local';
  }

  /** A new connection's generation (unique per hub, and with the hub id across the installation). */
  nextGeneration(): number {
    return ++this.#generation;
  }

  /** Records a transition in the caller's batch. Same-state transitions are dropped except a takeover. */
  transition(
    tx: TxContext,
    terminalId: string,
    st: StateRow,
    to: PresenceState,
    reason: PresenceReason,
    at: number,
    address: string | null = null,
  ): void {
    if (st.presence === to && reason !== 'takeover') return;
    this.ingest.transition({ terminalId, at, fromState: st.presence, toState: to, reason, bootId: st.bootId, connSeq: st.connSeq, address });
    const n = this.ingest.flapCount(terminalId, st, at - this.opts.flapWindowMs);
    const flapping = n > this.opts.flapTransitions ? 1 : 0;
    this.ingest.setPresence(terminalId, to, reason, at, flapping);
    this.metrics.presenceTransitions.inc({ state: to, reason });
    const wasFlapping = st.flapping === 1;
    st.presence = to;
    st.presenceReason = reason;
    st.presenceSince = at;
    st.flapping = flapping;
    if (flapping === 1 && wasFlapping) {
      for (const f of this.quiet) f(terminalId);
      return;
    }
    tx.emit({ type: 'presence', terminalId, at, data: { state: to, reason, flapping: flapping === 1 } });
  }

  /**
   * A connection logged in, from `address` (kept as the terminal's last address and on the transition); `gen` is its
   * generation (`nextGeneration`). The row is read afresh: another hub may have written it since it was cached. A row
   * still online (its connection on another hub, or gone with a dead hub) makes this a takeover.
   */
  connected(terminalId: string, takeover: boolean, at = Date.now(), address: string | null = null, gen = this.nextGeneration()): Promise<void> {
    return this.writer.enqueue({
      terminalId,
      prepare: () => {
        this.ingest.forget(terminalId);
        return Promise.resolve();
      },
      run: (tx) => {
        const st = this.ingest.ensureState(terminalId);
        const elsewhere = st.presence === 'online' && st.connHub != null && (st.connHub !== this.hubId || st.connGen !== gen);
        this.ingest.touch(terminalId, at);
        if (address !== null) this.ingest.setLastAddress(terminalId, address);
        this.ingest.setConnection(terminalId, this.hubId, gen);
        st.lastSeenAt = Math.max(st.lastSeenAt ?? 0, at);
        this.transition(tx, terminalId, st, 'online', takeover || elsewhere ? 'takeover' : 'connected', at, address);
      },
    });
  }

  /**
   * A connection ended. With its generation `gen`: offline only while the row still names this hub and that
   * connection (the row locked and read afresh first); without: whatever the row names (a hub of one).
   */
  disconnected(terminalId: string, reason: 'clean' | 'connection-lost' | 'credentials-revoked' | 'hub-restart', at = Date.now(), gen?: number): Promise<void> {
    return this.writer.enqueue({
      terminalId,
      prepare:
        gen === undefined
          ? undefined
          : async (t) => {
              await this.store.lockRow(terminalId, t);
              this.ingest.forget(terminalId);
            },
      run: (tx) => {
        const st = this.ingest.state(terminalId);
        if (!st || st.presence === 'offline') return;
        if (gen !== undefined && (st.connHub !== this.hubId || st.connGen !== gen)) return;
        this.transition(tx, terminalId, st, 'offline', reason, at);
      },
    });
  }

  /** The agent's birth (online) or graceful goodbye (offline), inside the ingest job (its terminal loaded). */
  presenceMessage(tx: TxContext, terminalId: string, p: Presence, receivedAt: number): void {
    const st = this.ingest.ensureState(terminalId);
    if (p.state === 'offline') {
      if (p.bootId === st.bootId && p.connSeq === st.connSeq) {
        this.transition(tx, terminalId, st, 'offline', p.reason === 'connection-lost' ? 'connection-lost' : 'clean', receivedAt);
      }
      return;
    }
    if (st.bootId !== null && p.bootId !== st.bootId) {
      const why: PresenceReason | null =
        p.lastExit?.cause === 'crash'
          ? 'agent-crash'
          : p.lastExit?.cause === 'power-loss'
            ? 'power-loss'
            : p.uptime !== undefined && p.uptime < REBOOT_UPTIME_S
              ? 'reboot'
              : p.lastExit?.cause === 'clean'
                ? null
                : 'agent-restart';
      if (why) this.ingest.refineLastOffline(terminalId, why);
    }
    const skew = Date.parse(p.ts) - receivedAt;
    this.ingest.birth(terminalId, {
      bootId: p.bootId,
      connSeq: p.connSeq,
      intervalS: p.interval,
      agentVersion: p.agentVersion,
      appVersion: p.appVersion ?? null,
      uptime: p.uptime ?? null,
      lastExit: p.lastExit ? JSON.stringify(p.lastExit) : null,
      clockSkewMs: skew,
      at: receivedAt,
    });
    st.bootId = p.bootId;
    st.connSeq = p.connSeq;
    st.intervalS = p.interval;
    st.lastSeenAt = Math.max(st.lastSeenAt ?? 0, receivedAt);
    if (st.presence !== 'online') this.transition(tx, terminalId, st, 'online', 'connected', receivedAt);
    else tx.emit({ type: 'presence', terminalId, at: receivedAt, data: { state: 'online', bootId: p.bootId } });
  }

  /** A last will: true when it is stale (another connection or a newer birth), so it must be ignored. */
  isStaleWill(terminalId: string, p: Presence): boolean {
    const st = this.ingest.peek(terminalId);
    return !st || st.bootId !== p.bootId || st.connSeq !== p.connSeq;
  }

  /** A message arrived from the terminal: a stale terminal is alive again. */
  activity(tx: TxContext, terminalId: string, st: StateRow, at: number): void {
    this.ingest.touch(terminalId, at);
    st.lastSeenAt = Math.max(st.lastSeenAt ?? 0, at);
    if (st.presence === 'stale') this.transition(tx, terminalId, st, 'online', 'heartbeat-resumed', at);
  }

  /** Online terminals silent for 3 of their declared intervals become stale. */
  checkStale(now = Date.now()): Promise<void> {
    let ids: string[] = [];
    return this.writer.enqueue({
      prepare: async (t) => (ids = await this.store.staleCandidates(now, t)),
      run: (tx) => {
        for (const terminalId of ids) {
          const st = this.ingest.state(terminalId);
          // last_seen_at in the table lags the batch being written; the cached row has this batch's messages too.
          const seen = Math.max(st?.lastSeenAt ?? 0, st?.presenceSince ?? 0);
          if (st && st.presence === 'online' && seen < now - 3000 * (st.intervalS ?? 60)) {
            this.transition(tx, terminalId, st, 'stale', 'heartbeat-missed', now);
          }
        }
      },
    });
  }

  /**
   * At start nobody is connected here yet: whoever this hub's last run left online went offline with it. SQLite: one
   * hub per data dir (its lock), so every row left online was that run's, whatever its id was. PostgreSQL: the rows
   * naming this hub (or none); other hubs' terminals are theirs, and a dead hub's are the reaper's.
   */
  hubStarted(now = Date.now()): Promise<void> {
    return this.writer.enqueue({
      prepare: async (t, tx) => {
        const n =
          this.ingest.engine === 'sqlite'
            ? await this.#offline(t, tx, await this.store.online(t), 'hub-restart', now)
            : await this.#offline(t, tx, { hubs: [this.hubId], unnamed: true }, 'hub-restart', now);
        if (n > 0) this.log.info({ terminals: n }, 'marked terminals offline left online by the previous run');
      },
      run: () => undefined,
    });
  }

  /**
   * The hub is stopping: every terminal it served goes offline at once (one job instead of one per connection), unless
   * its row names another hub's connection by now.
   */
  hubStopping(terminalIds: readonly string[], now = Date.now()): Promise<void> {
    return this.writer.enqueue({
      prepare: async (t, tx) => {
        await this.#offline(t, tx, { hubs: [this.hubId], terminals: terminalIds }, 'hub-restart', now);
      },
      run: () => undefined,
    });
  }

  /**
   * This hub's lease had lapsed (registry.ts): a reaper may have taken its terminals offline (`hub-lost`) while they
   * stayed connected here. Those whose rows still name their connection here are online again.
   */
  reclaim(conns: readonly { terminalId: string; gen: number }[], at = Date.now()): Promise<void> {
    const jobs = conns.map((c) =>
      this.writer.enqueue({
        terminalId: c.terminalId,
        prepare: async (t) => {
          await this.store.lockRow(c.terminalId, t);
          this.ingest.forget(c.terminalId);
        },
        run: (tx) => {
          const st = this.ingest.state(c.terminalId);
          if (!st || st.presence !== 'offline' || st.connHub !== this.hubId || st.connGen !== c.gen) return;
          this.transition(tx, c.terminalId, st, 'online', 'connected', at);
        },
      }),
    );
    return Promise.all(jobs).then(() => undefined);
  }

  /**
   * Dead hubs (their lease ran out): the terminals whose rows still name one of them go offline with reason
   * `hub-lost`; those connected elsewhere by now name another hub and are left alone. Returns how many went offline.
   */
  hubLost(hubIds: readonly string[], now = Date.now()): Promise<number> {
    let n = 0;
    if (hubIds.length === 0) return Promise.resolve(0);
    return this.writer
      .enqueue({
        prepare: async (t, tx) => {
          n = await this.#offline(t, tx, { hubs: hubIds }, 'hub-lost', now);
        },
        run: () => undefined,
      })
      .then(() => n);
  }

  /**
   * `transition` to offline for many terminals, set-wise (presence/store.ts `bulkOffline`): same rows, same flapping
   * rule, same change events. Runs before the batch's other jobs (`prepare`), so their terminals' rows are read after.
   */
  async #offline(t: Tx, tx: TxContext, which: readonly string[] | HubSelection, reason: 'hub-restart' | 'hub-lost', at: number): Promise<number> {
    const since = at - this.opts.flapWindowMs;
    const rows = isSelection(which)
      ? await this.store.hubOffline(which, reason, at, since, this.opts.flapTransitions, t)
      : await this.store.bulkOffline(which, reason, at, since, this.opts.flapTransitions, t);
    for (const r of rows) {
      // the cached row (ingest) is read again from the table on its next use
      this.ingest.forget(r.terminalId);
      this.metrics.presenceTransitions.inc({ state: 'offline', reason });
      if (r.flapping && r.wasFlapping) {
        for (const f of this.quiet) f(r.terminalId);
        continue;
      }
      tx.emit({ type: 'presence', terminalId: r.terminalId, at, data: { state: 'offline', reason, flapping: r.flapping } });
    }
    return rows.length;
  }
}
