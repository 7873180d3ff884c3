/**
 * The HTTP app: /api/v1 (bearer token on everything but health), /metrics, and the dashboard's static build at /.
 * `AppType` is what the dashboard's typed client (`hc<AppType>`) is built from.
 */
import path from 'node:path';
import { serveStatic } from '@hono/node-server/serve-static';
import { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { statusText, type Text } from '@kiosk-fleet/protocol';
import { fieldsText, HubError } from '../errors.ts';
import { tokenMatches } from '../secrets.ts';
import { authenticate } from '../auth/middleware.ts';
import { enforcePolicy } from '../auth/policy.ts';
import type { ApiEnv, Services } from './common.ts';
import { alertRoutes } from '../alerts/routes.ts';
import { auditRoutes } from '../audit/routes.ts';
import { authRoutes } from '../auth/routes.ts';
import { userRoutes } from '../auth/users-routes.ts';
import { configRoutes } from '../config-layers/routes.ts';
import { eventRoutes } from './events.ts';
import { healthRoutes } from './health.ts';
import { hubRoutes } from '../hubs/routes.ts';
import { importRoutes } from '../fleet/routes.import.ts';
import { nodeRoutes } from '../fleet/routes.nodes.ts';
import { reportRoutes } from './reports.ts';
import { settleRequestBody } from './request-body.ts';
import { securityHeaders } from './security-headers.ts';
import { terminalRoutes } from '../fleet/routes.terminals.ts';
import { requireOperator } from '../auth/middleware.ts';
import { can, sees, type Principal } from '../auth/permissions.ts';
import { audit } from '../auth/guard.ts';
import { ADMIN_TOKEN_PRINCIPAL } from '../auth/service.ts';
import { registerReleasesOpenApi } from '../releases/openapi.ts';
import { registerRolloutsOpenApi } from '../rollouts/openapi.ts';
import { rolloutsRoutes } from '../rollouts/routes.ts';

/** `text`: the sentence for a person (protocol texts.ts), beside the English `message` (HubError's doc). */
function errorBody(code: string, message: string, details?: unknown, text?: Text) {
  return { error: { code, message, ...(details === undefined ? {} : { details }), ...(text === undefined ? {} : { text }) } };
}

function errorHandler(s: Services) {
  return (err: Error, c: Context) => {
    if (err instanceof HubError) return c.json(errorBody(err.code, err.message, err.details, err.text), err.status);
    if (err instanceof HTTPException) {
      return c.json(errorBody(err.status === 400 ? 'invalid-request' : 'http-error', err.message || 'bad request', undefined, statusText(err.status)), err.status);
    }
    // PostgreSQL stores no NUL (U+0000) in text and says so (22021); SQLite matched such a filter against nothing.
    // Either way the caller sent text no row can hold: their mistake, said plainly, not a 500.
    const code = (err as { code?: unknown }).code;
    if (code === '22021' || code === '22P05') {
      return c.json(errorBody('invalid-request', 'text with a NUL character (U+0000) or another character the database cannot store', undefined, statusText(400)), 400);
    }
    s.log.error({ err, path: c.req.path }, 'request failed');
    return c.json(errorBody('internal', 'internal error', undefined, statusText(500)), 500);
  };
}

export function createApp(s: Services) {
  const api = new OpenAPIHono<ApiEnv>({
    // zod failures of path, query and body: 400 with the path of each bad field.
    defaultHook: (result, c) => {
      if (!result.success) {
        const issues = result.error.issues.map((i) => ({ path: i.path.map(String), message: i.message }));
        return c.json(errorBody('invalid-request', issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; '), { issues }, fieldsText('error.invalid-fields', issues)), 400);
      }
      return undefined;
    },
  });

  // Who is calling (admin token, API token or session cookie + CSRF), then the route's access rule: what lies
  // outside the caller's node is 404, what their role may not do is 403 (auth/middleware.ts, auth/policy.ts).
  // Bodies are read whole: cap them. A fleet import may be large (the reference fleet of 923 terminals is ~200 KB,
  // so 8 MiB is about 40,000 terminals); nothing else comes near 1 MiB.
  api.use('*', (c, next) =>
    bodyLimit({
      maxSize: c.req.path === '/api/v1/import' ? 8 * 1024 * 1024 : 1024 * 1024,
      onError: (cc) => cc.json(errorBody('payload-too-large', 'request body too large', undefined, statusText(413)), 413),
    })(c, next),
  );
  api.use('*', authenticate(s));
  // A scraper's token reads /metrics and nothing else, not even its owner's tokens or password (the routes any
  // signed-in caller may use).
  api.use('*', async (c, next) => {
    const p = c.get('principal') as Principal | undefined;
    if (p?.kind === 'token' && p.role === 'metrics') return c.json(errorBody('forbidden', 'a metrics token reads /metrics only', undefined, statusText(403)), 403);
    return next();
  });
  api.use('*', enforcePolicy(s));

  const routes = api
    .route('/', healthRoutes(s))
    .route('/', authRoutes(s))
    .route('/', userRoutes(s))
    .route('/', auditRoutes(s))
    .route('/', nodeRoutes(s))
    .route('/', terminalRoutes(s))
    .route('/', importRoutes(s))
    .route('/', configRoutes(s))
    .route('/', eventRoutes(s))
    .route('/', alertRoutes(s))
    .route('/', reportRoutes(s))
    .route('/', hubRoutes(s))
    // Inside the API: authenticate, the access rules (auth/policy.ts) and their audit records apply; the routes'
    // own check repeats the role rule and limits every rollout to the caller's node (404 outside it).
    .route(
      '/rollouts',
      rolloutsRoutes({
        service: s.rollouts,
        requireAdmin: requireOperator(s, { read: 'fleet:read', write: 'rollout:write' }),
        actor: (c) => (c as Context<ApiEnv>).get('actor'),
        sees: (c, nodeId) => sees((c as Context<ApiEnv>).get('principal'), nodeId),
        audit: (c, e) => audit(c as Context<ApiEnv>, s, e),
      }),
    );

  api.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: { title: 'Kiosk Fleet hub API', version: '1' },
    servers: [{ url: '/api/v1' }],
  });
  api.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer' });
  api.openAPIRegistry.registerComponent('securitySchemes', 'session', { type: 'apiKey', in: 'cookie', name: 'kf_session' });
  // Plain Hono routes (a streamed upload does not fit zod-openapi's validators) described by hand.
  registerReleasesOpenApi(api.openAPIRegistry);
  registerRolloutsOpenApi(api.openAPIRegistry);

  api.onError(errorHandler(s));
  return routes;
}

/** The whole HTTP app (API + metrics + dashboard) for node-server; `createApp` returns the typed API part. */
export function createHttpApp(s: Services) {
  const app = new OpenAPIHono();
  const api = createApp(s);
  app.onError(errorHandler(s));
  // CSP fitting the dashboard, nosniff, no framing, no referrer: on every answer (security-headers.ts).
  app.use('*', securityHeaders());
  // Before every route and body limit: what an answer left of the request body is drained, or the connection closed.
  app.use('/api/*', settleRequestBody());
  app.get('/metrics', async (c) => {
    // The admin token, or an API token whose role may read the metrics (a `metrics` token: /metrics and nothing else).
    const given = /^Bearer (.+)$/.exec(c.req.header('authorization') ?? '')?.[1];
    const p = given === undefined ? null : tokenMatches(given, s.adminToken) ? ADMIN_TOKEN_PRINCIPAL : await s.auth.tokenPrincipal(given);
    if (!p) return c.json(errorBody('unauthorized', 'send Authorization: Bearer <KF_ADMIN_TOKEN or a metrics API token>'), 401);
    if (!can(p, 'metrics:read')) return c.json(errorBody('forbidden', `a ${p.role} token may not read /metrics; create one with the role metrics`), 403);
    return c.text(await s.metrics.registry.metrics(), 200, { 'content-type': s.metrics.registry.contentType });
  });
  // Releases have their own auth (admin upload, terminal download tokens), so they sit before the admin-only API.
  app.route('/api/v1/releases', s.releases.routes);
  app.route('/api/v1', api);
  app.all('/api/*', (c) => c.json(errorBody('not-found', `no route ${c.req.method} ${c.req.path}`), 404));
  app.get('*', ...dashboardHandlers(s.dashboardDir));
  return app;
}

export type AppType = ReturnType<typeof createApp>;

/**
 * The dashboard's build, served from disk as files (not read into memory per request) with the gzip and brotli
 * copies the build wrote beside each file (dashboard/vite.config.ts, `precompress`): the script is ~220 KB as built,
 * ~70 KB gzipped, and the first-load budget is 200 KB transferred. Hashed assets are immutable; index.html is
 * revalidated. Anything that is not a file of the build is a client-side route: index.html.
 */
function dashboardHandlers(dir: string) {
  const root = path.resolve(dir);
  const onFound = (file: string, c: Context) => {
    const index = file.replace(/\.(gz|br|zst)$/, '') === path.join(root, 'index.html');
    c.header('cache-control', index ? 'no-cache' : 'public, max-age=31536000, immutable');
    // a cache between hub and browser must keep the encodings apart, also where this browser got no compressed copy
    c.header('vary', 'Accept-Encoding');
  };
  const files = serveStatic({ root, precompressed: true, onFound });
  const spaIndex = serveStatic({ root, path: 'index.html', precompressed: true, onFound });
  return [
    async (c: Context, next: () => Promise<void>) => {
      try {
        decodeURIComponent(c.req.path);
      } catch {
        return c.json(errorBody('invalid-path', 'the path has a malformed percent-escape'), 400);
      }
      await next();
    },
    files,
    spaIndex,
    (c: Context) => c.text('The dashboard is not built. Run `pnpm --filter @kiosk-fleet/dashboard run build` (or set KF_DASHBOARD_DIR).\n', 200),
  ] as const;
}
