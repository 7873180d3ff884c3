/**
 * Writes agent/openapi.json, the local API's OpenAPI document as the agent serves it at GET /openapi.json
 * (`pnpm --filter @kiosk-fleet/agent run openapi`; src/local-api.test.ts fails while the two differ).
 */
import fs from 'node:fs';
import path from 'node:path';
import { localApiDocument } from '../src/local-api.ts';

export const OPENAPI_FILE = path.resolve(import.meta.dirname, '..', 'openapi.json');
fs.writeFileSync(OPENAPI_FILE, `${JSON.stringify(localApiDocument(), null, 2)}\n`);
process.stderr.write(`wrote ${OPENAPI_FILE}\n`);
