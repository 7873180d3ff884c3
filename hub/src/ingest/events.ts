/** A discrete terminal event (peripheral fault, paper low, app crash...): stored once. */
import type { TerminalEvent } from '@kiosk-fleet/protocol';
import { head, type IngestStore, type StreamRef } from './store.sqlite.ts';
import type { TxContext } from './writer.ts';

export function ingestEvent(store: IngestStore, tx: TxContext, r: StreamRef, e: TerminalEvent): boolean {
  const inserted = store.s.event.run(
    ...head(r),
    e.kind,
    e.severity,
    e.peripheral ?? null,
    e.code ?? null,
    e.message ?? null,
    e.data ? JSON.stringify(e.data) : null,
  ).changes;
  if (inserted === 0) return false;
  store.bumpStream(r, 'events');
  tx.emit({ type: 'event', terminalId: r.terminalId, at: r.receivedAt, data: { kind: e.kind, severity: e.severity, peripheral: e.peripheral } });
  return true;
}
