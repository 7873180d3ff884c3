/**
 * What the hubs of one installation tell each other through the change feed (feed.ts), and what a hub does when it
 * hears it (issue 19). Each channel carries ids; the hearing hub re-reads from the tables.
 *
 * - `config`: desired configs written (a save, a reconcile) → re-read, publish (retained) where this hub holds an
 *   older version; the copy the alert engine reads follows.
 * - `target`: update targets set (rollouts, releases) → re-read, publish (retained) where changed.
 * - `commands`: commands queued → the terminals connected here get their pending ones.
 * - `revoked`: a secret rotated or a terminal decommissioned → cached credentials dropped, the connection closed.
 * - `connected`: a terminal's connection is up on the publishing hub → an older connection of it here is closed as
 *   taken over (it writes no presence).
 * - `changes`: the hub's committed changes (the `changes` bus: presence, faults, commands, configs, alerts, …) → the
 *   other hubs' buses, so their live streams (SSE), node counters and drift copies follow. Telemetry only where a
 *   terminal's faults or services changed (never per sample), data dropped when large.
 *
 * After the LISTEN connection came back (messages may be lost), each re-reads: every desired config and target,
 * every connected terminal's pending commands, the credential cache and the live terminals' state, the counters and
 * reported versions.
 */
import type { EventEmitter } from 'node:events';
import type { Broker } from '../broker/broker.ts';
import { COMMANDS_CHANNEL, TARGET_CHANNEL, type Downlink } from '../commands/service.ts';
import type { ConfigLayers } from '../config-layers/service.ts';
import type { FleetStore } from '../fleet/store.ts';
import type { Change } from '../ingest/writer.ts';
import type { Logger } from '../log.ts';
import type { NodeCounters } from '../summary/node-counters.ts';
import type { ChangeFeed } from './feed.ts';

export const CONFIG_CHANNEL = 'config';
export const REVOKED_CHANNEL = 'revoked';
export const CONNECTED_CHANNEL = 'connected';
export const CHANGES_CHANNEL = 'changes';

/** A change's data above this (JSON) is not carried: listeners that need more re-read the terminal. */
const MAX_DATA_BYTES = 600;

const remote = new WeakSet<readonly Change[]>();

/** Changes another hub committed (heard on the feed): a listener that acts only for its own hub's skips them. */
export function isRemote(changes: readonly Change[]): boolean {
  return remote.has(changes);
}

export interface FeedHubDeps {
  feed: ChangeFeed;
  bus: EventEmitter;
  broker: Broker;
  downlink: Downlink;
  configLayers: ConfigLayers;
  registry: FleetStore;
  nodeCounters: NodeCounters;
  log: Logger;
}

export interface AttachedFeed {
  /** Stops acting on other hubs' messages (a stopping hub: first thing). */
  unsubscribe(): void;
  /** Stops forwarding this hub's changes (a stopping hub: after its last presence writes, so others see them). */
  stopForwarding(): void;
}

/** Subscribes this hub to the feed and forwards its own changes. */
export function attachClusterFeed(d: FeedHubDeps): AttachedFeed {
  const { feed, log } = d;
  const fail = (what: string) => (err: unknown) => log.error({ err }, `change feed: ${what} failed`);
  const offs: (() => void)[] = [];

  offs.push(
    feed.on<string>(CONFIG_CHANNEL, (m) => d.configLayers.refreshDesired(m.items).then(() => undefined), {
      resync: () => d.configLayers.refreshDesired(),
    }),
    feed.on<string>(TARGET_CHANNEL, (m) => d.downlink.refreshTargets(m.items), { resync: () => d.downlink.refreshTargets() }),
    feed.on<string>(COMMANDS_CHANNEL, (m) => d.downlink.sendPending(m.items), { resync: () => d.downlink.resyncCommands() }),
    feed.on<string>(
      REVOKED_CHANNEL,
      (m) => {
        d.registry.forgetCredentials(m.items);
        for (const id of m.items) d.broker.kick(id);
      },
      {
        // A rotation missed meanwhile cannot be told from here (the cache is gone with it): logins from now on read
        // the table; connections of terminals decommissioned meanwhile are closed.
        resync: async () => {
          d.registry.forgetCredentials();
          const live = [...d.broker.live.keys()];
          for (const t of await d.registry.terminals(live)) if (t.state !== 'active') d.broker.kick(t.id);
        },
      },
    ),
    feed.on<string>(CONNECTED_CHANNEL, (m) => {
      for (const id of m.items) if (d.broker.closeTakenOver(id, m.at)) log.info({ terminalId: id, hub: m.origin }, 'connection taken over by another hub; closed');
    }),
    feed.on<Change>(
      CHANGES_CHANNEL,
      (m) => {
        const changes = m.items;
        remote.add(changes);
        d.bus.emit('changes', changes);
      },
      {
        resync: async () => {
          await Promise.all([d.nodeCounters.reload(), d.configLayers.reloadReported()]);
        },
      },
    ),
  );

  // This hub's committed changes, to the others: telemetry only where faults or services changed.
  const shape = new Map<string, string>();
  const forward = (changes: Change[]): void => {
    if (remote.has(changes)) return;
    const out: Change[] = [];
    for (const c of changes) {
      let data = c.data;
      if (c.type === 'telemetry') {
        const t = c.data as { services?: unknown; faults?: unknown } | undefined;
        const key = `${typeof t?.faults === 'number' && t.faults > 0}|${Array.isArray(t?.services) ? t.services.join(',') : '?'}`;
        if (shape.get(c.terminalId) === key) continue;
        if (shape.size > 200_000) shape.clear();
        shape.set(c.terminalId, key);
        data = { services: t?.services, faults: t?.faults };
      }
      const item: Change = { type: c.type, terminalId: c.terminalId, at: c.at };
      if (c.nodeId !== undefined) item.nodeId = c.nodeId;
      if (data !== undefined && JSON.stringify(data).length <= MAX_DATA_BYTES) item.data = data;
      out.push(item);
    }
    if (out.length > 0) feed.publish(CHANGES_CHANNEL, out).catch(fail('forwarding changes'));
  };
  d.bus.on('changes', forward);
  return {
    unsubscribe: () => {
      for (const off of offs.splice(0)) off();
    },
    stopForwarding: () => d.bus.off('changes', forward),
  };
}
