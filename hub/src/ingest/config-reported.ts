/** The terminal's report of a config version applied or rejected: stored once. */
import type { ConfigReported } from '@kiosk-fleet/protocol';
import type { IngestStore, Stored, StreamRef } from './store.ts';
import type { TxContext } from './writer.ts';

export function ingestConfigReported(store: IngestStore, r: StreamRef, c: ConfigReported, then: Stored): void {
  store.insertStream('config/reported', r, [c.version, c.status, c.reason ?? null], then);
}

export function configReportedStored(store: IngestStore, tx: TxContext, r: StreamRef, c: ConfigReported): void {
  store.bumpStream(r, 'config/reported');
  // the sync state (desired vs applied, drift) outlives config_reports' retention
  store.configSync(r.terminalId, c.version, c.status, c.reason ?? null, r.receivedAt);
  tx.emit({ type: 'config', terminalId: r.terminalId, at: r.receivedAt, data: { version: c.version, status: c.status } });
}
