/**
 * vitest globalSetup: one throwaway PostgreSQL server for the whole run (test-server.ts), its superuser URL handed to
 * test files as `inject('pgUrl')`. Where PostgreSQL is not installed, `pgUrl` is null and the PostgreSQL tests say
 * they are skipped; under CI (CI=true) a missing server is an error, so the PostgreSQL half never silently drops out.
 */
import type { TestProject } from 'vitest/node';
import { findPostgresBin, startTestPostgres } from './test-server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string | null;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (!findPostgresBin()) {
    if (process.env.CI) throw new Error('CI: PostgreSQL is not installed (scripts/setup.sh --test installs it)');
    project.provide('pgUrl', null);
    return async () => {};
  }
  const server = await startTestPostgres();
  project.provide('pgUrl', server.url);
  return () => server.stop();
}
