/** A plausible kiosk PC for the simulator: slow random walks around a per-terminal baseline. */
import type { HostProbe, HostSample } from './probe.ts';

const GiB = 1024 ** 3;

export class SimulatedHostProbe implements HostProbe {
  #cpu: number;
  #mem: number;
  #disk: number;
  #temp: number;
  #bootedAt: number;
  readonly memTotal: number;
  readonly diskTotal: number;
  readonly hasSensor: boolean;

  constructor(private readonly random: () => number = Math.random) {
    this.memTotal = (random() < 0.5 ? 4 : 8) * GiB;
    this.diskTotal = (random() < 0.5 ? 64 : 128) * GiB;
    this.hasSensor = random() < 0.8;
    this.#cpu = 5 + random() * 15;
    this.#mem = this.memTotal * (0.3 + random() * 0.2);
    this.#disk = this.diskTotal * (0.2 + random() * 0.4);
    this.#temp = 40 + random() * 10;
    this.#bootedAt = Date.now() - random() * 30 * 86400_000;
  }

  /** A power loss: the machine boots again. */
  rebooted(now = Date.now()): void {
    this.#bootedAt = now;
  }

  uptimeSeconds(): number {
    return Math.max(0, Math.round((Date.now() - this.#bootedAt) / 1000));
  }

  async sample(): Promise<HostSample> {
    const walk = (v: number, step: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v + (this.random() - 0.5) * step));
    this.#cpu = walk(this.#cpu, 8, 1, 100);
    this.#mem = walk(this.#mem, 0.02 * this.memTotal, 0.1 * this.memTotal, 0.95 * this.memTotal);
    this.#disk = walk(this.#disk, 0.0005 * this.diskTotal, 0.05 * this.diskTotal, 0.99 * this.diskTotal);
    this.#temp = walk(this.#temp, 1.5, 30, 85);
    return {
      cpu: Math.round(this.#cpu * 10) / 10,
      memUsed: Math.round(this.#mem),
      memTotal: this.memTotal,
      diskUsed: Math.round(this.#disk),
      diskTotal: this.diskTotal,
      tempC: this.hasSensor ? Math.round(this.#temp * 10) / 10 : null,
      uptime: this.uptimeSeconds(),
      net: [{ iface: 'eth0', up: true }],
    };
  }
}
