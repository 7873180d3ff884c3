/** Progress of an update on the terminal: stored once. */
import type { UpdateStatus } from '@kiosk-fleet/protocol';
import type { IngestStore, Stored, StreamRef } from './store.ts';
import type { TxContext } from './writer.ts';

export function ingestUpdateStatus(store: IngestStore, r: StreamRef, u: UpdateStatus, then: Stored): void {
  const values = [u.rolloutId ?? null, u.releaseId ?? null, u.version ?? null, u.state, u.progress ?? null, u.error ? JSON.stringify(u.error) : null] as const;
  store.insertStream('update/status', r, [...values], then);
}

export function updateStatusStored(store: IngestStore, tx: TxContext, r: StreamRef, u: UpdateStatus): void {
  store.bumpStream(r, 'update/status');
  // The rollouts (rollouts/hub-ports.ts attachStatusFeed) need which release and rollout, and why it failed.
  tx.emit({
    type: 'update',
    terminalId: r.terminalId,
    at: r.receivedAt,
    data: { state: u.state, version: u.version, releaseId: u.releaseId, rolloutId: u.rolloutId, error: u.error },
  });
}
