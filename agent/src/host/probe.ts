import type { Telemetry } from '@kiosk-fleet/protocol';

export type HostSample = Telemetry['host'];

/** Host metrics for a telemetry sample; one implementation per kind of host (real, simulated). */
export interface HostProbe {
  sample(): Promise<HostSample>;
  /** Seconds since the host booted (presence carries it: a new boot id with a short uptime is a reboot). */
  uptimeSeconds(): number;
}
