import { defineProject } from 'vitest/config';

// Cross-package scenarios against real processes. Files run one at a time: each starts hubs, agents or a browser,
// and the machine has two cores. Long soak scenarios live in src/soak/ and run only under `pnpm test:soak`.
const soak = process.env.KF_SOAK === '1';

export default defineProject({
  test: {
    name: 'tests',
    include: soak ? ['src/soak/**/*.test.ts'] : ['src/**/*.test.ts'],
    exclude: soak ? [] : ['src/soak/**'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
