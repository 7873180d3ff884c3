/**
 * Roles bound to a node of the tree, and what each may do: the permission matrix is data (PERMISSIONS), read by the
 * API's guards (auth/guard.ts) and printed in hub/README.md ("Operators").
 *
 * Two questions, always in this order:
 * 1. Can the caller see the object? Only what lies under the caller's node exists for them (404 otherwise).
 * 2. May the caller's role do this to it? (403 otherwise.)
 */
import { isUnderNode, nodeLevel, type NodeLevel } from '@kiosk-fleet/protocol';

/** `metrics` is for a Prometheus scraper's API token: it reads /metrics and nothing else (not even the fleet). */
export const ROLES = ['city-admin', 'district-admin', 'technician', 'viewer', 'metrics'] as const;
export type Role = (typeof ROLES)[number];

export type Permission =
  | 'fleet:read'
  | 'terminal:register'
  | 'terminal:place'
  | 'terminal:decommission'
  | 'terminal:secret'
  | 'node:write'
  | 'config:write'
  | 'rollout:write'
  | 'release:write'
  | 'command:run'
  | 'alert:handle'
  | 'webhook:manage'
  | 'user:manage'
  | 'audit:read'
  | 'audit:verify'
  | 'metrics:read';

/** Who may do what (always only under their own node). */
export const PERMISSIONS: Record<Permission, { roles: readonly Role[]; what: string }> = {
  'fleet:read': { roles: ['city-admin', 'district-admin', 'technician', 'viewer'], what: 'see nodes, terminals, telemetry, events, commands, config, summaries, the live stream' },
  'terminal:register': { roles: ['city-admin', 'district-admin'], what: 'register terminals, import a fleet' },
  'terminal:place': { roles: ['city-admin', 'district-admin'], what: 'move a terminal to another station' },
  'terminal:decommission': { roles: ['city-admin', 'district-admin'], what: 'decommission a terminal' },
  'terminal:secret': { roles: ['city-admin', 'district-admin'], what: "issue a terminal's new secret" },
  'node:write': { roles: ['city-admin', 'district-admin'], what: 'create nodes (a district admin: stations of their district)' },
  'config:write': { roles: ['city-admin', 'district-admin'], what: 'change desired config' },
  'rollout:write': { roles: ['city-admin', 'district-admin'], what: 'create, pause, resume, abort rollouts' },
  'release:write': { roles: ['city-admin'], what: 'upload release artifacts' },
  'command:run': { roles: ['city-admin', 'district-admin', 'technician'], what: 'send commands (self-test, diagnostics, restart)' },
  'alert:handle': { roles: ['city-admin', 'district-admin', 'technician'], what: 'acknowledge, assign, resolve alerts; maintenance windows' },
  'webhook:manage': { roles: ['city-admin'], what: 'manage alert webhooks (installation-wide)' },
  'user:manage': { roles: ['city-admin', 'district-admin'], what: 'create users, change roles, reset passwords, disable users (of their node)' },
  'audit:read': { roles: ['city-admin', 'district-admin'], what: 'read the audit log (records under their node)' },
  'audit:verify': { roles: ['city-admin'], what: "check the audit log's hash chain" },
  'metrics:read': { roles: ['city-admin', 'metrics'], what: 'scrape /metrics (Prometheus text, installation-wide)' },
};

/** Where each role may be bound: a technician to a district or a station, a viewer anywhere. */
export const ROLE_LEVELS: Record<Role, readonly (NodeLevel | 'all')[]> = {
  'city-admin': ['all', 'city'],
  'district-admin': ['district'],
  technician: ['district', 'station'],
  viewer: ['all', 'city', 'district', 'station'],
  metrics: ['all'],
};

const RANK: Record<Role, number> = { 'city-admin': 3, 'district-admin': 2, technician: 1, viewer: 0, metrics: -1 };

export function isRole(r: string): r is Role {
  return (ROLES as readonly string[]).includes(r);
}

/** Who is calling: a signed-in user (session), a user's API token, or the installation's KF_ADMIN_TOKEN. */
export interface Principal {
  kind: 'session' | 'token' | 'admin-token';
  userId: string | null;
  username: string;
  tokenId: string | null;
  role: Role;
  /** The node the role is bound to; null: the whole installation. */
  nodeId: string | null;
  /** The session's CSRF token (sessions only). */
  csrfToken?: string;
  sessionHash?: string;
  mustChangePassword?: boolean;
}

/** The actor string written to logs and the placement history. */
export function actorName(p: Principal): string {
  if (p.kind === 'admin-token') return 'admin-token';
  if (p.kind === 'token') return `${p.username} (token ${p.tokenId})`;
  return p.username;
}

export function can(p: Pick<Principal, 'role'>, perm: Permission): boolean {
  return PERMISSIONS[perm].roles.includes(p.role);
}

/** True when `nodeId` lies under the scope `scope` (null scope = everything). */
export function inScope(scope: string | null, nodeId: string | null): boolean {
  if (scope === null) return true;
  if (nodeId === null) return false;
  return isUnderNode(nodeId, scope);
}

export function sees(p: Pick<Principal, 'nodeId'>, nodeId: string | null): boolean {
  return inScope(p.nodeId, nodeId);
}

/** Why a role cannot be bound to a node, or null. */
export function bindingProblem(role: Role, nodeId: string | null): string | null {
  const level = nodeId === null ? 'all' : nodeLevel(nodeId);
  if (level === null) return `node ${JSON.stringify(nodeId)} is not a node id`;
  if (!ROLE_LEVELS[role].includes(level)) {
    return `a ${role} is bound to ${ROLE_LEVELS[role].map((l) => (l === 'all' ? 'the whole installation (node null)' : `a ${l}`)).join(' or ')}`;
  }
  return null;
}

/**
 * May `actor` give `role` at `nodeId` (to a user or a token)? Only within their own scope and never above their own
 * role; a district admin may create another district admin of their own district, not a city admin.
 */
export function mayGrant(actor: Pick<Principal, 'role' | 'nodeId'>, role: Role, nodeId: string | null): boolean {
  // The metrics are installation-wide figures: only who may read them gives the role, whatever their rank.
  if (role === 'metrics' && !can(actor, 'metrics:read')) return false;
  return RANK[role] <= RANK[actor.role] && inScope(actor.nodeId, nodeId);
}

/** The lower of two roles (a token never exceeds its owner's current role). */
export function lowerRole(a: Role, b: Role): Role {
  return RANK[a] <= RANK[b] ? a : b;
}
