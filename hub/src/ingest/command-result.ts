/** The result of a command: stored once; the command row gets its final status (only from pending or sent). */
import type { CommandResult } from '@kiosk-fleet/protocol';
import type { IngestStore, StreamRef } from './store.ts';
import type { TxContext } from './writer.ts';

export function ingestCommandResult(store: IngestStore, tx: TxContext, r: StreamRef, c: CommandResult, done: (fresh: boolean) => void): void {
  const result = c.result ? JSON.stringify(c.result) : null;
  const error = c.error ? JSON.stringify(c.error) : null;
  store.insertStream('commands/result', r, [c.id, c.status, result, error], (fresh) => {
    if (fresh) {
      store.bumpStream(r, 'commands/result');
      // A terminal can only complete its own commands (the update is keyed on terminal_id too).
      store.commandDone(r.terminalId, c.id, c.status, result, error, r.receivedAt);
      tx.emit({ type: 'command', terminalId: r.terminalId, at: r.receivedAt, data: { id: c.id, status: c.status } });
    }
    done(fresh);
  });
}
