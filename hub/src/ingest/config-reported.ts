/** The terminal's report of a config version applied or rejected: stored once. */
import type { ConfigReported } from '@kiosk-fleet/protocol';
import type { IngestStore, StreamRef } from './store.ts';
import type { TxContext } from './writer.ts';

export function ingestConfigReported(store: IngestStore, tx: TxContext, r: StreamRef, c: ConfigReported, done: (fresh: boolean) => void): void {
  store.insertStream('config/reported', r, [c.version, c.status, c.reason ?? null], (fresh) => {
    if (fresh) {
      store.bumpStream(r, 'config/reported');
      // the sync state (desired vs applied, drift) outlives config_reports' retention
      store.configSync(r.terminalId, c.version, c.status, c.reason ?? null, r.receivedAt);
      tx.emit({ type: 'config', terminalId: r.terminalId, at: r.receivedAt, data: { version: c.version, status: c.status } });
    }
    done(fresh);
  });
}
