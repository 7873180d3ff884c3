/**
 * The API's access checks, one place for every route: first "can the caller see it" (404 when not: what lies
 * outside a caller's node does not exist for them), then "may their role do this" (403).
 *
 *   const t = await terminalFor(c, s, id, 'terminal:place');   // 404 outside scope, 403 for a viewer, else the row
 *   await transaction(s.engine, async (tx) => {
 *     …the change, tx…;
 *     await audit(c, s, { action: 'terminal.move', objectType: 'terminal', objectId: id, nodeId: t.stationId, before, after }, tx);
 *   });
 */
import type { Context } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { AuditEntry, AuditRow } from '../audit/log.ts';
import type { Tx } from '../db/engine.ts';
import { HubError, notFound } from '../errors.ts';
import type { NodeRow, TerminalRow } from '../fleet/store.ts';
import type { ApiEnv, Services } from '../api/common.ts';
import { actorName, can, PERMISSIONS, sees, type Permission, type Principal } from './permissions.ts';
import type { Origin } from './service.ts';

type C = Context<ApiEnv>;

export function principalOf(c: C): Principal {
  return c.get('principal');
}

/** The client address (the socket's; a proxy's X-Forwarded-For is not trusted). */
export function clientIp(c: Context): string | null {
  try {
    return getConnInfo(c).remote.address ?? null;
  } catch {
    return null; // app.request() in tests: no socket
  }
}

export function originOf(c: C): Origin {
  return { principal: principalOf(c), ip: clientIp(c) };
}

export function forbiddenFor(p: Principal, perm: Permission): HubError {
  return new HubError(403, 'forbidden', `a ${p.role} may not ${PERMISSIONS[perm].what}`, { permission: perm, role: p.role }, {
    code: 'error.forbidden',
    params: {},
  });
}

/** 403 unless the caller's role has `perm`. */
export function requirePermission(c: C, perm: Permission): Principal {
  const p = principalOf(c);
  if (!can(p, perm)) throw forbiddenFor(p, perm);
  return p;
}

/** The node if the caller can see it (404 otherwise), then 403 unless their role has `perm`. */
export async function nodeFor(c: C, s: Services, id: string, perm: Permission = 'fleet:read'): Promise<NodeRow> {
  const p = principalOf(c);
  const n = await s.registry.node(id);
  if (!n || !sees(p, n.id)) throw notFound('node', id);
  if (!can(p, perm)) throw forbiddenFor(p, perm);
  return n;
}

/** The terminal if its station lies under the caller's node (404 otherwise), then 403 unless their role has `perm`. */
export async function terminalFor(c: C, s: Services, id: string, perm: Permission = 'fleet:read'): Promise<TerminalRow> {
  const p = principalOf(c);
  const t = await s.registry.terminal(id);
  if (!t || !sees(p, t.stationId)) throw notFound('terminal', id);
  if (!can(p, perm)) throw forbiddenFor(p, perm);
  return t;
}

/** True when the caller can see the node (for filtering lists and streams). */
export function visible(c: C, nodeId: string | null): boolean {
  return sees(principalOf(c), nodeId);
}

/** Writes an audit record for a change the caller made; with `tx`, in the transaction of the change. */
export function audit(c: C, s: Pick<Services, 'audit'>, e: Omit<AuditEntry, 'actor' | 'actorKind' | 'userId' | 'ip'>, tx?: Tx): Promise<AuditRow> {
  const p = principalOf(c);
  c.set('audited', true);
  return s.audit.append({ actor: actorName(p), actorKind: p.kind, userId: p.userId, ip: clientIp(c), ...e }, tx);
}
