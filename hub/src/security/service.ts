/**
 * What the broker's security trackers (ingest/quota.ts: flooding; broker/takeover.ts: credentials in use from two
 * addresses) hand to the rest of the hub: stored in terminal_state, announced as a `security` change after the write
 * committed, and judged by the alert rules (alerts/rules/flooding.ts, credential-reuse.ts).
 *
 * The writes are rare (a tracker's state changing), so each is its own short write, not a job of ingest's batch
 * writer; they run one after the other, so a flag set and cleared at once ends cleared on every engine.
 */
import type { Change } from '../ingest/writer.ts';
import type { Logger } from '../log.ts';
import type { SecurityFlag, SecurityStore } from './store.ts';

export class SecurityState {
  #last: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: SecurityStore,
    private readonly emit: (changes: Change[]) => void,
    private readonly log: Logger,
  ) {}

  /**
   * What a previous run left flagged (parsed), for the in-memory trackers to carry on with: a restart neither forgets
   * a hold-off nor resolves a security alert by itself; a flag nothing renews ends after its quiet time.
   */
  async active(): Promise<{ terminalId: string; flooding: unknown; credentialConflict: unknown }[]> {
    const rows = await this.store.active();
    return rows.map((r) => ({ terminalId: r.terminalId, flooding: parse(r.flooding), credentialConflict: parse(r.credentialConflict) }));
  }

  flooding(terminalId: string, state: object | null): void {
    this.#write(terminalId, 'flooding', state);
  }

  credentialConflict(terminalId: string, state: object | null): void {
    this.#write(terminalId, 'credentialConflict', state);
  }

  /** Resolves once every write asked for so far is stored (tests, shutdown). */
  settled(): Promise<void> {
    return this.#last;
  }

  #write(terminalId: string, what: SecurityFlag, state: object | null): void {
    const json = state === null ? null : JSON.stringify(state);
    this.#last = this.#last
      .then(() => this.store.setFlag(terminalId, what, json))
      .then(
        () => this.emit([{ type: 'security', terminalId, at: Date.now(), data: { [what]: state !== null } }]),
        (err: unknown) => this.log.error({ err, terminalId }, 'security state write failed'),
      );
  }
}

function parse(s: string | null): unknown {
  if (s === null) return null;
  try {
    return JSON.parse(s) as unknown;
  } catch {
    return null;
  }
}
