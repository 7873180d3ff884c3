/**
 * `usb-presence`: the device's vendor:product id on the USB bus → `ok`, else `absent`.
 * Reads sysfs directly (the kernel's own list, no lsusb needed on a minimal image).
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { PeripheralSample } from '@kiosk-fleet/protocol';
import type { PeripheralDriver } from './driver.ts';

export const USB_SYSFS = '/sys/bus/usb/devices';

export async function usbIdsPresent(root = USB_SYSFS): Promise<Set<string> | null> {
  let entries: string[];
  try {
    entries = await readdir(root);
  } catch {
    return null;
  }
  const ids = new Set<string>();
  await Promise.all(
    entries.map(async (e) => {
      try {
        const [v, p] = await Promise.all([readFile(path.join(root, e, 'idVendor'), 'utf8'), readFile(path.join(root, e, 'idProduct'), 'utf8')]);
        ids.add(`${v.trim().toLowerCase()}:${p.trim().toLowerCase()}`);
      } catch {
        // interfaces (1-1:1.0) have no ids; only devices do
      }
    }),
  );
  return ids;
}

export class UsbPresenceDriver implements PeripheralDriver {
  readonly driver = 'usb-presence' as const;
  readonly #usbId: string;
  constructor(
    usbId: string,
    private readonly sysfsRoot = USB_SYSFS,
  ) {
    this.#usbId = usbId.toLowerCase();
  }

  async probe(): Promise<PeripheralSample> {
    const ids = await usbIdsPresent(this.sysfsRoot);
    if (!ids) return { status: 'unknown', code: 'E_NO_USB_BUS', message: `cannot read ${this.sysfsRoot}` };
    return ids.has(this.#usbId) ? { status: 'ok' } : { status: 'absent', code: 'E_NOT_ON_BUS', message: `USB ${this.#usbId} not present` };
  }
}
