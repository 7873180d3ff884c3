/** The result of a command: stored once; the command row gets its final status (only from pending or sent). */
import type { CommandResult } from '@kiosk-fleet/protocol';
import type { IngestStore, Stored, StreamRef } from './store.ts';
import type { TxContext } from './writer.ts';

const json = (v: unknown) => (v ? JSON.stringify(v) : null);

export function ingestCommandResult(store: IngestStore, r: StreamRef, c: CommandResult, then: Stored): void {
  store.insertStream('commands/result', r, [c.id, c.status, json(c.result), json(c.error)], then);
}

export function commandResultStored(store: IngestStore, tx: TxContext, r: StreamRef, c: CommandResult): void {
  store.bumpStream(r, 'commands/result');
  // A terminal can only complete its own commands (the update is keyed on terminal_id too).
  store.commandDone(r.terminalId, c.id, c.status, json(c.result), json(c.error), r.receivedAt);
  tx.emit({ type: 'command', terminalId: r.terminalId, at: r.receivedAt, data: { id: c.id, status: c.status } });
}
