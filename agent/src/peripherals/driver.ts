/**
 * Peripheral drivers: one module per driver, each answering "what is this device's status now?".
 *
 * A driver never throws and never hangs the agent: whatever goes wrong while probing is itself a status (`fault`
 * or `unknown`) with a code. Reads and failed reads of the card reader come from the kiosk app (local API) and are
 * added by the agent; a driver may report its own counts too (a vendor diagnostic that keeps them).
 */
import type { PeripheralSample } from '@kiosk-fleet/protocol';
import { MAX_TEXT } from '@kiosk-fleet/protocol';

export type DriverName = 'usb-presence' | 'command' | 'simulated';

export interface PeripheralDriver {
  readonly driver: DriverName;
  probe(): Promise<PeripheralSample>;
}

/** A code the protocol accepts: 1-64 chars. */
export function safeCode(s: string): string {
  const c = s.replace(/\s+/g, '_').slice(0, 64);
  return c || 'E_UNKNOWN';
}

export function safeText(s: string): string {
  return s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT - 1)}…` : s;
}
