/**
 * The rollout service's ports on the real hub: the fleet from the registry, health from the latest terminal state
 * and telemetry (read through the store layer's QueryStore, no SQL here), targets through the downlink (which
 * persists and re-publishes them retained), events onto the hub's bus.
 */
import type { EventEmitter } from 'node:events';
import type { UpdateStatus, UpdateTarget } from '@kiosk-fleet/protocol';
import type { Releases } from '../releases/index.ts';
import { isRemote } from '../cluster/feed-hub.ts';
import type { Change } from '../ingest/writer.ts';
import type { FleetTerminal, HealthSample } from './engine.ts';
import type { RolloutPorts, RolloutService } from './service.ts';

/** The slice of the hub's services the ports use (HubServices satisfies it). */
export interface HubSlice {
  registry: { nodes(): Promise<{ id: string; parentId: string | null }[]> };
  queries: {
    terminals(f: { state?: 'active'; after?: string; limit: number }): Promise<{ id: string; type: string; stationId: string }[]>;
    terminal(id: string): Promise<{ presence: string | null; peripherals: string | null; app: string | null } | undefined>;
    telemetryRaw(id: string, from: number, to: number, after: null, limit: number): Promise<{ app: { transactionsOk: number; transactionsFailed: number } | null }[]>;
  };
  downlink: { setUpdateTarget(terminalId: string, target: UpdateTarget): Promise<void> };
  bus: EventEmitter;
}

const PAGE = 1000;
/** Telemetry rows read per window for the failure-rate comparison (a day of 1-minute samples and some). */
const RATE_ROWS = 2000;

function failureRate(rows: { app: { transactionsOk: number; transactionsFailed: number } | null }[]): number | null {
  let ok = 0;
  let failed = 0;
  for (const r of rows) {
    if (!r.app) continue;
    ok += r.app.transactionsOk;
    failed += r.app.transactionsFailed;
  }
  // Too few transactions say nothing about a release: no verdict rather than a noisy one.
  return ok + failed >= 20 ? failed / (ok + failed) : null;
}

/** The deepest node that every id lies under (`GZ-TH-001`, `GZ-TH-002` → `GZ-TH`), or null (different cities). */
export function commonNode(ids: readonly string[]): string | null {
  const [first, ...rest] = ids.map((id) => id.split('-'));
  if (!first) return null;
  let n = first.length;
  for (const parts of rest) {
    let i = 0;
    while (i < n && i < parts.length && parts[i] === first[i]) i++;
    n = i;
  }
  return n === 0 ? null : first.slice(0, n).join('-');
}

/** `baseUrl` may be a function: the hub knows its real HTTP port only once it listens (port 0). */
export function hubRolloutPorts(hub: HubSlice, releases: Releases, o: { baseUrl: string | (() => string); now?: () => number }): RolloutPorts {
  const now = o.now ?? Date.now;
  const baseUrl = typeof o.baseUrl === 'function' ? o.baseUrl : () => o.baseUrl as string;
  return {
    async fleet(): Promise<FleetTerminal[]> {
      const parent = new Map((await hub.registry.nodes()).map((n) => [n.id, n.parentId]));
      const out: FleetTerminal[] = [];
      let after: string | undefined;
      for (;;) {
        const page = await hub.queries.terminals({ state: 'active', limit: PAGE, ...(after ? { after } : {}) });
        for (const t of page) {
          const ancestors: string[] = [];
          for (let n: string | null | undefined = t.stationId; n && ancestors.length < 8; n = parent.get(n)) ancestors.push(n);
          out.push({ id: t.id, type: t.type, ancestors });
        }
        if (page.length < PAGE) break;
        after = page.at(-1)!.id;
      }
      return out;
    },

    async health(terminalId, since): Promise<HealthSample | undefined> {
      const t = await hub.queries.terminal(terminalId);
      if (!t) return undefined;
      const peripherals = t.peripherals ? (JSON.parse(t.peripherals) as Record<string, { status: string; since: number }>) : {};
      const app = t.app ? (JSON.parse(t.app) as { up?: boolean }) : null;
      const at = now();
      const span = Math.max(at - since, 0);
      return {
        online: t.presence === 'online',
        newPeripheralFault: Object.values(peripherals).some((p) => p.status === 'fault' && p.since >= since),
        // No app data (an agent-only terminal, or no sample yet) is not evidence of a dead app.
        appAlive: app === null || app.up !== false,
        failureRate: failureRate(await hub.queries.telemetryRaw(terminalId, since, at, null, RATE_ROWS)),
        baselineFailureRate: failureRate(await hub.queries.telemetryRaw(terminalId, since - span, since, null, RATE_ROWS)),
      };
    },

    release: (id) => releases.store.get(id),
    makeTarget: (r, terminalId, t) => releases.updateTarget(r, terminalId, { baseUrl: baseUrl(), ...t }),
    publishTarget: (terminalId, target) => hub.downlink.setUpdateTarget(terminalId, target),
    emit: (e) => {
      const terminalId = e.action.kind === 'event' ? '' : e.action.terminalId;
      // A rollout-level event belongs to the node that holds the whole scope: the live stream shows it to exactly
      // the callers who may see the rollout (a terminal's event is placed by its station).
      const nodeId = terminalId === '' ? commonNode(e.nodeIds) : undefined;
      hub.bus.emit('changes', [
        { type: 'rollout', terminalId, ...(nodeId ? { nodeId } : {}), at: now(), data: { rolloutId: e.rolloutId, by: e.by, ...e.action } },
      ]);
    },
  };
}

/**
 * Feed stored `update/status` messages to the rollouts: listens for the ingest's `{type: 'update'}` changes on the
 * bus. Needs the change data to carry `releaseId` (and `rolloutId`, `error`) besides `state`; changes without a
 * releaseId are ignored. Returns the detach function.
 */
export function attachStatusFeed(bus: EventEmitter, service: { onStatus: RolloutService['onStatus'] }, log?: { error(o: object, m: string): void }): () => void {
  const listener = (changes: { type: string; terminalId: string; data?: unknown }[]): void => {
    // a status stored by another hub is applied there (under the rollout's lock); heard here through the feed only
    if (isRemote(changes as Change[])) return;
    for (const c of changes) {
      if (c.type !== 'update') continue;
      const d = c.data as { state?: UpdateStatus['state']; releaseId?: string; rolloutId?: string; error?: UpdateStatus['error'] } | undefined;
      if (!d?.state || !d.releaseId) continue;
      service
        .onStatus(c.terminalId, {
          state: d.state,
          releaseId: d.releaseId,
          ...(d.rolloutId !== undefined ? { rolloutId: d.rolloutId } : {}),
          ...(d.error !== undefined ? { error: d.error } : {}),
        })
        .catch((err: unknown) => log?.error({ err, terminalId: c.terminalId }, 'rollout status update failed'));
    }
  };
  bus.on('changes', listener);
  return () => bus.off('changes', listener);
}
