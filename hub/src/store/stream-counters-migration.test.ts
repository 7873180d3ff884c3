/**
 * Upgrading a hub whose telemetry counters were kept in the `streams` table (before 0007): they are still read, and
 * new samples of the same epoch, now counted in the terminal's state row, add to them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { openDatabase } from './db.ts';
import { createFleetStore } from '../fleet/index.ts';
import { migrationsBefore, startTestHub, telemetry, topicFor } from '../test-support.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-stream-migrate-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const T = 'GZ-A-001-01';

test('telemetry counters kept in streams before 0007 still read back, and new samples of the same epoch add to them', async () => {
  const dataDir = path.join(tmp, 'data');
  const old = openDatabase(dataDir, migrationsBefore(tmp, '0007_telemetry_stream_in_state')).db;
  const registry = createFleetStore({ kind: 'sqlite', db: old });
  for (const id of ['GZ', 'GZ-A', 'GZ-A-001']) await registry.createNode({ id, name: { zh: id, en: id } });
  await registry.insertTerminal({ id: T, type: 'id-card', serial: 'SN1', station: 'GZ-A-001' }, 'test');
  const at = Date.now() - 60_000;
  const stream = old.prepare('INSERT INTO streams (terminal_id, stream, epoch, first_seq, max_seq, count, last_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
  stream.run(T, 'telemetry', 'epochAAAA1', 1, 10, 9, at - 1000);
  stream.run(T, 'telemetry', 'epochAAAA0', 1, 3, 3, at - 2000);
  stream.run(T, 'events', 'epochAAAA1', 1, 2, 2, at);
  old.close();

  const hub = await startTestHub({}, dataDir, { engine: 'sqlite' }); // a SQLite file written by an older version
  try {
    const c = await hub.connect(T, await hub.registry.rotateSecret(T));
    for (const seq of [11, 12]) await c.publishAsync(topicFor(T, 'telemetry'), telemetry(seq, {}, 'epochAAAA1'), { qos: 1 });
    await c.endAsync();
    const detail = (await (await hub.api(`/api/v1/terminals/${T}`)).json()) as {
      streams: { stream: string; epoch: string; firstSeq: number; maxSeq: number; count: number; missing: number }[];
    };
    expect(detail.streams).toHaveLength(3);
    expect(detail.streams[0]).toMatchObject({ stream: 'telemetry', epoch: 'epochAAAA1', firstSeq: 1, maxSeq: 12, count: 11, missing: 1 });
    expect(detail.streams).toContainEqual(expect.objectContaining({ stream: 'events', epoch: 'epochAAAA1', count: 2 }));
    expect(detail.streams).toContainEqual(expect.objectContaining({ stream: 'telemetry', epoch: 'epochAAAA0', firstSeq: 1, maxSeq: 3, count: 3 }));
    expect(hub.db.prepare('SELECT tel_epoch, tel_count FROM terminal_state WHERE terminal_id = ?').get(T)).toEqual({ tel_epoch: 'epochAAAA1', tel_count: 2 });
  } finally {
    await hub.stop();
  }
});
