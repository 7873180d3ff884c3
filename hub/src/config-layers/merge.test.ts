import { describe, expect, test } from 'vitest';
import { diff, mergeLayers, validateEffective, validateLayer, type Layer } from './merge.ts';

const city: Layer = {
  level: 'city',
  id: 'GZ',
  version: 3,
  config: {
    telemetryInterval: 60,
    logLevel: 'info',
    servicesEnabled: ['id-card-application', 'id-card-collection'],
    announcement: { zh: '欢迎', en: 'Welcome' },
    openingHours: { mon: [{ from: '08:00', to: '18:00' }], sat: [] },
    peripherals: { idCardReader: { driver: 'usb-presence', usbId: '0400:c35a', timeoutMs: 5000 } },
  },
};

describe('mergeLayers', () => {
  test('objects merge key by key, arrays replace, later layers win, each value names its layer', () => {
    const district: Layer = {
      level: 'district',
      id: 'GZ-YX',
      version: 7,
      config: { telemetryInterval: 30, servicesEnabled: ['id-card-collection'], openingHours: { sat: [{ from: '09:00', to: '12:00' }] } },
    };
    const station: Layer = { level: 'station', id: 'GZ-YX-001', version: 1, config: { peripherals: { idCardReader: { timeoutMs: 9000 } } } };
    const e = mergeLayers([city, district, station]);
    expect(e.config).toEqual({
      telemetryInterval: 30,
      logLevel: 'info',
      servicesEnabled: ['id-card-collection'],
      announcement: { zh: '欢迎', en: 'Welcome' },
      openingHours: { mon: [{ from: '08:00', to: '18:00' }], sat: [{ from: '09:00', to: '12:00' }] },
      peripherals: { idCardReader: { driver: 'usb-presence', usbId: '0400:c35a', timeoutMs: 9000 } },
    });
    expect(e.sources['telemetryInterval']).toEqual({ level: 'district', id: 'GZ-YX', version: 7 });
    expect(e.sources['logLevel']).toEqual({ level: 'city', id: 'GZ', version: 3 });
    expect(e.sources['servicesEnabled']?.level).toBe('district');
    expect(e.sources['openingHours.mon']?.level).toBe('city');
    expect(e.sources['openingHours.sat']?.level).toBe('district');
    expect(e.sources['peripherals.idCardReader.driver']?.level).toBe('city');
    expect(e.sources['peripherals.idCardReader.timeoutMs']).toEqual({ level: 'station', id: 'GZ-YX-001', version: 1 });
    expect(validateEffective(e.config)).toEqual([]);
  });

  test('an explicit null removes the inherited value, and a later layer can set it again', () => {
    const station: Layer = { level: 'station', id: 'GZ-YX-001', version: 2, config: { announcement: null, openingHours: { sat: null }, peripherals: null } };
    const e = mergeLayers([city, station]);
    expect(e.config).not.toHaveProperty('announcement');
    expect(e.config).not.toHaveProperty('peripherals');
    expect(e.config['openingHours']).toEqual({ mon: [{ from: '08:00', to: '18:00' }] });
    expect(Object.keys(e.sources).filter((k) => k.startsWith('announcement') || k.startsWith('peripherals'))).toEqual([]);
    const terminal: Layer = { level: 'terminal', id: 'GZ-YX-001-01', version: 1, config: { announcement: { zh: '维护', en: 'Maintenance' } } };
    const again = mergeLayers([city, station, terminal]);
    expect(again.config['announcement']).toEqual({ zh: '维护', en: 'Maintenance' });
    expect(again.sources['announcement.zh']?.level).toBe('terminal');
  });

  test('a null for a key no layer set leaves no trace (it never reaches the terminal)', () => {
    const e = mergeLayers([{ level: 'district', id: 'GZ-YX', version: 1, config: { peripherals: { receiptPrinter: null }, updatePolicy: null } }]);
    expect(e.config).toEqual({ peripherals: {} });
    expect(validateEffective(e.config)).toEqual([]);
  });

  test('layers are not mutated by merging', () => {
    const before = structuredClone(city.config);
    const e = mergeLayers([city, { level: 'station', id: 'S', version: 1, config: { openingHours: { mon: null } } }]);
    (e.config['openingHours'] as Record<string, unknown>)['sun'] = [];
    expect(city.config).toEqual(before);
  });
});

describe('validateLayer', () => {
  test('partial objects at any depth and nulls are fine in a layer', () => {
    expect(validateLayer({ peripherals: { idCardReader: { timeoutMs: 9000 } }, announcement: { zh: '只有中文' }, logLevel: null })).toEqual([]);
  });

  test('each bad field is named by its path', () => {
    const issues = validateLayer({
      telemetryIntervall: 5,
      telemetryInterval: 1,
      openingHours: { mon: [{ from: '25:00', to: '18:00' }], someday: [] },
      peripherals: { idCardReader: { driver: 'magic' }, toaster: { driver: 'simulated' } },
    });
    const paths = issues.map((i) => i.path.join('.')).sort();
    expect(paths).toEqual([
      'openingHours.mon.0.from',
      'openingHours.someday',
      'peripherals.idCardReader.driver',
      'peripherals.toaster',
      'telemetryInterval',
      'telemetryIntervall',
    ]);
  });

  test('a layer that is not an object is refused', () => {
    expect(validateLayer([1, 2])).toEqual([{ path: [], message: 'config must be a JSON object' }]);
  });

  test('the effective check catches what a partial layer leaves missing', () => {
    const e = mergeLayers([{ level: 'station', id: 'S', version: 1, config: { peripherals: { idCardReader: { timeoutMs: 9000 } } } }]);
    expect(validateEffective(e.config).map((i) => i.path.join('.'))).toEqual(['peripherals.idCardReader.driver']);
  });
});

describe('diff', () => {
  test('leaf changes with their paths; arrays compare whole', () => {
    expect(
      diff(
        { telemetryInterval: 60, servicesEnabled: ['a', 'b'], openingHours: { mon: [] }, logLevel: 'info' },
        { telemetryInterval: 30, servicesEnabled: ['a', 'b'], openingHours: { mon: [], sat: [] }, announcement: { zh: 'x', en: 'y' } },
      ),
    ).toEqual([
      { path: ['announcement'], op: 'add', to: { zh: 'x', en: 'y' } },
      { path: ['logLevel'], op: 'remove', from: 'info' },
      { path: ['openingHours', 'sat'], op: 'add', to: [] },
      { path: ['telemetryInterval'], op: 'change', from: 60, to: 30 },
    ]);
  });
});
