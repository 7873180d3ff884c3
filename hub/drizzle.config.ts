import { defineConfig } from 'drizzle-kit';

// Each domain keeps its tables beside its code (store/schema.ts for the core, <domain>/schema.ts for the rest).
export default defineConfig({
  dialect: 'sqlite',
  schema: ['./src/store/schema.ts', './src/*/schema.ts'],
  out: './drizzle',
});
