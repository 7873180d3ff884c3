import type { PeripheralId, PeripheralSample } from '@kiosk-fleet/protocol';
import type { peripheralsSchema } from '../config.ts';
import type { z } from 'zod';
import { CommandDriver } from './command.ts';
import type { PeripheralDriver } from './driver.ts';
import type { ProbeCatalog } from './probe-catalog.ts';
import { SimulatedDriver } from './simulated.ts';
import { UsbPresenceDriver } from './usb-presence.ts';

export type PeripheralSettings = z.infer<typeof peripheralsSchema>;
export type DriverSettings = NonNullable<PeripheralSettings[PeripheralId]>;

/**
 * The driver for one peripheral's settings (validated beforehand: see `driverProblem` in config.ts). A `command`
 * driver runs only what the terminal's probe catalog maps the named probe to; without a probe, or with a name the
 * catalog lacks (a local default naming a probe since removed), it runs nothing and says why.
 */
export function createDriver(s: DriverSettings, catalog: ProbeCatalog): PeripheralDriver {
  switch (s.driver) {
    case 'usb-presence':
      return new UsbPresenceDriver(s.usbId ?? '0000:0000');
    case 'command': {
      if (!s.probe) return new FixedDriver({ status: 'unknown', code: 'E_NO_PROBE', message: 'no probe selected for this peripheral (config: "probe")' });
      const spec = catalog.get(s.probe);
      if (!spec) return new FixedDriver({ status: 'unknown', code: 'E_UNKNOWN_PROBE', message: `probe ${JSON.stringify(s.probe)} is not in this terminal's probe catalog` });
      return new CommandDriver(spec.command, s.timeoutMs ?? spec.timeoutMs ?? 10_000);
    }
    case 'simulated':
      return new SimulatedDriver();
  }
}

/** A `command` peripheral that cannot run anything reports why, every sample. */
class FixedDriver implements PeripheralDriver {
  readonly driver = 'command' as const;
  constructor(private readonly sample: PeripheralSample) {}
  async probe(): Promise<PeripheralSample> {
    return { ...this.sample };
  }
}

export type { PeripheralDriver } from './driver.ts';
export { SimulatedDriver } from './simulated.ts';
export { loadProbeCatalog, MapProbeCatalog, DEFAULT_PROBES_DIR, type ProbeCatalog, type ProbeSpec } from './probe-catalog.ts';
