/**
 * What the pages show. The API module maps the hub's responses into these, so a page never depends on a wire
 * detail and a hub change surfaces as a type error in api.ts (the hub's types come through `hc<AppType>`).
 */
import type { PeripheralStatus, ServiceId } from '@kiosk-fleet/protocol';

export interface I18nText {
  zh: string;
  en: string;
}

export type Level = 'city' | 'district' | 'station';

export interface NodeView {
  id: string;
  level: Level;
  name: I18nText;
  parentId: string | null;
}

export interface Counts {
  total: number;
  online: number;
  offline: number;
  stale: number;
  /** Registered, never seen online. */
  unknown: number;
  /** Terminals with at least one peripheral in fault. */
  fault: number;
}

export interface ServiceAvailability {
  service: ServiceId;
  /** Terminals able to offer it now. */
  available: number;
  /** Terminals whose type offers it. */
  total: number;
  /** Stations under the node with such a terminal that cannot offer it now (the hub's summary). */
  stationsWithout: string[];
}

export interface ChildSummary {
  node: NodeView;
  counts: Counts;
  services: ServiceAvailability[];
}

export interface NodeSummary {
  node: NodeView;
  counts: Counts;
  services: ServiceAvailability[];
  children: ChildSummary[];
}

export type PresenceState = 'online' | 'offline' | 'stale' | 'unknown';

export interface PeripheralView {
  status: PeripheralStatus;
  since: string | null;
  code: string | null;
  message: string | null;
}

export interface TerminalRow {
  id: string;
  /** Peripherals in fault (the list carries only these; the detail carries every peripheral). */
  faults: string[];
  type: string;
  serial: string | null;
  stationId: string;
  presence: PresenceState;
  presenceReason: string | null;
  presenceSince: string | null;
  flapping: boolean;
  lastSeen: string | null;
  peripherals: Record<string, PeripheralView>;
  services: ServiceId[];
}

export interface TerminalDetail extends TerminalRow {
  agentVersion: string | null;
  appVersion: string | null;
  connected: boolean;
  placements: { from: string | null; to: string | null; by: string; at: string; reason: string | null }[];
  host: {
    cpu: number | null;
    memUsed: number | null;
    memTotal: number | null;
    diskUsed: number | null;
    diskTotal: number | null;
    tempC: number | null;
    uptime: number | null;
  } | null;
}

/** One chart point; time in ms since the epoch, metrics as percentages (temperature in °C). */
export interface TelemetryPoint {
  t: number;
  cpu: number | null;
  mem: number | null;
  disk: number | null;
  temp: number | null;
}

export interface PresenceTransition {
  at: string;
  state: PresenceState | 'flapping';
  reason: string | null;
}

export interface EventRow {
  at: string;
  kind: string;
  severity: 'info' | 'warning' | 'critical';
  peripheral: string | null;
  code: string | null;
  message: string | null;
}

export interface CommandRow {
  id: string;
  name: string;
  status: string;
  issuedAt: string;
  completedAt: string | null;
  result: unknown;
  error: unknown;
}

export interface ListPage<T> {
  items: T[];
  nextCursor: string | null;
}
