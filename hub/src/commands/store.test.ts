import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { transaction } from '../db/engine.ts';
import { openTestEngine, TEST_ENGINES, type TestEngine } from '../db/test-engines.ts';
import { createCommandStore, type CommandResultRow, type CommandStore, type NewCommand } from './store.ts';

/** A fresh database per test, migrated, on a machine others share: generous, never a measure of speed. */
const HOOK_TIMEOUT = 60_000;

/** What the downlink, the API and the ingest writer rely on, the same on both engines. */
describe.each(TEST_ENGINES)('command store on %s', (kind) => {
  let t: TestEngine;
  let store: CommandStore;
  beforeEach(async () => {
    t = await openTestEngine(kind);
    store = createCommandStore(t.engine);
  }, HOOK_TIMEOUT);
  afterEach(async () => {
    await t.close();
  }, HOOK_TIMEOUT);

  const T = 'GZ-YX-001-01';
  const U = 'GZ-YX-001-02';
  const cmd = (id: string, issuedAt: number, o: Partial<NewCommand> = {}): NewCommand => ({
    id,
    terminalId: T,
    name: 'ping',
    args: '{}',
    issuedAt,
    expiresAt: issuedAt + 60_000,
    createdBy: 'admin',
    ...o,
  });
  const result = (commandId: string, seq: number, o: Partial<CommandResultRow> = {}): CommandResultRow => ({
    terminalId: T,
    epoch: 'epochAAAA1',
    seq,
    ts: 1_000 + seq,
    receivedAt: 2_000 + seq,
    skewed: false,
    commandId,
    status: 'ok',
    result: '{"pong":true}',
    error: null,
    ...o,
  });

  it('stores a command pending and reads it back as stored', async () => {
    const row = await store.insert(cmd('c-1', 1_000, { name: 'reboot', args: '{"delayS":5}' }));
    const expected = {
      id: 'c-1',
      terminalId: T,
      name: 'reboot',
      args: '{"delayS":5}',
      issuedAt: 1_000,
      expiresAt: 61_000,
      status: 'pending',
      sentAt: null,
      completedAt: null,
      result: null,
      error: null,
      createdBy: 'admin',
    };
    expect(row).toEqual(expected);
    expect(await store.get('c-1')).toEqual(expected);
    expect(await store.get('c-none')).toBeUndefined();
  });

  it('marks a command sent once, and only while pending', async () => {
    await store.insert(cmd('c-1', 1_000));
    expect(await store.markSent('c-1', 1_500)).toBe(true);
    expect(await store.get('c-1')).toMatchObject({ status: 'sent', sentAt: 1_500 });
    expect(await store.markSent('c-1', 1_600)).toBe(false);
    expect((await store.get('c-1'))!.sentAt).toBe(1_500);
    expect(await store.markSent('c-none', 1_600)).toBe(false);
  });

  it('hands out a terminal\'s undelivered commands oldest first: pending or sent, not expired, not another\'s', async () => {
    await store.insert(cmd('c-3', 3_000));
    await store.insert(cmd('c-1', 1_000));
    await store.insert(cmd('c-2', 2_000));
    await store.insert(cmd('c-old', 500, { expiresAt: 900 }));
    await store.insert(cmd('c-u', 1_000, { terminalId: U }));
    await store.markSent('c-2', 2_100);
    await store.recordResults([result('c-3', 1)]);
    expect((await store.undelivered(T, 1_000)).map((c) => [c.id, c.status])).toEqual([
      ['c-1', 'pending'],
      ['c-2', 'sent'],
    ]);
    // At its expiry time a command is no longer handed out.
    expect((await store.undelivered(T, 61_000)).map((c) => c.id)).toEqual(['c-2']);
  });

  it('expires pending and sent commands at their time, once, and leaves finished ones alone', async () => {
    await store.insert(cmd('c-p', 1_000, { expiresAt: 5_000 }));
    await store.insert(cmd('c-s', 1_000, { expiresAt: 5_000, terminalId: U }));
    await store.insert(cmd('c-ok', 1_000, { expiresAt: 5_000 }));
    await store.insert(cmd('c-later', 1_000, { expiresAt: 9_000 }));
    await store.markSent('c-s', 1_100);
    await store.recordResults([result('c-ok', 1)]);
    const expired = await store.expire(5_000);
    expect(expired.sort((a, b) => a.id.localeCompare(b.id))).toEqual([
      { id: 'c-p', terminalId: T },
      { id: 'c-s', terminalId: U },
    ]);
    expect(await store.get('c-p')).toMatchObject({ status: 'expired', completedAt: 5_000 });
    expect(await store.get('c-ok')).toMatchObject({ status: 'ok', completedAt: 2_001 });
    expect(await store.get('c-later')).toMatchObject({ status: 'pending', completedAt: null });
    expect(await store.expire(5_000)).toEqual([]);
    // A sent command that expired stays expired: a late publish confirmation does not revive it.
    expect(await store.markSent('c-p', 6_000)).toBe(false);
  });

  it('lists a terminal\'s commands newest first, page by page with the last row as cursor', async () => {
    // Two at the same millisecond: the id breaks the tie, byte-wise.
    for (const [id, at] of [['c-a', 1_000], ['c-b', 2_000], ['c-c', 2_000], ['c-d', 3_000], ['c-e', 4_000]] as const) {
      await store.insert(cmd(id, at));
    }
    await store.insert(cmd('c-z', 5_000, { terminalId: U }));
    const first = await store.listByTerminal(T, null, 2);
    expect(first.map((c) => c.id)).toEqual(['c-e', 'c-d']);
    const second = await store.listByTerminal(T, { at: first[1]!.issuedAt, id: first[1]!.id }, 2);
    expect(second.map((c) => c.id)).toEqual(['c-c', 'c-b']);
    const third = await store.listByTerminal(T, { at: second[1]!.issuedAt, id: second[1]!.id }, 2);
    expect(third.map((c) => c.id)).toEqual(['c-a']);
    expect(await store.listByTerminal('GZ-none', null, 10)).toEqual([]);
    expect((await store.listByTerminal(U, null, 10)).map((c) => c.id)).toEqual(['c-z']);
  });

  it('stores each result once and completes only the reporting terminal\'s own pending or sent command', async () => {
    await store.insert(cmd('c-1', 1_000));
    await store.insert(cmd('c-2', 1_000));
    await store.insert(cmd('c-3', 1_000, { expiresAt: 1_500 }));
    await store.markSent('c-2', 1_100);
    await store.expire(1_500);
    const news = await store.recordResults([
      result('c-1', 1),
      // Another terminal claims c-2: stored as its message, but c-2 stays as it was.
      result('c-2', 1, { terminalId: U, status: 'error', result: null, error: '{"code":"x"}' }),
      // A result for a command that expired meanwhile: stored, the command stays expired.
      result('c-3', 2, { status: 'error', result: null, error: '{"code":"late"}' }),
      // The same message again (redelivered): nothing new.
      result('c-1', 1),
    ]);
    expect(news).toEqual([true, true, true, false]);
    expect(await store.get('c-1')).toMatchObject({ status: 'ok', result: '{"pong":true}', error: null, completedAt: 2_001 });
    expect(await store.get('c-2')).toMatchObject({ status: 'sent', completedAt: null, result: null });
    expect(await store.get('c-3')).toMatchObject({ status: 'expired', completedAt: 1_500, error: null });
    // In a later batch too, a redelivery is not new and changes nothing.
    expect(await store.recordResults([result('c-1', 1, { status: 'error' })])).toEqual([false]);
    expect((await store.get('c-1'))!.status).toBe('ok');
    expect(await store.recordResults([])).toEqual([]);
  });

  it('completes a command with the first of two new results in one batch', async () => {
    await store.insert(cmd('c-1', 1_000));
    expect(await store.recordResults([result('c-1', 5, { status: 'error', result: null, error: '{"code":"first"}' }), result('c-1', 6)])).toEqual([true, true]);
    expect(await store.get('c-1')).toMatchObject({ status: 'error', error: '{"code":"first"}', result: null, completedAt: 2_005 });
  });

  it('lets the owner complete its command although another terminal claimed it first in the same batch', async () => {
    await store.insert(cmd('c-1', 1_000));
    expect(await store.recordResults([result('c-1', 1, { terminalId: U, status: 'error', result: null }), result('c-1', 2)])).toEqual([true, true]);
    expect(await store.get('c-1')).toMatchObject({ status: 'ok', result: '{"pong":true}', completedAt: 2_002 });
  });

  it('writes inside the caller\'s transaction: a rolled-back batch leaves neither the result nor the completion', async () => {
    await store.insert(cmd('c-1', 1_000));
    const err = await transaction(t.engine, async (tx) => {
      expect(await store.recordResults([result('c-1', 1)], tx)).toEqual([true]);
      throw new Error('batch failed');
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('batch failed');
    expect((await store.get('c-1'))!.status).toBe('pending');
    // Not stored, so the same message later is new.
    expect(await store.recordResults([result('c-1', 1)])).toEqual([true]);
    // insert, markSent, expire and upsertTarget take the transaction too.
    await transaction(t.engine, async (tx) => {
      await store.insert(cmd('c-2', 1_000), tx);
      await store.markSent('c-2', 1_100, tx);
      await store.upsertTarget(T, '{"v":1}', 1_200, tx);
      expect((await store.expire(61_000, tx)).map((c) => c.id)).toEqual(['c-2']);
    });
    expect(await store.get('c-2')).toMatchObject({ status: 'expired', sentAt: 1_100, completedAt: 61_000 });
    expect(await store.allTargets()).toEqual([{ terminalId: T, payload: '{"v":1}' }]);
  });

  it('keeps one update target per terminal (the latest) and reads the desired configs to re-publish', async () => {
    await store.upsertTarget(T, '{"release":"a"}', 1_000);
    await store.upsertTarget(U, '{"release":"b"}', 1_000);
    await store.upsertTarget(T, '{"release":"c"}', 2_000);
    expect((await store.allTargets()).sort((a, b) => a.terminalId.localeCompare(b.terminalId))).toEqual([
      { terminalId: T, payload: '{"release":"c"}' },
      { terminalId: U, payload: '{"release":"b"}' },
    ]);
    expect(await store.targets([T, 'GZ-YX-001-99'])).toEqual([{ terminalId: T, payload: '{"release":"c"}' }]);
    expect(await store.targets([])).toEqual([]);
    expect(await store.allDesired()).toEqual([]);
    // desired_config is written by config-layers; the downlink only reads it back at start.
    const e = t.engine;
    if (e.kind === 'sqlite') e.db.prepare("INSERT INTO desired_config (terminal_id, version, config, updated_at) VALUES (?, 3, '{\"a\":1}', 5)").run(T);
    else await e.pg.sql`insert into desired_config (terminal_id, version, config, updated_at) values (${T}, 3, '{"a":1}', 5)`;
    expect(await store.allDesired()).toEqual([{ terminalId: T, version: 3, config: '{"a":1}' }]);
  });
});
