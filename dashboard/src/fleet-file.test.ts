import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { placeProblems, previewFleet } from './fleet-file.ts';
import { configDiff } from './config-diff.ts';

describe('previewFleet', () => {
  it('counts the reference fleet file', () => {
    const text = readFileSync(new URL('../../fixtures/guangzhou-fleet.json', import.meta.url), 'utf8');
    expect(previewFleet(text)).toMatchObject({ format: 'json', stations: 175, terminals: 923, errors: [] });
  });

  it('reads CSV rows after the header line, in any column order', () => {
    const rows = 'GZ-YX-001-01,GZ-YX-001,id-card,SN1\nGZ-YX-001-02,GZ-YX-001,weijingwu,SN2\nGZ-HZ-001-01,GZ-HZ-001,id-card,SN3\n';
    expect(previewFleet(`id,station,type,serial\n${rows}`)).toMatchObject({ format: 'csv', stations: 2, terminals: 3, errors: [] });
    const swapped = previewFleet('serial,type,station,id\nSN1,id-card,GZ-YX-001,GZ-YX-001-01\n');
    expect(swapped.rows).toEqual([{ row: 2, id: 'GZ-YX-001-01', station: 'GZ-YX-001', type: 'id-card' }]);
  });

  it('refuses a header-less CSV as the hub does: the header is missing, no row is read', () => {
    const p = previewFleet('GZ-YX-001-01,GZ-YX-001,id-card,SN1\nGZ-YX-001-02,GZ-YX-001,weijingwu,SN2\n');
    expect(p.terminals).toBe(0);
    expect(p.errors[0]).toMatchObject({ row: 1, code: 'missing-column' });
  });

  it('lists every bad row at once, with its line', () => {
    const p = previewFleet('id,station,type,serial\nGZ-YX-001-01,GZ-YX-001,id-card\nGZ-YX-001-02,GZ-YX-001,id-card,SN2\n"a",b,c,d\nGZ-YX-001-04,,id-card,SN4\n');
    expect(p.rows.map((r) => r.id)).toEqual(['GZ-YX-001-02']);
    expect(p.errors).toEqual([
      { row: 2, code: 'field-count', expected: 4, got: 3 },
      { row: 4, code: 'quoted' },
      { row: 5, code: 'empty-field', column: 'station' },
    ]);
  });

  it('refuses JSON without terminals', () => {
    expect(() => previewFleet('{"stations": []}')).toThrow(/terminals/);
  });
});

describe('placeProblems', () => {
  it('names a station outside the operator’s district as out of scope, one inside it that does not exist as unknown', () => {
    const p = previewFleet('id,station,type,serial\nGZ-YX-001-09,GZ-YX-001,id-card,S1\nGZ-HZ-001-09,GZ-HZ-001,id-card,S2\nGZ-YX-077-01,GZ-YX-077,toaster,S3\n');
    const own = { root: 'GZ-YX', stations: new Set(['GZ-YX-001']), types: ['id-card'] };
    expect(placeProblems(p, own)).toEqual([
      { row: 3, code: 'not-in-scope', value: 'GZ-HZ-001' },
      { row: 4, code: 'unknown-type', value: 'toaster' },
      { row: 4, code: 'unknown-station', value: 'GZ-YX-077' },
    ]);
    // a station the file itself creates is fine
    const json = previewFleet(JSON.stringify({ stations: [{ id: 'GZ-YX-077' }], terminals: [{ id: 'GZ-YX-077-01', station: 'GZ-YX-077', type: 'id-card' }] }));
    expect(placeProblems(json, own)).toEqual([]);
  });
});

describe('configDiff', () => {
  it('lists added, changed and removed settings by dotted path', () => {
    const before = { telemetryInterval: 30, logLevel: 'info', updatePolicy: { windowOnly: true } };
    const after = { telemetryInterval: 60, updatePolicy: { windowOnly: true, healthCheckSeconds: 120 } };
    expect(configDiff(before, after)).toEqual([
      { key: 'logLevel', from: 'info', to: undefined },
      { key: 'telemetryInterval', from: 30, to: 60 },
      { key: 'updatePolicy.healthCheckSeconds', from: undefined, to: 120 },
    ]);
    expect(configDiff(before, before)).toEqual([]);
  });
});
