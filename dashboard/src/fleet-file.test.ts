import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { previewFleet } from './fleet-file.ts';
import { configDiff } from './config-diff.ts';

describe('previewFleet', () => {
  it('counts the reference fleet file', () => {
    const text = readFileSync(new URL('../../fixtures/guangzhou-fleet.json', import.meta.url), 'utf8');
    expect(previewFleet(text)).toEqual({ format: 'json', stations: 175, terminals: 923 });
  });

  it('counts CSV rows with or without the header line', () => {
    const rows = 'GZ-YX-001-01,GZ-YX-001,id-card,SN1\nGZ-YX-001-02,GZ-YX-001,weijingwu,SN2\nGZ-HZ-001-01,GZ-HZ-001,id-card,SN3\n';
    expect(previewFleet(`id,station,type,serial\n${rows}`)).toEqual({ format: 'csv', stations: 2, terminals: 3 });
    expect(previewFleet(rows)).toEqual({ format: 'csv', stations: 2, terminals: 3 });
  });

  it('refuses JSON without terminals', () => {
    expect(() => previewFleet('{"stations": []}')).toThrow(/terminals/);
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
