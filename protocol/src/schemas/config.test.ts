import { describe, expect, it } from 'vitest';
import { PERIPHERAL_PROBES, probesOfType, TERMINAL_TYPE_IDS, TERMINAL_TYPES } from '../catalog.ts';
import { PROGRAM_REFUSED, stripPrograms, terminalConfigSchema } from './config.ts';

describe('config names probes, never programs', () => {
  it('refuses argv with its own message and path; takes a probe name, not a path', () => {
    const r = terminalConfigSchema.safeParse({ peripherals: { a4Printer: { driver: 'command', command: ['/bin/sh', '-c', 'id'] } } });
    expect(r.success).toBe(false);
    expect(r.error!.issues).toEqual([expect.objectContaining({ path: ['peripherals', 'a4Printer', 'command'], message: PROGRAM_REFUSED })]);
    expect(terminalConfigSchema.safeParse({ peripherals: { a4Printer: { driver: 'command', probe: 'a4-printer' } } }).success).toBe(true);
    for (const probe of ['/bin/sh', '../x', 'A4', '', 'a'.repeat(65), 'x y']) {
      expect(terminalConfigSchema.safeParse({ peripherals: { a4Printer: { driver: 'command', probe } } }).success, probe).toBe(false);
    }
    expect(terminalConfigSchema.safeParse({ peripherals: { a4Printer: { driver: 'command', argv: ['/bin/sh'] } } }).success).toBe(false);
  });

  it('stripPrograms drops only the argv, and leaves its input alone', () => {
    const stored = { telemetryInterval: 5, peripherals: { a4Printer: { driver: 'command', command: ['/bin/sh'], timeoutMs: 900 }, camera: { driver: 'simulated' }, qrScanner: null } };
    const before = JSON.stringify(stored);
    expect(stripPrograms(stored)).toEqual({
      config: { telemetryInterval: 5, peripherals: { a4Printer: { driver: 'command', timeoutMs: 900 }, camera: { driver: 'simulated' }, qrScanner: null } },
      removed: ['peripherals.a4Printer.command'],
    });
    expect(JSON.stringify(stored)).toBe(before);
    const clean = { logLevel: 'info' };
    expect(stripPrograms(clean)).toEqual({ config: clean, removed: [] });
    expect(stripPrograms(null)).toEqual({ config: null, removed: [] });
  });

  it('lists probe names for every peripheral of every terminal type', () => {
    for (const type of TERMINAL_TYPE_IDS) {
      const probes = probesOfType(type);
      expect(Object.keys(probes).sort()).toEqual([...TERMINAL_TYPES[type].peripherals].sort());
      for (const [p, names] of Object.entries(probes)) expect(names).toEqual(PERIPHERAL_PROBES[p as keyof typeof PERIPHERAL_PROBES]);
    }
  });
});
