/**
 * The one module that talks to the hub. Every call goes through `run()`, which turns an HTTP failure into an
 * `ApiError` (a 401 also ends the session), and maps the hub's JSON into the page models of model.ts.
 *
 * A 404 without the hub's JSON error body means the route itself does not exist on this hub (a feature not built
 * or not enabled yet): pages show an honest "not available yet" for those, never made-up data.
 */
import { getToken, setToken } from './auth.ts';
import type {
  CommandRow,
  Counts,
  EventRow,
  ListPage,
  NodeSummary,
  NodeView,
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
  ) {
    super(message);
  }
}

export type Result<T> = { ok: true; data: T } | { ok: false; error: ApiError };

interface ResponseLike {
  ok: boolean;
  status: number;
  json(): Promise<unknown>;
  text(): Promise<string>;
}

function authHeaders(): Record<string, string> {
  const token = getToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

export async function run<J, T>(request: Promise<ResponseLike>, map: (json: J) => T): Promise<Result<T>> {
  let res: ResponseLike;
  try {
    res = await request;
  } catch (e) {
    return { ok: false, error: new ApiError(0, 'network', e instanceof Error ? e.message : String(e)) };
  }
  if (res.ok) {
    try {
      return { ok: true, data: map((await res.json()) as J) };
    } catch (e) {
      return { ok: false, error: new ApiError(res.status, 'bad-response', e instanceof Error ? e.message : String(e)) };
    }
  }
  const text = await res.text().catch(() => '');
  const body = parseErrorBody(text);
  const code = body?.error?.code ?? `http-${res.status}`;
  const message = body?.error?.message ?? (text.slice(0, 200) || `HTTP ${res.status}`);
  if (res.status === 401) {
    setToken(null);
    window.dispatchEvent(new CustomEvent('kf:unauthorized'));
  }
  return { ok: false, error: new ApiError(res.status, code, message, res.status === 404 && !body?.error) };
}

function parseErrorBody(text: string): { error?: { code?: string; message?: string } } | null {
  try {
    const j: unknown = JSON.parse(text);
    return j && typeof j === 'object' ? (j as { error?: { code?: string; message?: string } }) : null;
  } catch {
    return null;
  }
}

// ------------------------------------------------------------------ transport
// TODO(hub): replace with hc<AppType> as the hub's routes land.

const origin = typeof location === 'undefined' ? 'http://127.0.0.1' : location.origin;

function http(method: string, path: string, query?: Record<string, string | undefined>, body?: unknown) {
  const url = new URL(`/api/v1/${path}`, origin);
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== '') url.searchParams.set(k, v);
  const headers: Record<string, string> = { ...authHeaders() };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  return fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

const seg = encodeURIComponent;

// ------------------------------------------------------------------ mapping

type Json = Record<string, any>;

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}
function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function toNode(j: Json): NodeView {
  return {
    id: j.id,
    level: j.level,
    name: j.name ?? { zh: j.id, en: j.id },
    parentId: j.parentId ?? null,
  };
}

function toCounts(j: Json | undefined): Counts {
  return {
    total: j?.total ?? 0,
    online: j?.online ?? 0,
    offline: j?.offline ?? 0,
    stale: j?.stale ?? 0,
    fault: j?.fault ?? 0,
  };
}

function toTerminalRow(j: Json): TerminalRow {
  const peripherals: TerminalRow['peripherals'] = {};
  for (const [id, p] of Object.entries((j.peripherals ?? {}) as Record<string, Json>)) {
    peripherals[id] = { status: p.status ?? 'unknown', since: str(p.since), code: str(p.code), message: str(p.message) };
  }
  return {
    id: j.id,
    type: j.type,
    serial: str(j.serial),
    stationId: j.stationId ?? j.station,
    presence: j.presence?.state ?? 'unknown',
    presenceReason: str(j.presence?.reason),
    presenceSince: str(j.presence?.since),
    flapping: Boolean(j.presence?.flapping),
    lastSeen: str(j.lastSeen),
    peripherals,
    services: j.services ?? [],
  };
}

// ------------------------------------------------------------------ calls

export function checkToken(token: string): Promise<Result<true>> {
  const url = new URL('/api/v1/nodes', origin);
  return run(fetch(url, { headers: { Authorization: `Bearer ${token}` } }), () => true as const);
}

export function getNodes(): Promise<Result<NodeView[]>> {
  return run(http('GET', 'nodes'), (j: Json) => (j.items as Json[]).map(toNode));
}

export function getNode(id: string): Promise<Result<NodeView>> {
  return run(http('GET', `nodes/${seg(id)}`), (j: Json) => toNode(j));
}

export function getSummary(id: string): Promise<Result<NodeSummary>> {
  return run(http('GET', `nodes/${seg(id)}/summary`), (j: Json) => ({
    node: toNode(j.node),
    counts: toCounts(j.counts),
    services: j.services ?? [],
    children: ((j.children ?? []) as Json[]).map((c) => ({
      node: toNode(c.node),
      counts: toCounts(c.counts),
      services: c.services ?? [],
    })),
  }));
}

export interface TerminalFilter {
  node?: string;
  type?: string;
  presence?: string;
  fault?: string;
  q?: string;
  cursor?: string;
  limit?: string;
}

export function listTerminals(filter: TerminalFilter): Promise<Result<ListPage<TerminalRow>>> {
  return run(http('GET', 'terminals', { ...filter }), (j: Json) => ({
    items: (j.items as Json[]).map(toTerminalRow),
    nextCursor: j.nextCursor ?? null,
  }));
}

export function getTerminal(id: string): Promise<Result<TerminalDetail>> {
  return run(http('GET', `terminals/${seg(id)}`), (j: Json) => ({
    ...toTerminalRow(j),
    agentVersion: str(j.versions?.agent),
    appVersion: str(j.versions?.app),
    configVersion: num(j.versions?.config),
    host: j.latest?.host ?? null,
  }));
}

export function getTelemetry(id: string, from: Date, to: Date, bucket: string): Promise<Result<TelemetryPoint[]>> {
  return run(
    http('GET', `terminals/${seg(id)}/telemetry`, { from: from.toISOString(), to: to.toISOString(), bucket }),
    (j: Json) =>
      (j.items as Json[]).map((p) => ({
        t: Date.parse(p.t ?? p.at ?? p.ts),
        cpu: num(p.cpu),
        mem: num(p.mem),
        disk: num(p.disk),
        temp: num(p.temp ?? p.tempC),
      })),
  );
}

export function getPresenceHistory(id: string): Promise<Result<PresenceTransition[]>> {
  return run(http('GET', `terminals/${seg(id)}/presence`), (j: Json) =>
    (j.items as Json[]).map((p) => ({ at: p.at, state: p.state, reason: str(p.reason) })),
  );
}

export function getEvents(id: string): Promise<Result<EventRow[]>> {
  return run(http('GET', `terminals/${seg(id)}/events`), (j: Json) =>
    (j.items as Json[]).map((e) => ({
      at: e.at ?? e.ts,
      kind: e.kind,
      severity: e.severity,
      peripheral: str(e.peripheral),
      code: str(e.code),
      message: str(e.message),
    })),
  );
}

export function getCommands(id: string): Promise<Result<CommandRow[]>> {
  return run(http('GET', `terminals/${seg(id)}/commands`), (j: Json) =>
    (j.items as Json[]).map((c) => ({
      id: c.id,
      name: c.name,
      status: c.status,
      issuedAt: c.issuedAt ?? c.createdAt,
      result: c.result ?? null,
      error: c.error ?? null,
    })),
  );
}

export function sendCommand(id: string, name: string): Promise<Result<CommandRow>> {
  return run(http('POST', `terminals/${seg(id)}/commands`, undefined, { name, args: {} }), (c: Json) => ({
    id: c.id,
    name: c.name,
    status: c.status,
    issuedAt: c.issuedAt ?? c.createdAt,
    result: null,
    error: null,
  }));
}

export function registerTerminal(body: {
  id: string;
  type: string;
  serial?: string;
  station: string;
}): Promise<Result<{ id: string; secret: string }>> {
  return run(http('POST', 'terminals', undefined, body), (j: Json) => ({ id: j.id, secret: j.secret }));
}

export function moveTerminal(id: string, station: string, reason: string): Promise<Result<true>> {
  return run(http('POST', `terminals/${seg(id)}/move`, undefined, { station, reason }), () => true as const);
}

export interface ImportOutcome {
  created: string[];
  existing: string[];
  secrets: { id: string; secret: string }[];
}

export function importFleet(content: string, format: 'json' | 'csv'): Promise<Result<ImportOutcome>> {
  const url = new URL('/api/v1/import', origin);
  const request = fetch(url, {
    method: 'POST',
    headers: { ...authHeaders(), 'Content-Type': format === 'json' ? 'application/json' : 'text/csv' },
    body: content,
  });
  return run(request, (j: Json) => ({
    created: ((j.terminals?.created ?? []) as { id: string }[]).map((x) => x.id),
    existing: (j.terminals?.existing ?? []) as string[],
    secrets: (j.terminals?.created ?? []) as { id: string; secret: string }[],
  }));
}

/** Routes the feature issues add (alerts, config, releases, users, audit); shapes checked when they land. */
export function getList(path: string, query?: Record<string, string>): Promise<Result<ListPage<Json>>> {
  return run(http('GET', path, query), (j: Json) => ({ items: j.items ?? [], nextCursor: j.nextCursor ?? null }));
}

export function post(path: string, body: unknown): Promise<Result<Json>> {
  return run(http('POST', path, undefined, body), (j: Json) => j);
}

/** The URL of the live stream under a node; EventSource cannot send headers, so the token rides in the query. */
export function eventsUrl(node: string): string {
  const url = new URL('/api/v1/events', origin);
  url.searchParams.set('node', node);
  const token = getToken();
  if (token) url.searchParams.set('token', token);
  return url.toString();
}

export interface ConfigEntry {
  key: string;
  value: unknown;
  layer: string;
}

export function getEffectiveConfig(id: string): Promise<Result<ConfigEntry[]>> {
  return run(http('GET', `config/terminals/${seg(id)}/effective`), (j: Json) => (j.items ?? []) as ConfigEntry[]);
}

export interface NodeConfig {
  version: number;
  settings: Record<string, unknown>;
}

export function getConfigNode(node: string): Promise<Result<NodeConfig>> {
  return run(http('GET', `config/nodes/${seg(node)}`), (j: Json) => ({ version: j.version ?? 0, settings: j.settings ?? j.config ?? {} }));
}

export function saveConfigNode(node: string, expectedVersion: number, settings: unknown): Promise<Result<{ version: number }>> {
  return run(http('PUT', `config/nodes/${seg(node)}`, undefined, { expectedVersion, settings }), (j: Json) => ({ version: j.version }));
}
