import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { TerminalConfig } from '@kiosk-fleet/protocol';
import { ConfigReconciler, FileConfigStore, operationalSettings } from './config-reconciler.ts';
import { createLogger } from './log.ts';
import { quiet, tempDir } from './test-support/agent.ts';

const logger = createLogger({ level: 'silent', destination: quiet });

function target() {
  const applied: (TerminalConfig | null)[] = [];
  const reports: { version: number; status: string; reason?: string | undefined }[] = [];
  let gate: Promise<void> = Promise.resolve();
  return {
    applied,
    reports,
    hold(p: Promise<void>) {
      gate = p;
    },
    t: {
      apply: async (c: TerminalConfig | null) => {
        await gate;
        if (c?.logLevel === 'trace') throw new Error('cannot trace here');
        applied.push(c);
      },
      report: (version: number, status: 'applied' | 'rejected', reason?: string) => reports.push({ version, status, reason }),
    },
  };
}

describe('config reconciler', () => {
  it('persists the applied config atomically and a new reconciler starts from it', async () => {
    const d = tempDir();
    try {
      const store = new FileConfigStore(d.dir);
      const a = target();
      const r = new ConfigReconciler(store, a.t, logger);
      await r.offer({ v: 1, version: 2, config: { telemetryInterval: 10 } });
      expect(a.reports).toEqual([{ version: 2, status: 'applied', reason: undefined }]);
      expect(JSON.parse(readFileSync(store.file, 'utf8'))).toMatchObject({ applied: { version: 2, config: { telemetryInterval: 10 } }, decidedVersion: 2 });
      const again = new ConfigReconciler(new FileConfigStore(d.dir), target().t, logger);
      expect(again.applied).toEqual({ version: 2, config: { telemetryInterval: 10 } });
      // the same version redelivered (retained, after a reconnect) is not reported again
      const b = target();
      const r2 = new ConfigReconciler(new FileConfigStore(d.dir), b.t, logger);
      await r2.offer({ v: 1, version: 2, config: { telemetryInterval: 10 } });
      expect(b.reports).toEqual([]);
    } finally {
      d.cleanup();
    }
  });

  it('merges configs that arrive while one is applying: only the newest waits', async () => {
    const d = tempDir();
    try {
      const a = target();
      let release!: () => void;
      a.hold(new Promise<void>((r) => (release = r)));
      const r = new ConfigReconciler(new FileConfigStore(d.dir), a.t, logger);
      const first = r.offer({ v: 1, version: 1, config: { telemetryInterval: 10 } });
      void r.offer({ v: 1, version: 2, config: { telemetryInterval: 20 } });
      void r.offer({ v: 1, version: 3, config: { telemetryInterval: 30 } });
      release();
      await first;
      await r.offer({ v: 1, version: 3, config: { telemetryInterval: 30 } });
      expect(a.reports.map((x) => x.version)).toEqual([1, 3]);
      expect(r.applied?.version).toBe(3);
    } finally {
      d.cleanup();
    }
  });

  it('a config that fails to apply is rejected and the previous one is put back', async () => {
    const d = tempDir();
    try {
      const a = target();
      const r = new ConfigReconciler(new FileConfigStore(d.dir), a.t, logger);
      await r.offer({ v: 1, version: 1, config: { logLevel: 'info' } });
      await r.offer({ v: 1, version: 2, config: { logLevel: 'trace' } });
      expect(a.reports.at(-1)).toMatchObject({ version: 2, status: 'rejected', reason: expect.stringContaining('cannot trace') });
      expect(a.applied.at(-1)).toEqual({ logLevel: 'info' });
      expect(r.applied?.version).toBe(1);
    } finally {
      d.cleanup();
    }
  });
});

describe('operational settings: the pushed config governs, env only supplies defaults', () => {
  const defaults = {
    telemetryInterval: 30,
    logLevel: 'info',
    peripherals: { idCardReader: { driver: 'usb-presence' as const, usbId: '0400:c35a' }, receiptPrinter: { driver: 'simulated' as const } },
    updatePolicy: { windowOnly: true, healthCheckSeconds: 120 },
  };
  const window = { sun: [{ from: '02:00', to: '04:00' }] };

  it('before any config: the local defaults, no schedules', () => {
    expect(operationalSettings(null, defaults)).toEqual({ ...defaults, openingHours: null, maintenanceWindow: null });
  });

  it('each key the config sets wins; what it leaves unset stays local', () => {
    const op = operationalSettings(
      {
        telemetryInterval: 5,
        peripherals: { idCardReader: { driver: 'command', probe: 'idcard-reader' } },
        maintenanceWindow: window,
        updatePolicy: { healthCheckSeconds: 60 },
      },
      defaults,
    );
    expect(op).toEqual({
      telemetryInterval: 5,
      logLevel: 'info',
      peripherals: { idCardReader: { driver: 'command', probe: 'idcard-reader' }, receiptPrinter: { driver: 'simulated' } },
      openingHours: null,
      maintenanceWindow: window,
      updatePolicy: { windowOnly: true, healthCheckSeconds: 60 },
    });
  });
});
