import type { PeripheralId } from '@kiosk-fleet/protocol';
import type { peripheralsSchema } from '../config.ts';
import type { z } from 'zod';
import { CommandDriver } from './command.ts';
import type { PeripheralDriver } from './driver.ts';
import { SimulatedDriver } from './simulated.ts';
import { UsbPresenceDriver } from './usb-presence.ts';

export type PeripheralSettings = z.infer<typeof peripheralsSchema>;
export type DriverSettings = NonNullable<PeripheralSettings[PeripheralId]>;

/** The driver for one peripheral's settings (validated beforehand: see `driverProblem` in config.ts). */
export function createDriver(s: DriverSettings): PeripheralDriver {
  switch (s.driver) {
    case 'usb-presence':
      return new UsbPresenceDriver(s.usbId ?? '0000:0000');
    case 'command':
      return new CommandDriver(s.command ?? [], s.timeoutMs ?? 10_000);
    case 'simulated':
      return new SimulatedDriver();
  }
}

export type { PeripheralDriver } from './driver.ts';
export { SimulatedDriver } from './simulated.ts';
