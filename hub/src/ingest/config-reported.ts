/** The terminal's report of a config version applied or rejected: stored once. */
import type { ConfigReported } from '@kiosk-fleet/protocol';
import { recordConfigReport } from '../config-layers/store.sqlite.ts';
import { head, type IngestStore, type StreamRef } from '../store/ingest.ts';
import type { TxContext } from './writer.ts';

export function ingestConfigReported(store: IngestStore, tx: TxContext, r: StreamRef, c: ConfigReported): boolean {
  const inserted = store.s.configReport.run(...head(r), c.version, c.status, c.reason ?? null).changes;
  if (inserted === 0) return false;
  store.bumpStream(r, 'config/reported');
  // the sync state (desired vs applied, drift) outlives config_reports' retention
  recordConfigReport(store.db, r.terminalId, c.version, c.status, c.reason ?? null, r.receivedAt);
  tx.emit({ type: 'config', terminalId: r.terminalId, at: r.receivedAt, data: { version: c.version, status: c.status } });
  return true;
}
