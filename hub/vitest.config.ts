import { defineProject } from 'vitest/config';

export default defineProject({
  // One throwaway PostgreSQL server per run for the engine tests (src/db/postgres/global-setup.ts).
  test: { name: 'hub', include: ['src/**/*.test.ts'], globalSetup: ['src/db/postgres/global-setup.ts'] },
});
