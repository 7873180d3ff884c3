/** A discrete terminal event (peripheral fault, paper low, app crash...): stored once. */
import type { TerminalEvent } from '@kiosk-fleet/protocol';
import type { IngestStore, Stored, StreamRef } from './store.ts';
import type { TxContext } from './writer.ts';

/** `then.stored(false)` for a duplicate. */
export function ingestEvent(store: IngestStore, r: StreamRef, e: TerminalEvent, then: Stored): void {
  store.insertStream('events', r, [e.kind, e.severity, e.peripheral ?? null, e.code ?? null, e.message ?? null, e.data ? JSON.stringify(e.data) : null], then);
}

export function eventStored(store: IngestStore, tx: TxContext, r: StreamRef, e: TerminalEvent): void {
  store.bumpStream(r, 'events');
  tx.emit({ type: 'event', terminalId: r.terminalId, at: r.receivedAt, data: { kind: e.kind, severity: e.severity, peripheral: e.peripheral } });
}
