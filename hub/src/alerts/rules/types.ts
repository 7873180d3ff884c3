/**
 * What a rule sees and what it says. Rules are pure functions of a snapshot (no database, no clock of their own), so
 * each is tested with a hand-made snapshot and the engine decides what to open, keep and resolve.
 */
import type { PeripheralStatus } from '@kiosk-fleet/protocol';
import { alertTitle } from '../text.ts';

export const SEVERITIES = ['critical', 'major', 'minor'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const RULE_IDS = [
  'offline',
  'peripheral-fault',
  'disk-full',
  'temperature',
  'config-drift',
  'update-failed',
  'flapping',
  'station-service-lost',
  'terminal-flooding',
  'credential-reuse',
] as const;
export type RuleId = (typeof RULE_IDS)[number];

/** Thresholds of one terminal (the `alerts.thresholds` of its effective config, defaults filled in). */
export interface Thresholds {
  offlineMinutes: number;
  peripheralFaultMinutes: number;
  diskPercent: number;
  temperatureC: number;
  driftMinutes: number;
  /** More than `transitions` presence transitions in `windowMinutes`; unset: the hub-wide presence flag decides. */
  flapping?: { transitions: number; windowMinutes: number } | undefined;
}

export interface Sla {
  critical: number;
  major: number;
  minor: number;
}

/** Defaults when no layer of the tree sets a value (minutes, percent, °C). */
export const DEFAULT_THRESHOLDS: Thresholds = {
  offlineMinutes: 10,
  peripheralFaultMinutes: 5,
  diskPercent: 90,
  temperatureC: 70,
  driftMinutes: 30,
};

/** Minutes to acknowledge before an alert escalates to the district admin. */
export const DEFAULT_SLA: Sla = { critical: 15, major: 60, minor: 240 };

export interface PeripheralView {
  status: PeripheralStatus;
  since: number;
  code?: string | undefined;
  message?: string | undefined;
}

export interface TerminalView {
  id: string;
  type: string;
  stationId: string;
  presence: 'unknown' | 'online' | 'offline' | 'stale';
  presenceReason: string | null;
  presenceSince: number | null;
  flapping: boolean;
  /** Last sample's host figures; null before the first sample. */
  host: { diskUsed: number; diskTotal: number; tempC: number | null } | null;
  peripherals: Record<string, PeripheralView> | null;
  /** Services available in the last sample; null before the first sample. */
  services: readonly string[] | null;
  thresholds: Thresholds;
  /** Under maintenance (itself or a node above it): planned downtime, it neither offers nor lacks anything. */
  inMaintenance: boolean;
  /** Over its ingest quota now (ingest/quota.ts); absent or null: not. */
  flooding?: { since: number; dropped: Record<string, number> } | null;
  /** Its credentials in use from two addresses now (broker/takeover.ts); absent or null: not. */
  credentialConflict?: {
    since: number;
    addresses: [string, string];
    takeovers: number;
    refused: number;
    heldOff: { address: string; until: number } | null;
  } | null;
}

export interface DriftView {
  terminalId: string;
  since: number;
  desiredVersion: number;
  appliedVersion: number;
  status: string;
}

export interface FailedUpdateView {
  terminalId: string;
  at: number;
  version: string | null;
  error: string | null;
}

export interface Snapshot {
  now: number;
  terminals: TerminalView[];
  drift: DriftView[];
  failedUpdates: FailedUpdateView[];
}

export interface Condition {
  subjectKind: 'terminal' | 'node';
  subjectId: string;
  /** The station of a terminal, or the node itself. */
  nodeId: string;
  rule: RuleId;
  severity: Severity;
  title: string;
  details: Record<string, unknown>;
}

export type Rule = (s: Snapshot) => Condition[];

/**
 * What a station-level rule reads of each terminal: the engine keeps this much of every active terminal in memory,
 * so a change at one terminal re-evaluates its station without reading the others from the database.
 */
export type MemberView = Pick<TerminalView, 'id' | 'type' | 'stationId' | 'presence' | 'services' | 'inMaintenance'>;

/** The terminals of some stations (each station with all of its active terminals). */
export interface StationSnapshot {
  now: number;
  terminals: readonly MemberView[];
}

/** A rule about stations (subject kind `node`); every other rule is about one terminal at a time. */
export type StationRule = (s: StationSnapshot) => Condition[];

export const MINUTE_MS = 60_000;

/** The title is the English rendering of the alert's text (../text.ts), which is derived from the details. */
export function terminalCondition(t: Pick<TerminalView, 'id' | 'stationId'>, rule: RuleId, severity: Severity, details: Record<string, unknown>): Condition {
  return { subjectKind: 'terminal', subjectId: t.id, nodeId: t.stationId, rule, severity, title: alertTitle(rule, t.id, details), details };
}
