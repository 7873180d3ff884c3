/** A discrete terminal event (peripheral fault, paper low, app crash...): stored once. */
import type { TerminalEvent } from '@kiosk-fleet/protocol';
import type { IngestStore, StreamRef } from './store.ts';
import type { TxContext } from './writer.ts';

/** `done(false)` for a duplicate. */
export function ingestEvent(store: IngestStore, tx: TxContext, r: StreamRef, e: TerminalEvent, done: (fresh: boolean) => void): void {
  const values = [e.kind, e.severity, e.peripheral ?? null, e.code ?? null, e.message ?? null, e.data ? JSON.stringify(e.data) : null] as const;
  store.insertStream('events', r, [...values], (fresh) => {
    if (fresh) {
      store.bumpStream(r, 'events');
      tx.emit({ type: 'event', terminalId: r.terminalId, at: r.receivedAt, data: { kind: e.kind, severity: e.severity, peripheral: e.peripheral } });
    }
    done(fresh);
  });
}
