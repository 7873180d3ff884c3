/**
 * What the broker's security trackers (ingest/quota.ts: flooding; broker/takeover.ts: credentials in use from two
 * addresses) hand to the rest of the hub: stored in terminal_state through the batch writer, announced as a
 * `security` change after the commit, and judged by the alert rules (alerts/rules/flooding.ts, credential-reuse.ts).
 */
import type { Logger } from '../log.ts';
import type { BatchWriter } from '../ingest/writer.ts';
import type { IngestStore } from '../ingest/store.ts';
import type { SecurityStore } from '../store/security.ts';

export class SecurityState {
  constructor(
    private readonly ingest: IngestStore,
    private readonly store: SecurityStore,
    private readonly writer: BatchWriter,
    private readonly log: Logger,
  ) {}

  /**
   * What a previous run left flagged (parsed), for the in-memory trackers to carry on with: a restart neither forgets
   * a hold-off nor resolves a security alert by itself; a flag nothing renews ends after its quiet time.
   */
  active(): { terminalId: string; flooding: unknown; credentialConflict: unknown }[] {
    const rows = this.store.s.active.all() as { terminalId: string; flooding: string | null; credentialConflict: string | null }[];
    return rows.map((r) => ({ terminalId: r.terminalId, flooding: parse(r.flooding), credentialConflict: parse(r.credentialConflict) }));
  }

  flooding(terminalId: string, state: object | null): void {
    this.#write(terminalId, 'flooding', state);
  }

  credentialConflict(terminalId: string, state: object | null): void {
    this.#write(terminalId, 'credentialConflict', state);
  }

  #write(terminalId: string, what: 'flooding' | 'credentialConflict', state: object | null): void {
    const json = state === null ? null : JSON.stringify(state);
    this.writer
      .enqueue({
        terminalId,
        run: (tx) => {
          this.ingest.ensureState(terminalId);
          this.ingest.setSecurity(terminalId, what, json);
          tx.emit({ type: 'security', terminalId, at: tx.now, data: { [what]: state !== null } });
        },
      })
      .catch((err: unknown) => this.log.error({ err, terminalId }, 'security state write failed'));
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
