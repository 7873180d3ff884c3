import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { queryNumber, queryRows } from '../db/test-query.ts';
import { closed, startTestHub, type TestHub } from '../test-support.ts';

const FIXTURE = path.resolve(import.meta.dirname, '..', '..', '..', 'fixtures', 'guangzhou-fleet.json');
let hub: TestHub;

beforeAll(async () => {
  hub = await startTestHub();
});
afterAll(() => hub.stop());

interface ImportResult {
  nodes: { created: string[]; existing: string[] };
  terminals: { created: { id: string; secret: string }[]; existing: string[] };
}
const post = (p: string, body: string, type: string) =>
  hub.api(p, { method: 'POST', body, headers: { 'content-type': type } });
const terminalCount = () => queryNumber(hub.engine, 'SELECT count(*) AS n FROM terminals');

describe('import', () => {
  test('the reference fleet imports in one go; importing it again creates nothing and returns no secret', async () => {
    const json = fs.readFileSync(FIXTURE, 'utf8');
    const first = await post('/api/v1/import', json, 'application/json');
    expect(first.status).toBe(200);
    const r1 = (await first.json()) as ImportResult;
    expect(r1.terminals.created).toHaveLength(923);
    expect(r1.nodes.created).toHaveLength(1 + 11 + 175);
    expect(r1.terminals.created[0]!.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const again = (await (await post('/api/v1/import', json, 'application/json')).json()) as ImportResult;
    expect(again.terminals.created).toEqual([]);
    expect(again.terminals.existing).toHaveLength(923);
    expect(again.nodes.existing).toHaveLength(187);
    // The secret issued by the import works.
    const t = r1.terminals.created[0]!;
    const c = await hub.connect(t.id, t.secret);
    await c.endAsync();
  });

  test('CSV: new terminals at existing stations; existing ones listed, not re-issued', async () => {
    const csv = 'id,station,type,serial\nGZ-YX-001-90,GZ-YX-001,id-card,SN90\nGZ-YX-001-01,GZ-YX-001,id-card,SN6180993594\n';
    const res = await post('/api/v1/import', csv, 'text/csv');
    expect(res.status).toBe(200);
    const r = (await res.json()) as ImportResult;
    expect(r.terminals.created.map((x) => x.id)).toEqual(['GZ-YX-001-90']);
    expect(r.terminals.existing).toEqual(['GZ-YX-001-01']);
  });

  test.each([
    ['an unknown station', 'GZ-YX-001-91,GZ-YX-999,id-card,SN91', 'station'],
    ['an unknown type', 'GZ-YX-001-91,GZ-YX-001,toaster,SN91', 'type'],
    ['a bad id', 'GZ YX/91,GZ-YX-001,id-card,SN91', 'terminal id'],
    ['a missing field', 'GZ-YX-001-91,GZ-YX-001,id-card', 'fields'],
    ['a district as station', 'GZ-YX-001-91,GZ-YX,id-card,SN91', 'not a station'],
  ])('a CSV with %s rejects the whole import with the row number, creating nothing', async (_, badLine, reason) => {
    const before = await terminalCount();
    const csv = `id,station,type,serial\nGZ-YX-001-92,GZ-YX-001,id-card,SN92\n${badLine}\n`;
    const res = await post('/api/v1/import', csv, 'text/csv');
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; details: { row: number; reason: string } } };
    expect(body.error.code).toBe('invalid-import');
    expect(body.error.details.row).toBe(3);
    expect(body.error.details.reason).toContain(reason);
    expect(await terminalCount()).toBe(before);
  });

  test('a header-less CSV is refused at row 1 naming the header (the dashboard preview reads it with the same parser)', async () => {
    const res = await post('/api/v1/import', 'GZ-YX-001-93,GZ-YX-001,id-card,SN93\n', 'text/csv');
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { details: { row: number; reason: string; errors: { code: string }[] } } };
    expect(body.error.details).toMatchObject({ row: 1, reason: expect.stringContaining('header must name id,station,type,serial') });
    expect(body.error.details.errors.every((e) => e.code === 'missing-column')).toBe(true);
  });

  test('JSON: a bad terminal row rejects everything, new stations included', async () => {
    const fleet = {
      city: { id: 'GZ', name: { zh: '广州', en: 'GZ' } },
      districts: [],
      stations: [{ id: 'GZ-YX-500', district: 'GZ-YX', name: { zh: 'x', en: 'x' } }],
      terminals: [
        { id: 'GZ-YX-500-01', station: 'GZ-YX-500', type: 'id-card', serial: 'S1' },
        { id: 'GZ-YX-500-02', station: 'GZ-YX-500', type: 'id-card', serial: 'S2' },
        { id: 'GZ-YX-500-01', station: 'GZ-YX-500', type: 'id-card', serial: 'S3' },
      ],
    };
    const res = await hub.api('/api/v1/import', { method: 'POST', json: fleet });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { details: { row: number; reason: string } } };
    expect(body.error.details).toEqual({ row: 5, reason: 'terminal GZ-YX-500-01 appears twice' });
    expect(await hub.registry.node('GZ-YX-500')).toBeUndefined();
  });

  test('an import that names nothing is a 400; one over 8 MiB a 413', async () => {
    const empty = await post('/api/v1/import', 'id,station,type,serial\n', 'text/csv');
    expect(empty.status).toBe(400);
    expect(((await empty.json()) as { error: { code: string } }).error.code).toBe('invalid-import');
    const huge = await post('/api/v1/import', JSON.stringify({ terminals: [], pad: 'x'.repeat(9 * 1024 * 1024) }), 'application/json');
    expect(huge.status).toBe(413);
  });

  test('malformed JSON is a 400 and an unsupported content type a 415, both in the error shape', async () => {
    const bad = await post('/api/v1/import', '{"city":', 'application/json');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('invalid-request');
    const plain = await post('/api/v1/import', 'x', 'text/plain');
    expect(plain.status).toBe(415);
    expect(await plain.json()).toMatchObject({ error: { code: expect.any(String) } });
  });
});

describe('terminals', () => {
  test('register returns the secret once; a duplicate id is 409; without an id the next free one is taken', async () => {
    const res = await hub.api('/api/v1/terminals', { method: 'POST', json: { type: 'weijingwu', serial: 'SN-new', station: 'GZ-TH-001' } });
    expect(res.status).toBe(201);
    const { id, secret } = (await res.json()) as { id: string; secret: string };
    expect(id).toMatch(/^GZ-TH-001-\d\d$/);
    expect(secret.length).toBeGreaterThan(40);
    const dup = await hub.api('/api/v1/terminals', { method: 'POST', json: { id, type: 'weijingwu', serial: 'x', station: 'GZ-TH-001' } });
    expect(dup.status).toBe(409);
    const bad = await hub.api('/api/v1/terminals', { method: 'POST', json: { type: 'weijingwu', station: 'GZ-TH-001' } });
    expect(bad.status).toBe(400);
    const badBody = (await bad.json()) as { error: { details: { issues: { path: string[] }[] } } };
    expect(badBody.error.details.issues[0]!.path).toEqual(['serial']);
    // The hub keeps only a hash.
    const [row] = (await queryRows(hub.engine, 'SELECT secret_hash AS h FROM terminals WHERE id = ?', id)) as { h: string }[];
    expect(row!.h).not.toContain(secret);
  });

  test('a new secret works, the old one is refused at once and the live connection is closed', async () => {
    const t = await hub.terminal('GZ-T-001-01');
    const c = await hub.connect(t.id, t.secret);
    const gone = closed(c);
    const res = await hub.api(`/api/v1/terminals/${t.id}/secret`, { method: 'POST' });
    expect(res.status).toBe(200);
    const { secret } = (await res.json()) as { secret: string };
    await gone;
    await expect(hub.connect(t.id, t.secret)).rejects.toThrow(/Not authorized/i);
    const again = await hub.connect(t.id, secret);
    await again.endAsync();
  });

  test('move keeps placement history; decommission closes the connection, refuses credentials, keeps history', async () => {
    const t = await hub.terminal('GZ-T-001-02');
    await hub.registry.createNode({ id: 'GZ-T-002', name: { zh: 'b', en: 'b' } });
    const moved = await hub.api(`/api/v1/terminals/${t.id}/move`, { method: 'POST', json: { station: 'GZ-T-002', reason: 'new hall' } });
    expect(moved.status).toBe(200);
    const d = (await moved.json()) as { station: string; placements: { from: string | null; to: string | null; reason: string | null }[] };
    expect(d.station).toBe('GZ-T-002');
    expect(d.placements.map((p) => [p.from, p.to, p.reason])).toEqual([
      [null, 'GZ-T-001', 'registered'],
      ['GZ-T-001', 'GZ-T-002', 'new hall'],
    ]);
    expect((await hub.api(`/api/v1/terminals/${t.id}/move`, { method: 'POST', json: { station: 'GZ-T' } })).status).toBe(400);

    const c = await hub.connect(t.id, t.secret);
    const gone = closed(c);
    const dec = await hub.api(`/api/v1/terminals/${t.id}/decommission`, { method: 'POST', json: { reason: 'broken' } });
    expect(dec.status).toBe(200);
    expect(((await dec.json()) as { state: string }).state).toBe('decommissioned');
    await gone;
    await expect(hub.connect(t.id, t.secret)).rejects.toThrow(/Not authorized/i);
    const list = (await (await hub.api('/api/v1/terminals?node=GZ-T&state=decommissioned')).json()) as { items: { id: string }[] };
    expect(list.items.map((x) => x.id)).toEqual([t.id]);
  });
});
