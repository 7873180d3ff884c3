/**
 * Credential reuse: two clients with one terminal's credentials kick each other off (MQTT takeover by client id). In
 * the review a second client from another address and GZ-YX-001-05's agent took over from each other 12 times in
 * 25 s, and the intruder got the desired config each time, with nothing logged (issue 20, item 10).
 *
 * What counts: a takeover whose new connection comes from another address than the live one. A terminal reconnecting
 * from its own address after a network blip (its old connection still half-open) is a takeover from the same
 * address: logged, never counted. A terminal whose DHCP address changed takes over once from the new address: one
 * counted takeover, no alert. Two counted takeovers within TAKEOVER_WINDOW_MS (A → B, then B → A) mean two clients
 * hold the credentials: the conflict is stored (alert "credentials in use from two addresses"). The next takeover
 * attempt in the window from the newer address (not the one that was live when it began) is refused ("not authorized",
 * counted as `held-off`) and that address is held off for `holdOffMs`: the established terminal keeps working while an
 * operator issues a new secret. The conflict ends (its alert resolves) CONFLICT_QUIET_MS after its last takeover or
 * refused attempt.
 *
 * Which one is the intruder cannot be known; the address live before the conflict keeps the connection. An intruder
 * that connects while the terminal is offline, then holds on, is not kicked either: the alert names both addresses.
 *
 * Invariant: state exists only for terminals with a counted takeover in the window or a conflict going on (a Map
 * entry each), so the thousands of ordinary reconnects cost one Map lookup.
 */
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';

/** Two takeovers between addresses within this window make a conflict; a third from the newer one is refused. */
export const TAKEOVER_WINDOW_MS = 60_000;
export const CONFLICT_TAKEOVERS = 2;
export const CONFLICT_QUIET_MS = 10 * 60_000;

/** Stored in terminal_state.credential_conflict while a conflict goes on. */
export interface ConflictState {
  since: number;
  /** The address live when it began, then the newer one. */
  addresses: [string, string];
  takeovers: number;
  refused: number;
  heldOff: { address: string; until: number } | null;
}

interface Episode {
  established: string;
  newer: string;
  /** Counted takeovers in the window. */
  times: number[];
  last: number;
  takeovers: number;
  refused: number;
  conflictSince: number | null;
  heldOff: { address: string; until: number } | null;
}

export interface TakeoverOptions {
  /** How long the newer address is refused (0: never). */
  holdOffMs: number;
}

export class TakeoverWatch {
  readonly #episodes = new Map<string, Episode>();

  constructor(
    private readonly opts: TakeoverOptions,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly onConflict: (terminalId: string, state: ConflictState | null) => void = () => undefined,
  ) {}

  /**
   * Whether a login with valid credentials from `address` must be refused: its address is held off, or it would be
   * another takeover by the newer address of a conflict. `live`: the address of the terminal's live connection.
   */
  refuse(terminalId: string, address: string, live: string | null, now: number): boolean {
    const e = this.#episodes.get(terminalId);
    if (e === undefined) return false;
    if (e.heldOff !== null && e.heldOff.address === address) {
      if (now < e.heldOff.until) return this.#refused(e, terminalId, address, now, false);
      e.heldOff = null;
    }
    if (this.opts.holdOffMs === 0 || live === null || live === address || address === e.established || e.conflictSince === null) return false;
    prune(e.times, now);
    if (e.times.length < CONFLICT_TAKEOVERS) return false;
    e.heldOff = { address, until: now + this.opts.holdOffMs };
    return this.#refused(e, terminalId, address, now, true);
  }

  /** A new connection took over the live one (logged with both addresses, whatever they are). */
  takeover(terminalId: string, oldAddress: string, newAddress: string, now: number): void {
    const same = oldAddress === newAddress;
    this.metrics.takeovers.inc({ addresses: same ? 'same' : 'different' });
    const fields = { terminalId, oldAddress, newAddress };
    if (same) {
      this.log.info(fields, 'connection taken over by a new one from the same address');
      return;
    }
    this.log.warn(fields, 'connection taken over from another address');
    let e = this.#episodes.get(terminalId);
    if (e === undefined || (e.conflictSince === null && now - e.last > TAKEOVER_WINDOW_MS)) {
      e = { established: oldAddress, newer: newAddress, times: [], last: now, takeovers: 0, refused: 0, conflictSince: null, heldOff: null };
      this.#episodes.set(terminalId, e);
    }
    e.times.push(now);
    prune(e.times, now);
    e.last = now;
    e.takeovers++;
    if (e.conflictSince === null && e.times.length >= CONFLICT_TAKEOVERS) {
      e.conflictSince = now;
      this.log.warn({ terminalId, addresses: [e.established, e.newer], takeovers: e.takeovers }, 'credentials in use from two addresses');
      this.onConflict(terminalId, this.#state(e));
    }
  }

  /**
   * A conflict a previous run stored: its hold-off still applies, and it ends (its alert resolves) CONFLICT_QUIET_MS
   * from now unless the takeovers go on.
   */
  restore(terminalId: string, c: ConflictState, now = Date.now()): void {
    if (!Array.isArray(c.addresses) || c.addresses.length !== 2 || typeof c.since !== 'number') return;
    this.#episodes.set(terminalId, {
      established: c.addresses[0],
      newer: c.addresses[1],
      times: [],
      last: now,
      takeovers: c.takeovers ?? 0,
      refused: c.refused ?? 0,
      conflictSince: c.since,
      heldOff: c.heldOff && c.heldOff.until > now ? { address: c.heldOff.address, until: c.heldOff.until } : null,
    });
  }

  /** Ends conflicts quiet for CONFLICT_QUIET_MS (and forgets single takeovers past the window); every second or so. */
  tick(now: number): void {
    for (const [id, e] of this.#episodes) {
      const held = e.heldOff !== null && now < e.heldOff.until;
      if (e.conflictSince === null) {
        if (now - e.last > TAKEOVER_WINDOW_MS && !held) this.#episodes.delete(id);
      } else if (now - e.last >= CONFLICT_QUIET_MS && !held) {
        this.#episodes.delete(id);
        this.log.info({ terminalId: id, addresses: [e.established, e.newer], takeovers: e.takeovers, refused: e.refused }, 'credential conflict over');
        this.onConflict(id, null);
      }
    }
  }

  /** The conflict of a terminal, if one goes on. */
  conflict(terminalId: string): ConflictState | null {
    const e = this.#episodes.get(terminalId);
    return e?.conflictSince != null ? this.#state(e) : null;
  }

  #refused(e: Episode, terminalId: string, address: string, now: number, started: boolean): true {
    e.refused++;
    e.last = now;
    if (started) {
      this.log.warn(
        { terminalId, address, established: e.established, until: new Date(e.heldOff!.until).toISOString() },
        'repeated takeovers: the newer address is held off; the established connection stays',
      );
      this.onConflict(terminalId, this.#state(e));
    }
    return true;
  }

  #state(e: Episode): ConflictState {
    return {
      since: e.conflictSince ?? e.last,
      addresses: [e.established, e.newer],
      takeovers: e.takeovers,
      refused: e.refused,
      heldOff: e.heldOff ? { ...e.heldOff } : null,
    };
  }
}

function prune(times: number[], now: number): void {
  while (times.length > 0 && now - times[0]! > TAKEOVER_WINDOW_MS) times.shift();
}
