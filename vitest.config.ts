import { defineConfig } from 'vitest/config';

// One root config; each workspace package is a project (`vitest run --project hub`).
export default defineConfig({
  test: {
    projects: ['protocol', 'agent', 'hub', 'dashboard', 'tests'],
  },
});
