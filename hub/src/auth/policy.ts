/**
 * Access rules per route, as data: which object a route acts on (taken from its path) and the permission it needs.
 * The middleware resolves the object first, so anything outside the caller's node answers 404 before any role check
 * can answer 403. Routes that list, stream or take their target from the body also filter or check in their
 * handler (noted per row); routes without a row here are for city admins only, so a new route is safe until it
 * gets its rule.
 */
import type { MiddlewareHandler } from 'hono';
import type { ApiEnv, Services } from '../api/common.ts';
import { HubError } from '../errors.ts';
import { audit, nodeFor, requirePermission, terminalFor } from './guard.ts';
import type { Permission } from './permissions.ts';

export type Target = 'open' | 'self' | 'none' | 'terminal' | 'node';

export interface RoutePolicy {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** As in the OpenAPI document, under /api/v1: `/terminals/{id}/move`. */
  path: string;
  /** open: no credentials; self: any signed-in caller (the handler limits it to their own things); none: no object in
   * the path; terminal/node: `{id}` is one, resolved in the caller's scope. */
  target: Target;
  perm?: Permission;
  /** What the handler checks on top. */
  handler?: string;
  /** A write that changes nothing (a dry run): no audit record. */
  readOnly?: boolean;
}

const T = (method: RoutePolicy['method'], path: string, perm: Permission, handler?: string): RoutePolicy => ({ method, path, target: 'terminal', perm, ...(handler ? { handler } : {}) });
const N = (method: RoutePolicy['method'], path: string, perm: Permission, handler?: string): RoutePolicy => ({ method, path, target: 'node', perm, ...(handler ? { handler } : {}) });
const X = (method: RoutePolicy['method'], path: string, perm: Permission, handler?: string): RoutePolicy => ({ method, path, target: 'none', perm, ...(handler ? { handler } : {}) });
const SELF = (method: RoutePolicy['method'], path: string, handler: string): RoutePolicy => ({ method, path, target: 'self', handler });

export const ROUTE_POLICIES: readonly RoutePolicy[] = [
  { method: 'GET', path: '/health', target: 'open' },
  { method: 'GET', path: '/openapi.json', target: 'open' },
  { method: 'POST', path: '/auth/login', target: 'open' },
  SELF('GET', '/auth/me', 'the caller'),
  SELF('POST', '/auth/logout', "the caller's session"),
  SELF('POST', '/auth/password', "the caller's own password"),
  SELF('GET', '/auth/tokens', "own tokens; ?user= needs user:manage over that user"),
  SELF('POST', '/auth/tokens', 'at most the caller’s role, under their node'),
  SELF('DELETE', '/auth/tokens/{id}', 'own tokens, or those of users the caller manages'),
  X('GET', '/users', 'user:manage', 'lists users under the caller’s node'),
  X('POST', '/users', 'user:manage', 'role at most the caller’s, node under theirs'),
  SELF('GET', '/users/{id}', 'user:manage over that user (404 outside scope)'),
  SELF('PATCH', '/users/{id}', 'user:manage over that user and the new binding'),
  SELF('POST', '/users/{id}/disable', 'user:manage over that user'),
  SELF('POST', '/users/{id}/enable', 'user:manage over that user'),
  SELF('POST', '/users/{id}/reset-password', 'user:manage over that user'),
  SELF('POST', '/users/{id}/tokens', 'user:manage over that user; at most their role and node, and what the caller may grant'),
  X('GET', '/audit', 'audit:read', 'records under the caller’s node'),
  X('GET', '/audit/verify', 'audit:verify'),
  X('GET', '/nodes', 'fleet:read', 'nodes under the caller’s node'),
  X('POST', '/nodes', 'node:write', 'the new node’s parent lies under the caller’s node'),
  N('GET', '/nodes/{id}', 'fleet:read'),
  N('GET', '/nodes/{id}/summary', 'fleet:read'),
  X('GET', '/terminals', 'fleet:read', 'terminals under the caller’s node; ?node= outside it is 404'),
  X('POST', '/terminals', 'terminal:register', 'the station lies under the caller’s node'),
  T('GET', '/terminals/{id}', 'fleet:read'),
  T('POST', '/terminals/{id}/move', 'terminal:place', 'the target station lies under the caller’s node'),
  T('POST', '/terminals/{id}/decommission', 'terminal:decommission'),
  T('POST', '/terminals/{id}/secret', 'terminal:secret'),
  T('GET', '/terminals/{id}/telemetry', 'fleet:read'),
  T('GET', '/terminals/{id}/presence', 'fleet:read'),
  T('GET', '/terminals/{id}/events', 'fleet:read'),
  T('GET', '/terminals/{id}/commands', 'fleet:read'),
  T('POST', '/terminals/{id}/commands', 'command:run'),
  X('POST', '/import', 'terminal:register', 'every node and station of the import lies under the caller’s node'),
  X('GET', '/events', 'fleet:read', 'changes of terminals under the caller’s node; ?node= outside it is 404'),
  N('GET', '/config/nodes/{id}', 'fleet:read'),
  N('PUT', '/config/nodes/{id}', 'config:write'),
  N('GET', '/config/nodes/{id}/history', 'fleet:read'),
  N('GET', '/config/nodes/{id}/diff', 'fleet:read'),
  N('GET', '/config/nodes/{id}/inherited', 'fleet:read'),
  { ...N('POST', '/config/nodes/{id}/dry-run', 'config:write'), readOnly: true },
  T('GET', '/config/terminals/{id}', 'fleet:read'),
  T('PUT', '/config/terminals/{id}', 'config:write'),
  T('GET', '/config/terminals/{id}/effective', 'fleet:read'),
  T('GET', '/config/terminals/{id}/history', 'fleet:read'),
  T('GET', '/config/terminals/{id}/diff', 'fleet:read'),
  T('GET', '/config/terminals/{id}/inherited', 'fleet:read'),
  { ...T('POST', '/config/terminals/{id}/dry-run', 'config:write'), readOnly: true },
  X('GET', '/config/drift', 'fleet:read', 'terminals under the caller’s node'),
  X('GET', '/alerts', 'fleet:read', 'alerts under the caller’s node; ?node= outside it is 404'),
  X('GET', '/alerts/{id}', 'fleet:read', '404 unless the alert’s node lies under the caller’s'),
  X('POST', '/alerts/{id}/acknowledge', 'alert:handle', '404 unless the alert’s node lies under the caller’s'),
  X('POST', '/alerts/{id}/assign', 'alert:handle', '404 unless the alert’s node lies under the caller’s; the assignee may handle alerts there'),
  X('POST', '/alerts/{id}/resolve', 'alert:handle', '404 unless the alert’s node lies under the caller’s'),
  X('POST', '/alerts/{id}/notes', 'alert:handle', '404 unless the alert’s node lies under the caller’s'),
  X('POST', '/alerts/{id}/self-test', 'command:run', '404 unless the alert’s node lies under the caller’s'),
  X('GET', '/maintenance', 'fleet:read', 'windows under the caller’s node'),
  X('POST', '/maintenance', 'alert:handle', 'the terminal or node lies under the caller’s node'),
  X('POST', '/maintenance/{id}/end', 'alert:handle', '404 unless the window’s node lies under the caller’s'),
  X('GET', '/silences', 'fleet:read', 'silences under the caller’s node'),
  X('POST', '/silences', 'config:write', 'the node lies under the caller’s node'),
  X('DELETE', '/silences/{id}', 'config:write', '404 unless the silence’s node lies under the caller’s'),
  X('GET', '/webhooks', 'webhook:manage'),
  X('POST', '/webhooks', 'webhook:manage'),
  X('DELETE', '/webhooks/{id}', 'webhook:manage'),
  X('GET', '/webhooks/{id}/deliveries', 'webhook:manage'),
  X('GET', '/hubs', 'fleet:read', 'operators bound to the city (or everything): the hubs are installation-wide; 404 below the city'),
  X('GET', '/reports/availability', 'fleet:read', 'terminals under the caller’s node; ?node=/?terminal= outside it is 404'),
  // Sub-apps mounted beside the OpenAPI app check these with requireOperator (auth/middleware.ts).
  X('POST', '/releases', 'release:write'),
  X('GET', '/releases', 'fleet:read', 'releases are installation-wide'),
  X('GET', '/releases/{id}', 'fleet:read'),
  { method: 'GET', path: '/releases/{id}/artifact', target: 'open', handler: "a terminal's download token (releases/tokens.ts)" },
  X('POST', '/rollouts', 'rollout:write', 'the rollout’s nodes lie under the caller’s node'),
  X('GET', '/rollouts', 'fleet:read', 'rollouts whose nodes lie under the caller’s node'),
  X('GET', '/rollouts/{id}', 'fleet:read', '404 unless the rollout’s nodes lie under the caller’s node'),
  X('POST', '/rollouts/{id}/pause', 'rollout:write', '404 unless the rollout’s nodes lie under the caller’s node'),
  X('POST', '/rollouts/{id}/resume', 'rollout:write', '404 unless the rollout’s nodes lie under the caller’s node'),
  X('POST', '/rollouts/{id}/abort', 'rollout:write', '404 unless the rollout’s nodes lie under the caller’s node'),
];

interface Compiled {
  policy: RoutePolicy;
  re: RegExp;
}

function compile(policies: readonly RoutePolicy[]): Compiled[] {
  return policies.map((policy) => ({
    policy,
    re: new RegExp(`^${policy.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[a-zA-Z]+\}/g, '([^/]+)')}/?$`),
  }));
}

export function findPolicy(method: string, path: string, compiled: Compiled[] = COMPILED): { policy: RoutePolicy; id: string | null } | null {
  for (const { policy, re } of compiled) {
    if (policy.method !== method && !(method === 'HEAD' && policy.method === 'GET')) continue;
    const m = re.exec(path);
    if (m) return { policy, id: m[1] === undefined ? null : decodeURIComponent(m[1]) };
  }
  return null;
}

const COMPILED = compile(ROUTE_POLICIES);

/** After `authenticate`: resolves the route's object in the caller's scope (404) and checks the permission (403). */
export function enforcePolicy(s: Services, prefix = '/api/v1'): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const path = c.req.path.startsWith(prefix) ? c.req.path.slice(prefix.length) : c.req.path;
    let found;
    try {
      found = findPolicy(c.req.method, path);
    } catch {
      found = null; // a malformed %-escape: no rule, so only a city admin passes, and the router answers them
    }
    const p = c.get('principal');
    if (!found) {
      if (p && p.role !== 'city-admin') throw new HubError(403, 'forbidden', `${c.req.method} ${path} has no access rule for a ${p.role} yet`);
      return next();
    }
    const { policy, id } = found;
    if (policy.target === 'open' || policy.target === 'self') return next();
    const perm = policy.perm ?? 'fleet:read';
    let nodeId: string | null = p.nodeId;
    if (policy.target === 'terminal') nodeId = (await terminalFor(c, s, id!, perm)).stationId;
    else if (policy.target === 'node') nodeId = (await nodeFor(c, s, id!, perm)).id;
    else requirePermission(c, perm);
    await next();
    // Every successful write leaves an audit record: the handler's own (with before/after), else this generic one.
    if (policy.method !== 'GET' && !policy.readOnly && c.res.status < 400 && !c.get('audited')) {
      await audit(c, s, {
        action: `${policy.method} ${policy.path}`,
        objectType: policy.target === 'none' ? 'route' : policy.target,
        objectId: id,
        nodeId,
        after: await bodyForAudit(c),
      });
    }
  };
}

const SECRET_KEY = /secret|password|token|key/i;

/** The JSON body with secret-looking fields blanked, or null (not JSON, or too large to keep). */
async function bodyForAudit(c: Parameters<MiddlewareHandler<ApiEnv>>[0]): Promise<unknown> {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    return null;
  }
  const text = JSON.stringify(body, (k, v: unknown) => (k !== '' && SECRET_KEY.test(k) ? '[redacted]' : v));
  return text.length > 16_384 ? { truncated: true, bytes: text.length } : (JSON.parse(text) as unknown);
}
