import { defineProject } from 'vitest/config';

export default defineProject({
  test: { name: 'hub', include: ['src/**/*.test.ts'] },
});
