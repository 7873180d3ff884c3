/**
 * The one module that talks to the hub, through Hono's typed client `hc<AppType>`: a renamed route or field in the
 * hub breaks this file's type check, not a page at run time. Every call goes through `run()`, which turns an HTTP
 * failure into an `ApiError` (a 401 also ends the session) and maps the hub's JSON into the page models of
 * model.ts.
 *
 * Routes the hub does not have yet (alerts, releases, rollouts, users, audit, node config: their own issues) are
 * called through `getList`/`post` with a plain path; the hub answers an unknown /api route with 404 `no route …`,
 * which `routeMissing` recognises so pages can say "not available yet" instead of showing made-up data.
 */
import type { Hono, Schema } from 'hono';
import { hc, type InferRequestType } from 'hono/client';
import type { AppType } from '@kiosk-fleet/hub/api';
import type { PeripheralStatus, ServiceId, Text } from '@kiosk-fleet/protocol';
import { authHeaders, setCredential } from './auth.ts';
import type {
  CommandRow,
  Counts,
  EventRow,
  ListPage,
  NodeSummary,
  NodeView,
  PresenceState,
  PresenceTransition,
  TelemetryPoint,
  TerminalDetail,
  TerminalRow,
} from './model.ts';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** True when the hub has no such route (as opposed to "no such thing"). */
    readonly routeMissing = false,
    /** The error's `details` as the hub sent them (e.g. which rollout a new one collides with). */
    readonly details: unknown = undefined,
    /** The hub's sentence for a person (`error.text`, rendered by hub-text.ts `errorText`); the message is English. */
    readonly text: Text | null = null,
  ) {
    super(message);
  }
}

export type Result<T> = { ok: true; data: T } | { ok: false; error: ApiError };

interface ResponseLike {
  ok: boolean;
  status: number;
  text(): Promise<string>;
}

/** The JSON body type of the successful members of a typed client response. */
type OkBody<R> = R extends { ok: true; json(): Promise<infer J> } ? J : never;

type ErrorBody = { error?: { code?: string; message?: string; details?: unknown; text?: Text } };

function parseErrorBody(text: string): ErrorBody | null {
  try {
    const j: unknown = JSON.parse(text);
    return j && typeof j === 'object' ? (j as ErrorBody) : null;
  } catch {
    return null;
  }
}

export async function run<R extends ResponseLike, T>(
  request: Promise<R>,
  map: (json: OkBody<R>) => T,
  /** False when checking a credential: a refused candidate token must not end the current session. */
  endSessionOn401 = true,
): Promise<Result<T>> {
  let res: R;
  try {
    res = await request;
  } catch (e) {
    return { ok: false, error: new ApiError(0, 'network', e instanceof Error ? e.message : String(e)) };
  }
  const text = await res.text().catch(() => '');
  if (res.ok) {
    try {
      return { ok: true, data: map(JSON.parse(text) as OkBody<R>) };
    } catch (e) {
      return { ok: false, error: new ApiError(res.status, 'bad-response', e instanceof Error ? e.message : String(e)) };
    }
  }
  const body = parseErrorBody(text);
  const code = body?.error?.code ?? `http-${res.status}`;
  const message = body?.error?.message ?? (text.slice(0, 200) || `HTTP ${res.status}`);
  if (res.status === 401 && endSessionOn401) {
    setCredential(null);
    if (typeof window !== 'undefined') window.dispatchEvent(new CustomEvent('kf:unauthorized'));
  }
  const routeMissing = res.status === 404 && (!body?.error || message.startsWith('no route '));
  return { ok: false, error: new ApiError(res.status, code, message, routeMissing, body?.error?.details, body?.error?.text ?? null) };
}

// ------------------------------------------------------------------ transport

const origin = typeof location === 'undefined' ? 'http://127.0.0.1' : location.origin;
const API_BASE = `${origin}/api/v1`;

/** Adds the credential to every request (headers the caller set win: a login check sends its own). */
const authedFetch: typeof fetch = (input, init = {}) => {
  const headers = new Headers(init.headers);
  for (const [k, v] of Object.entries(authHeaders(init.method ?? 'GET'))) if (!headers.has(k)) headers.set(k, v);
  return fetch(input, { ...init, headers, credentials: 'same-origin' });
};

/**
 * A route whose path is not a string literal (built with a template from a variable) enters Hono's schema under the
 * key `string`, and that index signature swallows every other route in the client's types. Such routes cannot be
 * type-checked anyway, so they are dropped here and every literal route keeps its types.
 */
type LiteralRoutes<S> = { [K in keyof S as string extends K ? never : K]: S[K] };
type TypedApp = AppType extends Hono<infer E, infer S, infer B> ? (LiteralRoutes<S> extends infer L extends Schema ? Hono<E, L, B> : never) : never;

const client = hc<TypedApp>(API_BASE, { fetch: authedFetch });

/** For routes that are not in AppType yet. */
function http(method: string, path: string, query?: Record<string, string | undefined>, body?: unknown): Promise<Response> {
  const url = new URL(`${API_BASE}/${path}`);
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== '') url.searchParams.set(k, v);
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  return authedFetch(url, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
}

// ------------------------------------------------------------------ mapping

const PRESENCE: readonly PresenceState[] = ['online', 'offline', 'stale', 'unknown'];
function presenceOf(s: string): PresenceState {
  return (PRESENCE as readonly string[]).includes(s) ? (s as PresenceState) : 'unknown';
}

type NodeJson = { id: string; level: 'city' | 'district' | 'station'; parentId: string | null; name: { zh: string; en: string } };
function toNode(j: NodeJson): NodeView {
  return { id: j.id, level: j.level, name: j.name, parentId: j.parentId };
}

type CountsJson = { total: number; online: number; offline: number; stale: number; unknown: number; withFault: number };
function toCounts(j: CountsJson): Counts {
  return { total: j.total, online: j.online, offline: j.offline, stale: j.stale, unknown: j.unknown, fault: j.withFault };
}

type SummaryJson = {
  totals: CountsJson;
  children: (CountsJson & { id: string })[];
  services: { service: string; offeredBy: number; availableNow: number; stationsWithout: string[] }[];
};
function toServices(j: SummaryJson['services']) {
  return j.map((s) => ({ service: s.service as ServiceId, available: s.availableNow, total: s.offeredBy, stationsWithout: s.stationsWithout }));
}

type TerminalJson = {
  id: string;
  type: string;
  serial: string;
  station: string;
  presence: { state: string; reason: string | null; since: string | null; flapping: boolean };
  lastSeenAt: string | null;
  faults: string[];
  services: string[];
};
function toTerminalRow(j: TerminalJson): TerminalRow {
  const peripherals: TerminalRow['peripherals'] = {};
  for (const p of j.faults) peripherals[p] = { status: 'fault', since: null, code: null, message: null };
  return {
    id: j.id,
    type: j.type,
    serial: j.serial,
    stationId: j.station,
    presence: presenceOf(j.presence.state),
    presenceReason: j.presence.reason,
    presenceSince: j.presence.since,
    flapping: j.presence.flapping,
    lastSeen: j.lastSeenAt,
    faults: j.faults,
    peripherals,
    services: j.services as ServiceId[],
  };
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

// ------------------------------------------------------------------ calls

/** Checks a token against a route that needs one, without storing it. */
export function checkToken(token: string): Promise<Result<true>> {
  return run(client.nodes.$get({ query: {} }, { headers: { Authorization: `Bearer ${token}` } }), () => true as const, false);
}

/** The hub's public facts (no credential needed): its time zone, for formatting every time on the page. */
export function getHubInfo(): Promise<Result<{ timeZone: string; demo: boolean }>> {
  return run(client.health.$get(), (j) => ({ timeZone: j.timeZone, demo: j.demo }), false);
}

export function getNodes(): Promise<Result<NodeView[]>> {
  return run(client.nodes.$get({ query: {} }), (j) => j.items.map(toNode));
}

/** A node's counts and services, and the same for each child (so "where is this service down" is answerable). */
export async function getSummary(id: string, withChildServices = true): Promise<Result<NodeSummary>> {
  const own = await run(client.nodes[':id'].summary.$get({ param: { id } }), (j) => j);
  if (!own.ok) return own;
  const j = own.data;
  const childServices = new Map<string, NodeSummary['services']>();
  if (withChildServices) {
    // One request per child (11 districts in a city, a dozen stations in a district), in parallel.
    const results = await Promise.all(
      j.children.map((c) => run(client.nodes[':id'].summary.$get({ param: { id: c.id } }), (cj) => toServices(cj.services))),
    );
    j.children.forEach((c, i) => {
      const r = results[i];
      if (r?.ok) childServices.set(c.id, r.data);
    });
  }
  return {
    ok: true,
    data: {
      node: { id: j.node, level: 'city', name: { zh: j.node, en: j.node }, parentId: null },
      counts: toCounts(j.totals),
      services: toServices(j.services),
      children: j.children.map((c) => ({
        node: { id: c.id, level: 'district', name: { zh: c.id, en: c.id }, parentId: j.node },
        counts: toCounts(c),
        services: childServices.get(c.id) ?? [],
      })),
    },
  };
}

/** The list route's filters, as the hub declares them. */
export type TerminalFilter = InferRequestType<typeof client.terminals.$get>['query'];

export function listTerminals(filter: TerminalFilter): Promise<Result<ListPage<TerminalRow>>> {
  return run(client.terminals.$get({ query: filter }), (j) => ({ items: j.items.map(toTerminalRow), nextCursor: j.nextCursor }));
}

export function getTerminal(id: string): Promise<Result<TerminalDetail>> {
  return run(client.terminals[':id'].$get({ param: { id } }), (j) => {
    const row = toTerminalRow(j);
    for (const [pid, p] of Object.entries(j.peripherals)) {
      row.peripherals[pid] = { status: p.status as PeripheralStatus, since: p.since, code: p.code ?? null, message: p.message ?? null };
    }
    const host = (j.latest?.host ?? null) as Record<string, unknown> | null;
    return {
      ...row,
      agentVersion: j.versions.agent,
      appVersion: j.versions.app,
      connected: j.connected,
      placements: j.placements,
      host: host && {
        cpu: num(host.cpu),
        memUsed: num(host.memUsed),
        memTotal: num(host.memTotal),
        diskUsed: num(host.diskUsed),
        diskTotal: num(host.diskTotal),
        tempC: num(host.tempC),
        uptime: num(host.uptime),
      },
    };
  });
}

const CHART_FIELDS = 'cpuAvg,memPctAvg,diskPctAvg,tempAvg';

/**
 * `bucket` 5m/1h are averaged from raw samples (kept 7 days); `rollup` reads the hourly rollups (400 days). Asked for
 * as rows of the charted fields only (`format=rows`): a 30-day chart is about a fifth of the bytes of the objects.
 */
export function getTelemetry(id: string, from: Date, to: Date, bucket: '5m' | '1h' | 'rollup'): Promise<Result<TelemetryPoint[]>> {
  return run(
    client.terminals[':id'].telemetry.$get({
      param: { id },
      query: { from: from.toISOString(), to: to.toISOString(), bucket, format: 'rows', fields: CHART_FIELDS, limit: '1000' },
    }),
    (j) =>
      j.items.map((p) => {
        const r = Array.isArray(p) ? p : [];
        return { t: Date.parse(String(r[0])), cpu: num(r[1]), mem: num(r[2]), disk: num(r[3]), temp: num(r[4]) };
      }),
  );
}

export function getPresenceHistory(id: string): Promise<Result<PresenceTransition[]>> {
  return run(client.terminals[':id'].presence.$get({ param: { id }, query: { limit: '200' } }), (j) =>
    j.items.map((p) => ({ at: p.at, state: presenceOf(p.to), reason: p.reason })),
  );
}

export function getEvents(id: string): Promise<Result<EventRow[]>> {
  return run(client.terminals[':id'].events.$get({ param: { id }, query: { limit: '100' } }), (j) =>
    j.items.map((e) => ({
      at: e.ts,
      kind: e.kind,
      severity: (['info', 'warning', 'critical'].includes(e.severity) ? e.severity : 'info') as EventRow['severity'],
      peripheral: e.peripheral,
      code: e.code,
      message: e.message,
    })),
  );
}

type CommandJson = { id: string; name: string; status: string; issuedAt: string; completedAt: string | null; result: unknown; error: unknown };
const toCommand = (c: CommandJson): CommandRow => ({
  id: c.id,
  name: c.name,
  status: c.status,
  issuedAt: c.issuedAt,
  completedAt: c.completedAt,
  result: c.result ?? null,
  error: c.error ?? null,
});

export function getCommands(id: string): Promise<Result<CommandRow[]>> {
  return run(client.terminals[':id'].commands.$get({ param: { id }, query: { limit: '20' } }), (j) => j.items.map(toCommand));
}

export type CommandName = 'ping' | 'self-test' | 'collect-logs' | 'restart-app' | 'restart-agent' | 'reboot';

export function sendCommand(id: string, name: CommandName): Promise<Result<CommandRow>> {
  return run(client.terminals[':id'].commands.$post({ param: { id }, json: { name, args: {} } }), toCommand);
}

export function registerTerminal(body: { id?: string; type: string; serial: string; station: string }): Promise<Result<{ id: string; secret: string }>> {
  return run(client.terminals.$post({ json: body }), (j) => ({ id: j.id, secret: j.secret }));
}

export function moveTerminal(id: string, station: string, reason: string): Promise<Result<TerminalDetail['stationId']>> {
  return run(client.terminals[':id'].move.$post({ param: { id }, json: { station, ...(reason ? { reason } : {}) } }), (j) => j.station);
}

export interface ImportOutcome {
  created: string[];
  existing: string[];
  secrets: { id: string; secret: string }[];
}

export function importFleet(content: string, format: 'json' | 'csv'): Promise<Result<ImportOutcome>> {
  // The route takes the file as it is (JSON or CSV); the hub validates every row and rejects the whole import on
  // the first bad one.
  // `init` overrides the body and headers the client would build from `json` (it would send `{}` as JSON).
  const request = client.import.$post(
    { json: {} },
    { init: { body: content, headers: { 'Content-Type': format === 'json' ? 'application/json' : 'text/csv' } } },
  );
  return run(request, (j) => ({
    created: j.terminals.created.map((x) => x.id),
    existing: j.terminals.existing,
    secrets: j.terminals.created,
  }));
}

/** One config layer (a node's or a terminal's own), versioned: writes send the version they were based on. */
export interface ConfigLayer {
  version: number;
  config: Record<string, unknown>;
  updatedAt: string | null;
  updatedBy: string | null;
}

export interface SaveOutcome {
  version: number;
  /** Terminals whose effective config changed and was pushed. */
  pushed: number;
}

const toLayer = (j: { version: number; config: Record<string, unknown>; updatedAt: string | null; updatedBy: string | null }): ConfigLayer => ({
  version: j.version,
  config: j.config,
  updatedAt: j.updatedAt,
  updatedBy: j.updatedBy,
});

export function getConfigLayer(scope: 'node' | 'terminal', id: string): Promise<Result<ConfigLayer>> {
  return scope === 'node'
    ? run(client.config.nodes[':id'].$get({ param: { id } }), toLayer)
    : run(client.config.terminals[':id'].$get({ param: { id } }), toLayer);
}

export function saveConfigLayer(
  scope: 'node' | 'terminal',
  id: string,
  expectedVersion: number,
  config: Record<string, unknown>,
  reason: string,
): Promise<Result<SaveOutcome>> {
  const json = { config, expectedVersion, ...(reason ? { reason } : {}) };
  return scope === 'node'
    ? run(client.config.nodes[':id'].$put({ param: { id }, json }), (j) => ({ version: j.version, pushed: j.pushed.count }))
    : run(client.config.terminals[':id'].$put({ param: { id }, json }), (j) => ({ version: j.version, pushed: j.pushed.count }));
}

export interface DryRun {
  changed: number;
  unchanged: number;
  terminals: { terminalId: string; stationId: string; changes: number }[];
}

/** Which terminals a layer change would reach (the hub computes the merge; nothing is saved). */
export function dryRunConfig(scope: 'node' | 'terminal', id: string, config: Record<string, unknown>): Promise<Result<DryRun>> {
  // Not in the typed client: the hub builds this route's path from a variable (see LiteralRoutes above).
  const path = `config/${scope === 'node' ? 'nodes' : 'terminals'}/${encodeURIComponent(id)}/dry-run`;
  return run(
    http('POST', path, undefined, { config }) as Untyped<{ changed: number; unchanged: number; terminals: { terminalId: string; stationId: string; changes: unknown[] }[] }>,
    (j) => ({
      changed: j.changed,
      unchanged: j.unchanged,
      terminals: j.terminals.map((t) => ({ terminalId: t.terminalId, stationId: t.stationId, changes: t.changes.length })),
    }),
  );
}

/** What a layer inherits from the layers above it: the merged config and, per dotted path, the layer that set it. */
export interface Inherited {
  config: Record<string, unknown>;
  sources: Record<string, { level: string; id: string; version: number }>;
}

export function getInheritedConfig(scope: 'node' | 'terminal', id: string): Promise<Result<Inherited>> {
  const map = (j: Inherited): Inherited => ({ config: j.config, sources: j.sources });
  return scope === 'node'
    ? run(client.config.nodes[':id'].inherited.$get({ param: { id } }), map)
    : run(client.config.terminals[':id'].inherited.$get({ param: { id } }), map);
}

export interface EffectiveConfig {
  /** Dotted path → value and the layer it came from. */
  entries: { key: string; value: unknown; layer: { level: string; id: string; version: number } | null }[];
  desiredVersion: number | null;
  sync: { status: 'in-sync' | 'pending' | 'rejected'; appliedVersion: number; rejectedReason: string | null; driftSince: string | null };
}

function flattenConfig(obj: unknown, prefix = '', out: [string, unknown][] = []): [string, unknown][] {
  if (obj && typeof obj === 'object' && !Array.isArray(obj)) {
    for (const [k, v] of Object.entries(obj)) flattenConfig(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) out.push([prefix, obj]);
  return out;
}

export function getEffectiveConfig(id: string): Promise<Result<EffectiveConfig>> {
  return run(client.config.terminals[':id'].effective.$get({ param: { id } }), (j) => ({
    entries: flattenConfig(j.config).map(([key, value]) => {
      // A source is recorded per path the layers set; a nested value inherits its parent's source.
      let src = j.sources[key];
      for (let k = key; !src && k.includes('.'); ) {
        k = k.slice(0, k.lastIndexOf('.'));
        src = j.sources[k];
      }
      return { key, value, layer: src ?? null };
    }),
    desiredVersion: j.desired?.version ?? null,
    sync: {
      status: j.sync.status,
      appliedVersion: j.sync.appliedVersion,
      rejectedReason: j.sync.rejected?.reason ?? null,
      driftSince: j.sync.drift?.since ?? null,
    },
  }));
}

// ------------------------------------------------------------------ operators (auth)

type Untyped<J> = Promise<Response & { ok: true; json(): Promise<J> }>;

export interface Me {
  kind: 'session' | 'token' | 'admin-token';
  username: string | null;
  role: string;
  nodeId: string | null;
  mustChangePassword: boolean;
  permissions: string[];
  csrfToken: string | null;
}

/** Who the current credential is; a 401 here only means "not signed in", it does not end anything. */
export function getMe(): Promise<Result<Me>> {
  return run(
    client.auth.me.$get(),
    (j) => ({
      kind: j.kind,
      username: j.user?.username ?? null,
      role: j.role,
      nodeId: j.nodeId,
      mustChangePassword: j.mustChangePassword,
      permissions: j.permissions,
      csrfToken: j.csrfToken,
    }),
    false,
  );
}

export function loginWithPassword(username: string, password: string): Promise<Result<{ csrfToken: string; mustChangePassword: boolean }>> {
  return run(
    client.auth.login.$post({ json: { username, password } }),
    (j) => ({ csrfToken: j.csrfToken, mustChangePassword: j.mustChangePassword }),
    false,
  );
}

export function logout(): Promise<Result<true>> {
  return run(client.auth.logout.$post(), () => true as const, false);
}

export function changePassword(currentPassword: string, newPassword: string): Promise<Result<true>> {
  return run(client.auth.password.$post({ json: { currentPassword, newPassword } }), () => true as const);
}

export interface UserRow {
  id: string;
  username: string;
  displayName: string | null;
  role: string;
  nodeId: string | null;
  disabled: boolean;
  mustChangePassword: boolean;
}

export function getUsers(): Promise<Result<UserRow[]>> {
  return run(client.users.$get({ query: { limit: '200' } }), (j) =>
    j.items.map((u) => ({
      id: u.id,
      username: u.username,
      displayName: u.displayName,
      role: u.role,
      nodeId: u.nodeId,
      disabled: u.disabled,
      mustChangePassword: u.mustChangePassword,
    })),
  );
}

export interface AuditRow {
  id: number;
  at: string;
  actor: string;
  action: string;
  objectType: string;
  objectId: string | null;
  nodeId: string | null;
  outcome: string;
}

export function getAudit(cursor?: string): Promise<Result<ListPage<AuditRow>>> {
  return run(client.audit.$get({ query: { limit: '50', ...(cursor ? { cursor } : {}) } }), (j) => ({
    items: j.items.map((a) => ({
      id: a.id,
      at: a.at,
      actor: a.actor,
      action: a.action,
      objectType: a.objectType,
      objectId: a.objectId,
      nodeId: a.nodeId,
      outcome: a.outcome,
    })),
    nextCursor: j.nextCursor,
  }));
}

export function verifyAudit(): Promise<Result<{ ok: boolean; checked: number; brokenAt: number | null; message: string | null }>> {
  return run(client.audit.verify.$get(), (j) => ({ ok: j.ok, checked: j.checked, brokenAt: j.brokenAt, message: j.message }));
}

// ------------------------------------------------------------------ alerts

export interface AlertView {
  id: number;
  rule: string;
  severity: 'critical' | 'major' | 'minor';
  state: 'open' | 'acknowledged' | 'assigned' | 'resolved';
  /** English, as the hub stored it; `text` is the same title as a code (hub-text.ts renders it). */
  title: string;
  text: Text | null;
  terminalId: string | null;
  nodeId: string;
  stationId: string | null;
  /** The station's name from the hub (both languages), whether or not the operator's tree holds it. */
  stationName: { zh: string; en: string } | null;
  openedAt: string;
  ageSeconds: number;
  overdue: boolean;
  assignedTo: string | null;
  acknowledgedBy: string | null;
  resolution: string | null;
  resolutionNote: string | null;
  /** A peripheral-fault alert's peripherals (its `details`): which, the agent's fault code, since when. */
  faults: { peripheral: string; code: string | null; since: string }[];
  /** A station-service alert's citizen services the station cannot offer (its `details`). */
  services: string[];
}

export interface AlertDetail extends AlertView {
  history: { at: string; actor: string; action: string; note: string | null; text: Text | null }[];
  selfTests: { commandId: string; terminalId: string | null; requestedAt: string; status: string; result: unknown; error: unknown }[];
}

type AlertJson = {
  id: number;
  rule: string;
  severity: AlertView['severity'];
  state: AlertView['state'];
  title: string;
  text: Text | null;
  terminalId: string | null;
  nodeId: string;
  station: { id: string; name: { zh: string; en: string } } | null;
  openedAt: string;
  ageSeconds: number;
  overdue: boolean;
  assignedTo: string | null;
  acknowledged: { by: string | null } | null;
  resolved: { resolution: string | null; note: string | null } | null;
  details?: unknown;
};

function faultsOf(details: unknown): AlertView['faults'] {
  const list = (details as { peripherals?: unknown } | null)?.peripherals;
  if (!Array.isArray(list)) return [];
  return list.flatMap((p: { id?: unknown; code?: unknown; since?: unknown }) =>
    typeof p?.id === 'string' && typeof p.since === 'string' ? [{ peripheral: p.id, code: typeof p.code === 'string' ? p.code : null, since: p.since }] : [],
  );
}

function servicesOf(rule: string, details: unknown): string[] {
  const list = (details as { services?: unknown } | null)?.services;
  return rule === 'station-service-lost' && Array.isArray(list) ? list.filter((x): x is string => typeof x === 'string') : [];
}

const toAlert = (a: AlertJson): AlertView => ({
  id: a.id,
  rule: a.rule,
  severity: a.severity,
  state: a.state,
  title: a.title,
  text: a.text,
  terminalId: a.terminalId,
  nodeId: a.nodeId,
  stationId: a.station?.id ?? null,
  stationName: a.station?.name ?? null,
  openedAt: a.openedAt,
  ageSeconds: a.ageSeconds,
  overdue: a.overdue,
  assignedTo: a.assignedTo,
  acknowledgedBy: a.acknowledged?.by ?? null,
  resolution: a.resolved?.resolution ?? null,
  resolutionNote: a.resolved?.note ?? null,
  faults: faultsOf(a.details),
  services: servicesOf(a.rule, a.details),
});

/** The technician's queue (critical first, then oldest) or every alert, under a node or for one terminal. */
export function listAlerts(f: { node?: string; terminal?: string; all?: boolean; limit?: number }): Promise<Result<ListPage<AlertView>>> {
  return run(
    client.alerts.$get({
      query: {
        ...(f.node ? { node: f.node } : {}),
        ...(f.terminal ? { terminal: f.terminal } : {}),
        ...(f.all ? { state: 'all', sort: 'newest' as const } : { sort: 'queue' as const }),
        limit: String(f.limit ?? 100),
      },
    }),
    (j) => ({ items: j.items.map(toAlert), nextCursor: j.nextCursor }),
  );
}

type AlertDetailJson = AlertJson & {
  history: { at: string; actor: string; action: string; note: string | null; text: Text | null }[];
  selfTests: { commandId: string; terminalId: string | null; requestedAt: string; status: string; result: unknown; error: unknown }[];
};
const toDetail = (j: AlertDetailJson): AlertDetail => ({
  ...toAlert(j),
  history: j.history.map((h) => ({ at: h.at, actor: h.actor, action: h.action, note: h.note, text: h.text })),
  selfTests: j.selfTests.map((x) => ({ commandId: x.commandId, terminalId: x.terminalId, requestedAt: x.requestedAt, status: x.status, result: x.result, error: x.error })),
});

export function getAlert(id: number): Promise<Result<AlertDetail>> {
  return run(client.alerts[':id'].$get({ param: { id: String(id) } }), toDetail);
}

export type AlertAction =
  | { kind: 'acknowledge' }
  | { kind: 'assign'; to: string }
  | { kind: 'resolve'; note: string }
  | { kind: 'note'; note: string }
  | { kind: 'self-test' };

export function alertAction(id: number, a: AlertAction): Promise<Result<AlertDetail>> {
  const param = { id: String(id) };
  switch (a.kind) {
    case 'acknowledge':
      return run(client.alerts[':id'].acknowledge.$post({ param, json: {} }), toDetail);
    case 'assign':
      return run(client.alerts[':id'].assign.$post({ param, json: { to: a.to } }), toDetail);
    case 'resolve':
      return run(client.alerts[':id'].resolve.$post({ param, json: { note: a.note } }), toDetail);
    case 'note':
      return run(client.alerts[':id'].notes.$post({ param, json: { note: a.note } }), toDetail);
    case 'self-test':
      return run(client.alerts[':id']['self-test'].$post({ param }), toDetail);
  }
}

// ------------------------------------------------------------------ releases and rollouts (plain Hono routes: not in AppType)

export interface ReleaseRow {
  id: string;
  kind: string;
  version: string;
  size: number;
  terminalTypes: string[];
  uploadedAt: string;
  keyId: string;
}

export function getReleases(): Promise<Result<ReleaseRow[]>> {
  return run(http('GET', 'releases') as Untyped<{ items: ReleaseRow[] }>, (j) =>
    j.items.map((r) => ({ id: r.id, kind: r.kind, version: r.version, size: r.size, terminalTypes: r.terminalTypes ?? [], uploadedAt: r.uploadedAt, keyId: r.keyId })),
  );
}

/** Upload a packed release: the artifact streams as the body, the signed manifest and its signature as headers. */
export async function uploadRelease(artifact: File, manifest: File, signature: File): Promise<Result<ReleaseRow>> {
  const bytes = new Uint8Array(await manifest.arrayBuffer());
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  const request = authedFetch(`${API_BASE}/releases`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/octet-stream',
      'X-KF-Manifest': btoa(bin),
      'X-KF-Signature': (await signature.text()).trim(),
    },
    body: artifact,
  });
  return run(request as Untyped<ReleaseRow>, (r) => r);
}

export interface RolloutRow {
  id: string;
  releaseId: string;
  version: string;
  nodeIds: string[];
  status: 'running' | 'paused' | 'aborted' | 'completed';
  wave: number;
  pauseReason: { code: string; message: string; text?: Text } | null;
  waves: { wave: number; name: string; size: number; counts: Record<string, number>; passed: string | null }[];
  urgent: boolean;
  gate?: { successRatio: number; soakMinutes: number; failureRateTolerance: number };
  waveStartedAt?: string;
  createdAt: string;
  updatedAt?: string;
  createdBy: string;
}

export interface RolloutTerminal {
  wave: number;
  phase: string;
  targetedAt: number | null;
  committedAt: number | null;
  /** `text` for the hub's own verdict (unhealthy after the update); an agent's error is rendered from its `code`. */
  error: { code: string; message: string; text?: Text } | null;
}

/** One rollout with where each terminal is (the list carries only counts per wave). */
export function getRollout(id: string): Promise<Result<RolloutRow & { terminals: Record<string, RolloutTerminal> }>> {
  return run(http('GET', `rollouts/${encodeURIComponent(id)}`) as Untyped<RolloutRow & { terminals: Record<string, RolloutTerminal> }>, (j) => j);
}

export function getRollouts(): Promise<Result<RolloutRow[]>> {
  return run(http('GET', 'rollouts') as Untyped<{ items: RolloutRow[] }>, (j) => j.items);
}

export interface NewRollout {
  releaseId: string;
  nodeIds: string[];
  /** Stations of the pilot wave; the rest of the scope follows in a second wave. */
  pilotStations: string[];
  urgent: boolean;
  /** Each wave passes when this share of its terminals installed and stayed healthy for soakMinutes. */
  gate: { successRatio: number; soakMinutes: number };
}

export function createRollout(r: NewRollout): Promise<Result<RolloutRow>> {
  const waves = [...(r.pilotStations.length ? [{ kind: 'pilot', name: 'pilot', stations: r.pilotStations }] : []), { kind: 'rest', name: 'rest' }];
  return run(http('POST', 'rollouts', undefined, { releaseId: r.releaseId, nodeIds: r.nodeIds, waves, urgent: r.urgent, gate: r.gate }) as Untyped<RolloutRow>, (j) => j);
}

export function rolloutAction(id: string, action: 'pause' | 'resume' | 'abort'): Promise<Result<RolloutRow>> {
  return run(http('POST', `rollouts/${encodeURIComponent(id)}/${action}`, undefined, {}) as Untyped<RolloutRow>, (j) => j);
}

// ------------------------------------------------------------------ routes not in AppType yet

type Json = Record<string, any>;

/** Alerts, releases, rollouts, users, audit: shapes checked when their routes land in AppType. */
export function getList(path: string, query?: Record<string, string>): Promise<Result<ListPage<Json>>> {
  return run(http('GET', path, query) as Promise<Response & { ok: true; json(): Promise<Json> }>, (j: Json) => ({
    items: (j.items ?? []) as Json[],
    nextCursor: (j.nextCursor ?? null) as string | null,
  }));
}

export function post(path: string, body: unknown): Promise<Result<Json>> {
  return run(http('POST', path, undefined, body) as Promise<Response & { ok: true; json(): Promise<Json> }>, (j: Json) => j);
}

/** The live stream's URL and the headers to open it with (see live.ts for why this is fetch, not EventSource). */
export function eventsRequest(node: string): { url: string; headers: Record<string, string> } {
  const url = new URL(`${API_BASE}/events`);
  url.searchParams.set('node', node);
  return { url: url.toString(), headers: { ...authHeaders('GET'), Accept: 'text/event-stream' } };
}

/**
 * A station's terminals with every peripheral's state: the list carries only the peripherals in fault, so each
 * terminal's detail is read too (a station has a handful of terminals).
 */
export async function getStationTerminals(station: string): Promise<Result<TerminalDetail[]>> {
  const list = await listTerminals({ node: station, limit: '200' });
  if (!list.ok) return list;
  const details = await Promise.all(list.data.items.map((r) => getTerminal(r.id)));
  const out: TerminalDetail[] = [];
  for (const d of details) {
    if (!d.ok) return d;
    out.push(d.data);
  }
  return { ok: true, data: out };
}

// ------------------------------------------------------------------ user management (user:manage)

export type RoleName = 'city-admin' | 'district-admin' | 'technician' | 'viewer';

export interface TokenRow {
  id: string;
  name: string;
  role: string;
  nodeId: string | null;
  createdAt: string;
  expiresAt: string;
  lastUsedAt: string | null;
  active: boolean;
}

const toToken = (j: TokenRow): TokenRow => ({
  id: j.id,
  name: j.name,
  role: j.role,
  nodeId: j.nodeId,
  createdAt: j.createdAt,
  expiresAt: j.expiresAt,
  lastUsedAt: j.lastUsedAt,
  active: j.active,
});

/** Creates a user; the hub generates the one-time password and returns it this once. */
export function createUser(u: { username: string; displayName?: string; role: RoleName; nodeId: string | null }): Promise<Result<{ id: string; password: string | null }>> {
  return run(client.users.$post({ json: u }), (j) => ({ id: j.user.id, password: j.password }));
}

export function resetUserPassword(id: string): Promise<Result<string>> {
  return run(client.users[':id']['reset-password'].$post({ param: { id } }), (j) => j.password);
}

export function setUserDisabled(id: string, disabled: boolean): Promise<Result<true>> {
  // disable/enable are built by a helper in the hub (a path from a variable), so they are not in AppType's literal routes
  return run(http('POST', `users/${encodeURIComponent(id)}/${disabled ? 'disable' : 'enable'}`, undefined, {}) as Untyped<unknown>, () => true as const);
}

export function getUserTokens(userId: string): Promise<Result<TokenRow[]>> {
  return run(client.auth.tokens.$get({ query: { user: userId } }), (j) => j.items.map(toToken));
}

export function createUserToken(userId: string, body: { name: string; role?: RoleName; nodeId?: string | null; expiresInDays: number }): Promise<Result<{ row: TokenRow; token: string }>> {
  return run(client.users[':id'].tokens.$post({ param: { id: userId }, json: body }), (j) => ({ row: toToken(j), token: j.token }));
}

export function revokeToken(id: string): Promise<Result<true>> {
  return run(client.auth.tokens[':id'].$delete({ param: { id } }), () => true as const);
}

// ------------------------------------------------------------------ availability report (/reports/availability)

export interface ReportService {
  terminals: number;
  plannedSeconds: number;
  expectedSeconds: number;
  availableSeconds: number;
  share: number | null;
  downtimeSeconds: { offline: number; peripheralFault: number; appDown: number; noData: number };
}

export interface ReportRow {
  level: 'terminal' | 'station' | 'district' | 'city';
  id: string;
  terminals: number;
  periodSeconds: number;
  plannedSeconds: number;
  offlineSeconds: number;
  services: Record<string, ReportService>;
}

export interface AvailabilityReport {
  node: string | null;
  from: string;
  to: string;
  terminals: ReportRow[];
  stations: ReportRow[];
  districts: ReportRow[];
  city: ReportRow[];
}

export interface ReportQuery {
  node?: string;
  terminal?: string;
  from: string;
  to: string;
}

const reportQuery = (q: ReportQuery, format: 'json' | 'csv') => ({ ...(q.node ? { node: q.node } : {}), ...(q.terminal ? { terminal: q.terminal } : {}), from: q.from, to: q.to, format });

export function getAvailability(q: ReportQuery): Promise<Result<AvailabilityReport>> {
  return run(http('GET', 'reports/availability', reportQuery(q, 'json')) as Untyped<AvailabilityReport>, (j) => j);
}

/** The same report as CSV, fetched with the credential (a bearer token cannot ride on a plain link). */
export async function getAvailabilityCsv(q: ReportQuery): Promise<Result<Blob>> {
  const res = await http('GET', 'reports/availability', reportQuery(q, 'csv')).catch((e: unknown) => e as Error);
  if (res instanceof Error) return { ok: false, error: new ApiError(0, 'network', res.message) };
  if (!res.ok) return run(Promise.resolve(res) as Untyped<never>, () => new Blob());
  return { ok: true, data: await res.blob() };
}
