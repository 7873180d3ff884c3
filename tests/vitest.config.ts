import { defineProject } from 'vitest/config';

// Cross-package scenarios against real processes (hubs, agents, a browser). Files run beside each other (the root
// config bounds the workers): they spend most of their time waiting on child processes and timers, not on CPU (a
// full serial run measured 4 min 17 s of CPU in 17 min 40 s of wall time on this 2-core machine). Each file uses its
// own ephemeral ports and temporary directories. Long soak scenarios live in src/soak/ and run only under
// `pnpm test:soak`.
const soak = process.env.KF_SOAK === '1';
// The Debian packages' install test (src/packaging/) needs root and the network and takes minutes: its own CI step,
// `pnpm test:install`.
const install = process.env.KF_INSTALL_TEST === '1';

export default defineProject({
  test: {
    name: 'tests',
    include: soak ? ['src/soak/**/*.test.ts'] : install ? ['src/packaging/**/*.test.ts'] : ['src/**/*.test.ts'],
    // The dashboard's browser tests run on one engine (issue 18): the pages read the same API either way.
    exclude: soak || install ? [] : ['src/soak/**', 'src/packaging/**', ...(process.env.KF_TEST_ENGINE === 'postgres' ? ['src/dashboard/**'] : [])],
    // KF_TEST_ENGINE=postgres (`pnpm test:postgres`): the hub's throwaway PostgreSQL server for the run, its URL
    // handed to spawnHub as inject('pgUrl') (helpers/hub.ts).
    globalSetup: process.env.KF_TEST_ENGINE === 'postgres' ? ['../hub/src/db/postgres/global-setup.ts'] : [],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
