/** The result of a command: stored once; the command row gets its final status (only from pending or sent). */
import type { CommandResult } from '@kiosk-fleet/protocol';
import { head, type IngestStore, type StreamRef } from './store.sqlite.ts';
import type { TxContext } from './writer.ts';

export function ingestCommandResult(store: IngestStore, tx: TxContext, r: StreamRef, c: CommandResult): boolean {
  const result = c.result ? JSON.stringify(c.result) : null;
  const error = c.error ? JSON.stringify(c.error) : null;
  const inserted = store.s.commandResult.run(...head(r), c.id, c.status, result, error).changes;
  if (inserted === 0) return false;
  store.bumpStream(r, 'commands/result');
  // A terminal can only complete its own commands (the update is keyed on terminal_id too).
  store.s.commandDone.run(c.status, result, error, r.receivedAt, c.id, r.terminalId);
  tx.emit({ type: 'command', terminalId: r.terminalId, at: r.receivedAt, data: { id: c.id, status: c.status } });
  return true;
}
