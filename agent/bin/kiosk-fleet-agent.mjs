#!/usr/bin/env node
// The agent runs its TypeScript sources through tsx (no build step): register the loader, then hand over.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli.ts');
await main(process.argv.slice(2));
