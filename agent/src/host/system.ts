/**
 * The real host through systeminformation: CPU, memory, disk, temperature where there is a sensor, uptime, NICs.
 *
 * Its modules are imported one by one: the package's index loads and initialises all 24 of them (docker, wifi,
 * bluetooth, ...), ~1.5 MB of an idle agent's RSS for functions it never calls. Uptime is node's own: si.time()
 * also resolves the time-zone name through Intl, which maps ~5 MB of ICU data into the process.
 */
import os from 'node:os';
import { cpuTemperature, currentLoad } from 'systeminformation/lib/cpu.js';
import { fsSize } from 'systeminformation/lib/filesystem.js';
import { mem as memory } from 'systeminformation/lib/memory.js';
import { networkInterfaces } from 'systeminformation/lib/network.js';
import type { HostProbe, HostSample } from './probe.ts';

const clamp = (n: number, lo: number, hi: number): number => (Number.isFinite(n) ? Math.min(hi, Math.max(lo, n)) : lo);

export class SystemHostProbe implements HostProbe {
  uptimeSeconds(): number {
    return os.uptime();
  }

  async sample(): Promise<HostSample> {
    const [load, mem, disks, temp, nics] = await Promise.all([
      currentLoad().catch(() => null),
      memory().catch(() => null),
      fsSize().catch(() => []),
      cpuTemperature().catch(() => null),
      networkInterfaces().catch(() => []),
    ]);
    // the root filesystem is the one the kiosk app and the outbox live on; else the largest
    const disk = disks.find((d) => d.mount === '/') ?? [...disks].sort((a, b) => b.size - a.size)[0];
    const tempC = temp && Number.isFinite(temp.main) && temp.main > 0 ? clamp(temp.main, -60, 200) : null;
    const nicList = Array.isArray(nics) ? nics : [nics];
    return {
      cpu: clamp(load?.currentLoad ?? 0, 0, 100),
      memUsed: Math.max(0, mem?.active ?? 0),
      memTotal: Math.max(0, mem?.total ?? 0),
      diskUsed: Math.max(0, disk?.used ?? 0),
      diskTotal: Math.max(0, disk?.size ?? 0),
      tempC,
      uptime: clamp(os.uptime(), 0, 10 * 365 * 86400),
      net: nicList
        .filter((n) => !n.internal)
        .slice(0, 16)
        .map((n) => ({ iface: n.iface.slice(0, 32), up: n.operstate === 'up' })),
    };
  }
}
