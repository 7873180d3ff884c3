import fs from 'node:fs';
import { afterAll, describe, expect, test } from 'vitest';
import { EXAMPLES, type UpdateTarget } from '@kiosk-fleet/protocol';
import { transaction } from '../db/engine.ts';
import { queryNumber, queryRows } from '../db/test-query.ts';
import { startTestHub, topicFor, until, type TestHub } from '../test-support.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function firstMessage(hub: TestHub, id: string, secret: string, kind: 'update/target' | 'config/desired') {
  const c = await hub.connect(id, secret);
  const got = new Promise<unknown>((resolve) => c.on('message', (_t, p) => resolve(JSON.parse(p.toString()))));
  await c.subscribeAsync(topicFor(id, kind), { qos: 1 });
  const v = await got;
  await c.endAsync();
  return v;
}

describe('downlink', () => {
  test('an update target survives a hub restart and reaches the terminal without being saved again', async () => {
    const h1 = await startTestHub();
    const t = await h1.terminal('GZ-T-001-01');
    await h1.downlink.setUpdateTarget(t.id, EXAMPLES['update/target'] as unknown as UpdateTarget);
    const dir = h1.dir;
    dirs.push(dir);
    await h1.close();
    const h2 = await startTestHub({}, dir);
    try {
      expect(await firstMessage(h2, t.id, t.secret, 'update/target')).toMatchObject({ release: { id: 'app-3.3.0', version: '3.3.0' } });
    } finally {
      await h2.close();
    }
    // Two hub starts: on PostgreSQL each migrates a database, seconds on a loaded machine.
  }, 30_000);

  test('a command that expires while the terminal is away is marked expired and never sent', async () => {
    const hub = await startTestHub();
    try {
      const t = await hub.terminal('GZ-T-001-02');
      const res = await hub.api(`/api/v1/terminals/${t.id}/commands`, { method: 'POST', json: { name: 'ping', expiresInSeconds: 1 } });
      const cmd = (await res.json()) as { id: string };
      await new Promise((r) => setTimeout(r, 1100));
      // The hub runs this every 5 s; calling it here keeps the test short.
      expect((await hub.downlink.expire()).map((x) => x.id)).toEqual([cmd.id]);
      const list = (await (await hub.api(`/api/v1/terminals/${t.id}/commands`)).json()) as { items: { id: string; status: string }[] };
      expect(list.items).toEqual([expect.objectContaining({ id: cmd.id, status: 'expired' })]);
      const c = await hub.connect(t.id, t.secret);
      const got: unknown[] = [];
      c.on('message', (_t, p) => got.push(p));
      await c.subscribeAsync(topicFor(t.id, 'commands'), { qos: 1 });
      await new Promise((r) => setTimeout(r, 200));
      expect(got).toEqual([]);
      await c.endAsync();
    } finally {
      await hub.stop();
    }
  });

  test('a result from another terminal cannot complete a command', async () => {
    const hub = await startTestHub();
    try {
      const a = await hub.terminal('GZ-T-001-03');
      const b = await hub.terminal('GZ-T-001-04');
      const cmd = (await (await hub.api(`/api/v1/terminals/${a.id}/commands`, { method: 'POST', json: { name: 'ping' } })).json()) as { id: string };
      const cb = await hub.connect(b.id, b.secret);
      await cb.publishAsync(
        topicFor(b.id, 'commands/result'),
        JSON.stringify({ v: 1, epoch: 'epochBBBB1', seq: 1, ts: new Date().toISOString(), id: cmd.id, status: 'ok' }),
        { qos: 1 },
      );
      await cb.endAsync();
      const row = (await hub.downlink.command(cmd.id))!;
      expect(row.status).toBe('pending');
    } finally {
      await hub.stop();
    }
  });
});

describe('commands queued in a transaction', () => {
  test('one whose transaction rolls back never reaches its connected terminal; one that committed goes when delivered', async () => {
    const hub = await startTestHub();
    try {
      const t = await hub.terminal('GZ-T-001-06');
      const c = await hub.connect(t.id, t.secret);
      const got: string[] = [];
      c.on('message', (_t, p) => got.push((JSON.parse(p.toString()) as { id: string }).id));
      await c.subscribeAsync(topicFor(t.id, 'commands'), { qos: 1 });
      await until(() => hub.broker.live.has(t.id));
      let rolledBack = '';
      const err = await transaction(hub.engine, async (tx) => {
        rolledBack = (await hub.downlink.queueCommand(t.id, 'ping', {}, 60, 'admin', tx)).id;
        throw new Error('audit refused');
      }).catch((e: unknown) => e);
      expect((err as Error).message).toBe('audit refused');
      expect(await hub.downlink.command(rolledBack)).toBeUndefined();
      const row = await transaction(hub.engine, (tx) => hub.downlink.queueCommand(t.id, 'ping', {}, 60, 'admin', tx));
      hub.downlink.deliver(row);
      await until(async () => (await hub.downlink.command(row.id))?.status === 'sent');
      await until(() => got.length > 0);
      expect(got).toEqual([row.id]);
      await c.endAsync();
    } finally {
      await hub.stop();
    }
  });
});

describe('flapping on the live stream', () => {
  test('while a terminal flaps, its transitions are stored but not each broadcast', async () => {
    const hub = await startTestHub({ presence: { staleCheckMs: 60_000, flapTransitions: 2, flapWindowMs: 600_000 } });
    try {
      const t = await hub.terminal('GZ-T-001-05');
      const seen: string[] = [];
      hub.bus.on('changes', (changes: { type: string; terminalId: string; data?: { state?: string } }[]) => {
        for (const ch of changes) if (ch.type === 'presence' && ch.terminalId === t.id) seen.push(ch.data?.state ?? '?');
      });
      for (let i = 0; i < 5; i++) {
        const state = async () => (await queryRows(hub.engine, 'SELECT presence FROM terminal_state WHERE terminal_id = ?', t.id))[0]?.presence;
        const c = await hub.connect(t.id, t.secret);
        await until(async () => (await state()) === 'online');
        c.stream.destroy();
        await until(async () => (await state()) === 'offline');
      }
      const stored = await queryNumber(hub.engine, 'SELECT count(*) AS n FROM presence_transitions WHERE terminal_id = ?', t.id);
      expect(stored).toBe(10);
      // Broadcast until the third transition made it flapping; after that, nothing per transition.
      expect(seen.length).toBe(3);
    } finally {
      await hub.stop();
    }
  });
});
