import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { availableServices, SERVICES, TERMINAL_TYPE_IDS, TERMINAL_TYPES } from './catalog.ts';

const fleet = JSON.parse(readFileSync(new URL('../../fixtures/guangzhou-fleet.json', import.meta.url), 'utf8')) as {
  terminalTypes: { id: string; peripherals: string[] }[];
};

describe('catalog', () => {
  it('matches the reference fleet types and peripherals', () => {
    expect([...TERMINAL_TYPE_IDS].sort()).toEqual(fleet.terminalTypes.map((t) => t.id).sort());
    for (const t of fleet.terminalTypes) {
      expect([...TERMINAL_TYPES[t.id as keyof typeof TERMINAL_TYPES].peripherals].sort()).toEqual([...t.peripherals].sort());
    }
  });

  it('offers only services whose peripherals the type has', () => {
    for (const type of TERMINAL_TYPE_IDS) {
      const spec = TERMINAL_TYPES[type];
      for (const service of spec.services) {
        for (const p of SERVICES[service].needs) expect(spec.peripherals, `${type} ${service}`).toContain(p);
      }
    }
  });

  it('derives the services an ID-card machine can offer from its peripherals', () => {
    const allOk = { idCardReader: 'ok', fingerprintScanner: 'ok', camera: 'ok', receiptPrinter: 'ok', touchscreen: 'ok' } as const;
    expect(availableServices('id-card', allOk)).toEqual(['id-card-application', 'id-card-collection', 'progress-inquiry']);
    expect(availableServices('id-card', { ...allOk, receiptPrinter: 'degraded' })).toContain('id-card-collection');
    expect(availableServices('id-card', { ...allOk, receiptPrinter: 'fault' })).toEqual(['id-card-application', 'progress-inquiry']);
    expect(availableServices('id-card', { ...allOk, idCardReader: 'fault' })).toEqual([]);
    expect(availableServices('id-card', { ...allOk, camera: undefined })).not.toContain('id-card-application');
    expect(availableServices('id-card', allOk, false)).toEqual([]);
  });
});
