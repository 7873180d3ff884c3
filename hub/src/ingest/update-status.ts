/** Progress of an update on the terminal: stored once. */
import type { UpdateStatus } from '@kiosk-fleet/protocol';
import type { IngestStore, StreamRef } from './store.ts';
import type { TxContext } from './writer.ts';

export function ingestUpdateStatus(store: IngestStore, tx: TxContext, r: StreamRef, u: UpdateStatus, done: (fresh: boolean) => void): void {
  const values = [u.rolloutId ?? null, u.releaseId ?? null, u.version ?? null, u.state, u.progress ?? null, u.error ? JSON.stringify(u.error) : null] as const;
  store.insertStream('update/status', r, [...values], (fresh) => {
    if (fresh) {
      store.bumpStream(r, 'update/status');
      // The rollouts (rollouts/hub-ports.ts attachStatusFeed) need which release and rollout, and why it failed.
      tx.emit({
        type: 'update',
        terminalId: r.terminalId,
        at: r.receivedAt,
        data: { state: u.state, version: u.version, releaseId: u.releaseId, rolloutId: u.rolloutId, error: u.error },
      });
    }
    done(fresh);
  });
}
