/**
 * Imported first (main.tsx): zod's object schemas compile a parser with `new Function` unless told not to, and probe
 * for it when a schema is made. The hub's Content-Security-Policy has no 'unsafe-eval' (hub/src/api/security-headers.ts),
 * so the probe was a CSP violation on every page load; jitless parsing is what runs under the CSP anyway.
 */
import { config } from 'zod';

config({ jitless: true });
