/** `simulated`: a status set from outside (the simulator, tests, or a demo config). */
import type { PeripheralSample } from '@kiosk-fleet/protocol';
import type { PeripheralDriver } from './driver.ts';

export class SimulatedDriver implements PeripheralDriver {
  readonly driver = 'simulated' as const;
  #state: PeripheralSample = { status: 'ok' };

  set(state: PeripheralSample): void {
    this.#state = { ...state };
  }

  get state(): PeripheralSample {
    return this.#state;
  }

  async probe(): Promise<PeripheralSample> {
    return { ...this.#state };
  }
}
