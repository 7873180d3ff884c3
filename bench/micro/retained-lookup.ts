/**
 * What one terminal's SUBSCRIBE costs the broker's retained-message lookup with 19,000 retained desired configs (a
 * city-wide config layer): Aedes' own in-memory persistence (aedes-persistence 11 scans every retained message per
 * SUBSCRIBE) against the hub's exact-topic lookup (hub/src/broker/persistence.ts). Not part of `pnpm bench`:
 *   pnpm exec tsx bench/micro/retained-lookup.ts
 */
import { createRequire } from 'node:module';
import { ExactRetainedPersistence } from '../../hub/src/broker/persistence.ts';

const require = createRequire(new URL('../../hub/package.json', import.meta.url));
const Scan = require('aedes-persistence/asyncPersistence.js') as typeof ExactRetainedPersistence;
const N = 19_000;

for (const [name, P, subscribes] of [
  ['aedes-persistence 11 (scan)', Scan, 1_000],
  ['hub (exact topic)', ExactRetainedPersistence, N],
] as const) {
  const p = new P();
  for (let i = 0; i < N; i++) {
    await p.storeRetained({ cmd: 'publish', topic: `kf/v1/GZ-T-${i}/config/desired`, payload: Buffer.from('{"v":1}'), qos: 1, retain: true });
  }
  const t = performance.now();
  for (let i = 0; i < subscribes; i++) await p.createRetainedStreamCombi([`kf/v1/GZ-T-${i}/config/desired`, `kf/v1/GZ-T-${i}/commands`]).toArray();
  const us = ((performance.now() - t) * 1000) / subscribes;
  process.stdout.write(`${name}: ${us.toFixed(1)} µs a SUBSCRIBE with ${N} retained; ${((us * N) / 1e6).toFixed(2)} s for ${N} of them\n`);
}
