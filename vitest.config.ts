import { defineConfig } from 'vitest/config';

// One root config; each workspace package is a project (`vitest run --project hub`).
export default defineConfig({
  test: {
    // Two cores here; three workers keep both busy while scenario files wait on their child processes.
    maxWorkers: 3,
    projects: ['protocol', 'agent', 'hub', 'dashboard', 'tests'],
  },
});
