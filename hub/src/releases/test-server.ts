/**
 * Test support, not part of the hub: the release routes in their own process (as the hub will mount them), for the
 * scenario tests in tests/src/updates. Env KF_DATA_DIR, KF_RELEASE_KEYS, KF_ADMIN_TOKEN. Prints {"msg":"ready","httpPort":n}.
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { pino } from 'pino';
import { ArtifactStore } from './artifact-store.ts';
import { parseTrustedKeys } from './keys.ts';
import { releasesRoutes } from './routes.ts';
import { issueDownloadToken, loadOrCreateTokenKey } from './tokens.ts';

const dataDir = process.env.KF_DATA_DIR!;
const admin = `Bearer ${process.env.KF_ADMIN_TOKEN}`;
const logger = pino({ level: process.env.KF_LOG_LEVEL ?? 'silent' }, pino.destination(2));
const store = new ArtifactStore({ dataDir, trustedKeys: parseTrustedKeys(process.env.KF_RELEASE_KEYS), maxUploadBytes: 8 * 1024 * 1024, logger }).init();
const tokenKey = loadOrCreateTokenKey(dataDir);
const app = new Hono();
app.route(
  '/api/v1/releases',
  releasesRoutes({
    store,
    tokenKey,
    logger,
    requireAdmin: async (c, next) => (c.req.header('authorization') === admin ? next() : c.json({ error: { code: 'unauthorized', message: 'admin only' } }, 401)),
  }),
);
// Test-only: what the rollout engine does when it publishes update/target.
app.post('/test/token', async (c) => {
  if (c.req.header('authorization') !== admin) return c.json({}, 401);
  const { releaseId, terminalId } = (await c.req.json()) as { releaseId: string; terminalId: string };
  return c.json(issueDownloadToken(tokenKey, { releaseId, terminalId, ttlSeconds: 600 }));
});
const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => {
  process.stdout.write(`${JSON.stringify({ msg: 'ready', httpPort: info.port })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
