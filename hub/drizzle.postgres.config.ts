import { defineConfig } from 'drizzle-kit';

// The PostgreSQL twin of drizzle.config.ts: each domain's schema.postgres.ts beside its schema.ts.
export default defineConfig({
  dialect: 'postgresql',
  schema: ['./src/store/schema.postgres.ts', './src/*/schema.postgres.ts'],
  out: './drizzle-postgres',
});
