/**
 * Wiring: database, broker, ingest, presence, downlink, API and the listeners. Nothing opens until `start()`.
 */
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { createHttpApp } from './api/app.ts';
import { ConfigLayers } from './config-layers/service.ts';
import { createConfigLayerStore } from './config-layers/store.ts';
import { dropStoredPrograms } from './config-layers/programs.ts';
import { Broker } from './broker/broker.ts';
import { acceptProxied, parseTrustedSources } from './broker/proxy-protocol.ts';
import { ConfigError, type HubConfig } from './config.ts';
import { Ingest } from './ingest/index.ts';
import { BatchWriter, type Change } from './ingest/writer.ts';
import { createLogger, type Logger } from './log.ts';
import { PRIVATE_FILE_MODE, privateDir, tightenDataDir } from './data-dir.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { Downlink } from './commands/service.ts';
import { createCommandStore } from './commands/store.ts';
import { importFleet, type ImportResult, type ParsedFleet } from './fleet/import.ts';
import { PresenceService } from './presence/service.ts';
import { SecurityState } from './security/service.ts';
import { createSecurityStore } from './security/store.ts';
import { IngestQuota, type FloodState } from './ingest/quota.ts';
import { TakeoverWatch, type ConflictState } from './broker/takeover.ts';
import { Retention } from './retention/service.ts';
import { createRetentionStore } from './retention/store.ts';
import type { Db } from './store/db.ts';
import { acquireDataDirLock } from './db/lock.ts';
import type { Engine, Tx } from './db/engine.ts';
import { DatabaseHealth } from './db/health.ts';
import { openEngine, type OpenEngine } from './db/open-engine.ts';
import { createNodeCounters } from './summary/index.ts';
import type { NodeCounters } from './summary/node-counters.ts';
import { createIngestStore, ingestHooks } from './ingest/store.ts';
import { createPresenceStore } from './presence/store.ts';
import { createQueryStore } from './queries/index.ts';
import type { QueryStore } from './queries/store.ts';
import { createFleetStore, type FleetStore } from './fleet/index.ts';
import { createReleases, createReleaseStore, type Releases } from './releases/index.ts';
import { tokenMatches } from './secrets.ts';
import { createAuditLog, type AuditLog } from './audit/log.ts';
import { AuthService } from './auth/service.ts';
import { Alerts } from './alerts/service.ts';
import { requireOperator } from './auth/middleware.ts';
import { audit as auditChange } from './auth/guard.ts';
import type { Context } from 'hono';
import type { ApiEnv } from './api/common.ts';
import { attachStatusFeed, hubRolloutPorts } from './rollouts/hub-ports.ts';
import { importRolloutFiles } from './rollouts/import-files.ts';
import { RolloutService } from './rollouts/service.ts';
import { createRolloutStore } from './rollouts/store.ts';
import { HUB_VERSION, HubRegistry } from './hubs/registry.ts';
import { HubReaper } from './hubs/reaper.ts';
import { createHubStore, type HubStore } from './hubs/store.ts';
import { Leadership, type LeadershipChange } from './cluster/leader.ts';

export const ADMIN_TOKEN_FILE = 'admin-token';

export interface HubServices {
  /** SQLite's connection; goes away as the stores move behind `engine` (db/engine.ts). */
  db: Db;
  /** The database behind every store, for cross-domain transactions (`transaction(s.engine, …)`). */
  engine: Engine;
  /** Whether the database answers (`/health` says `degraded` while it does not). */
  databaseHealth: DatabaseHealth;
  log: Logger;
  metrics: Metrics;
  registry: FleetStore;
  queries: QueryStore;
  /** Per-node counts of terminals by presence, fault and service, for summaries (summary/node-counters.ts). */
  nodeCounters: NodeCounters;
  downlink: Downlink;
  /** Layered config (city → district → station → terminal), its pushes and drift. */
  configLayers: ConfigLayers;
  broker: Broker;
  presence: PresenceService;
  retention: Retention;
  writer: BatchWriter;
  ingest: Ingest;
  bus: EventEmitter;
  adminToken: string;
  dashboardDir: string;
  /** KF_TIMEZONE: the zone people read times in; the dashboard learns it from /health. */
  timezone: string;
  /** KF_DEMO: the terminals are simulated; /health tells the dashboard. */
  demo?: boolean;
  /** KF_HUB_ID: this hub's name among the installation's hubs. */
  hubId: string;
  /** The installation's hubs and their leases (hubs/store.ts; `GET /api/v1/hubs`). */
  hubs: HubStore;
  releases: Releases;
  /** Operators: users, sessions, API tokens (auth/service.ts). */
  auth: AuthService;
  /** The hash-chained audit log (audit/log.ts). */
  audit: AuditLog;
  /** Alert rules, lifecycle, maintenance, silences, webhooks (alerts/service.ts). */
  alerts: Alerts;
  /** Rollouts of releases along the tree (rollouts/README.md). */
  rollouts: RolloutService;
  /** Which background jobs this hub runs (cluster/leader.ts): all of them on SQLite, its share on PostgreSQL. */
  leadership: Leadership;
  /**
   * Imports in one transaction with `alsoInTx` (the caller's audit entry), then tells the SSE stream and the
   * counters about the new terminals: after the commit, so that a listener re-reading them finds them.
   */
  importFleet(fleet: ParsedFleet, by: string, alsoInTx?: (r: ImportResult, tx: Tx) => unknown): Promise<ImportResult>;
  /** Broadcast a change made outside ingest (API writes) to the SSE stream. */
  changed(...changes: Change[]): void;
}

export interface Hub extends HubServices {
  config: HubConfig;
  /** null: KF_MQTT_PORT=off. */
  mqttPort: number | null;
  mqttsPort: number | null;
  /** The PROXY protocol v2 listener's port (KF_MQTT_PROXY_PORT), or null. */
  mqttProxyPort: number | null;
  httpPort: number;
  close(): Promise<void>;
}

/**
 * The admin token: KF_ADMIN_TOKEN, else the one kept in `<dataDir>/admin-token` (mode 0600), else a new one written
 * there and printed once on stderr, outside the JSON log.
 */
export function resolveAdminToken(config: HubConfig, announce: (token: string, file: string) => void): string {
  if (config.adminToken) return config.adminToken;
  const file = path.join(config.dataDir, ADMIN_TOKEN_FILE);
  try {
    const t = fs.readFileSync(file, 'utf8').trim();
    if (t.length >= 16) return t;
  } catch {
    // no token yet
  }
  const token = crypto.randomBytes(24).toString('base64url');
  privateDir(config.dataDir);
  fs.writeFileSync(file, `${token}\n`, { mode: PRIVATE_FILE_MODE });
  fs.chmodSync(file, PRIVATE_FILE_MODE);
  announce(token, file);
  return token;
}

/**
 * Pending connections the kernel queues for us (Node's default is 511); Linux caps it at net.core.somaxconn (4096 by
 * default). After a hub restart the whole fleet reconnects within seconds, and libuv accepts one connection per
 * event-loop turn: a full queue drops handshakes (TcpExtListenOverflows), and each dropped one costs its terminal
 * seconds of SYN retransmission (1, 3, 7, 15 s…) while the hub may sit idle. `pnpm bench reconnect` (19,000
 * terminals): 53,000 overflows with a queue of 4096; none with net.core.somaxconn raised to 32768, which is why the
 * hub asks for that much (hub/README.md, "Deploying").
 */
const LISTEN_BACKLOG = 32768;

function listen(server: net.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Milliseconds since the previous call (or since it was made), for the start and stop phase timings in the log. */
function phaseTimer(): () => number {
  let last = performance.now();
  return () => {
    const now = performance.now();
    const d = Math.round(now - last);
    last = now;
    return d;
  };
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

export interface StartOptions {
  log?: Logger;
  /** Where a generated admin token is announced (default: stderr). */
  announceToken?: (token: string, file: string) => void;
  /** Where the generated first admin password is announced (default: stderr, outside the JSON log). */
  announcePassword?: (password: string) => void;
}

/** Opens the database, starts the broker and listeners; resolves once everything listens. */
export async function startHub(config: HubConfig, opts: StartOptions = {}): Promise<Hub> {
  const log = opts.log ?? createLogger(config.logLevel);
  const ms = phaseTimer();
  tightenDataDir(config.dataDir, log);
  const lock = acquireDataDirLock(config.dataDir);
  let opened: OpenEngine;
  try {
    // KF_DATABASE_URL: SQLite in the data dir, or PostgreSQL (2-4 connections measured best for the writer, issue 18).
    opened = await openEngine(config.database, config.dataDir, { pgPool: 6 });
  } catch (err) {
    lock.release();
    throw err;
  }
  const engine = opened.engine;
  /** SQLite's connection for the SQLite-only steps (WAL checkpoint at stop); null on PostgreSQL. */
  const sqlite: Db | null = engine.kind === 'sqlite' ? engine.db : null;
  const started: Record<string, number> = { database: ms() };
  const timers: NodeJS.Timeout[] = [];
  const servers: net.Server[] = [];
  let wss: WebSocketServer | null = null;
  let broker: Broker | null = null;
  let hubRegistry: HubRegistry | null = null;
  const hubStore = createHubStore(engine);
  let leadership: Leadership | null = null;
  try {
    const adminToken = resolveAdminToken(
      config,
      opts.announceToken ??
        ((token, file) =>
          process.stderr.write(`\nKiosk Fleet admin token (shown once, kept in ${file}):\n  ${token}\n\n`)),
    );
    const audit = createAuditLog(engine);
    const auth = new AuthService(engine, audit, log, { ...config.auth, secureCookies: Boolean(config.tlsCert) });
    // First start: the city admin `admin`, with KF_ADMIN_PASSWORD or a generated password shown once.
    const firstPassword = await auth.bootstrap(config.adminPassword);
    if (firstPassword !== null) {
      (opts.announcePassword ??
        ((pw: string) =>
          process.stderr.write(`\nKiosk Fleet first start: user "admin" created; its one-time password (change it at first login):\n  ${pw}\n\n`)))(firstPassword);
    }
    const metrics = createMetrics({ defaultMetrics: true });
    metrics.hubInfo.set({ hub_id: config.hubId, version: HUB_VERSION }, 1);
    auth.attachMetrics(metrics.registry);
    const bus = new EventEmitter();
    bus.setMaxListeners(0);
    // Seeded before anything writes, and the first to hear each change (a listener that throws cannot starve it).
    started.auth = ms();
    const nodeCounters = createNodeCounters(engine);
    bus.prependListener('changes', (changes: Change[]) => void nodeCounters.apply(changes));
    const ingestStore = createIngestStore(engine, config.presence);
    const writer = new BatchWriter(engine, config.ingest, metrics, log, (changes) => bus.emit('changes', changes), ingestHooks(ingestStore));
    started.counters = ms();
    const registry = createFleetStore(engine);
    await registry.load();
    const configLayerStore = createConfigLayerStore(engine);
    // before the broker restores any retained config: no stored config may still carry a program (issue 20)
    await dropStoredPrograms(configLayerStore, log);
    started.registry = ms();
    const presence = new PresenceService(ingestStore, createPresenceStore(engine), writer, { ...config.presence, hubId: config.hubId }, metrics, log);
    // Per-terminal quotas and credential reuse (issue 20, items 3 and 10): tracked in memory, stored when they change.
    const security = new SecurityState(createSecurityStore(engine), (changes) => bus.emit('changes', changes), log);
    const quota = new IngestQuota({ ...config.quota, timezone: config.timezone }, metrics, log, (id, s) => security.flooding(id, s));
    const takeovers = new TakeoverWatch(config.takeover, metrics, log, (id, s) => security.credentialConflict(id, s));
    const ingest = new Ingest(ingestStore, writer, presence, metrics, quota);
    let downlink: Downlink | null = null;
    broker = new Broker({
      registry,
      ingest,
      presence,
      metrics,
      log,
      maxPayload: config.maxPayload,
      quota,
      takeovers,
      onSubscribed: (id, kind) => downlink?.onSubscribed(id, kind),
    });
    await broker.start();
    started.broker = ms();
    downlink = new Downlink(createCommandStore(engine), registry, broker, log);
    const retention = new Retention(createRetentionStore(engine), config.retentionDays, metrics, log);
    // PostgreSQL: today's daily partitions before the first sample (SQLite: nothing to do).
    await retention.preparePartitions();
    await presence.hubStarted();
    // The jobs that run on one hub of the installation at a time (issue 19); on SQLite this hub leads them all.
    const leads = new Leadership({ engine, log, hubId: config.hubId, metricsRegistry: metrics.registry });
    leadership = leads;
    // Decided before the lease's first row (its leaderOf); the jobs ask isLeader when they run, from their start on.
    await leads.start();
    // The lease before any connection: a presence row naming this hub is never older than the hub's row.
    const b0 = broker;
    hubRegistry = new HubRegistry(
      hubStore,
      {
        id: config.hubId,
        leaseMs: config.hubs.leaseMs,
        connectedTerminals: () => b0.live.size,
        leaderOf: () => leads.jobsLed(),
        onLapsed: () => void presence.reclaim(b0.connections()).catch((err: unknown) => log.error({ err }, 'presence write failed')),
      },
      log,
    );
    await hubRegistry.start();
    const reaper = new HubReaper(hubStore, presence, log, { hubId: config.hubId, shouldRun: () => leads.isLeader('reaper') });
    for (const a of await security.active()) {
      if (a.flooding) quota.restoreFlood(a.terminalId, a.flooding as FloodState);
      if (a.credentialConflict) takeovers.restore(a.terminalId, a.credentialConflict as ConflictState);
    }
    started.presence = ms();
    const restored = await downlink.restoreRetained();
    started.retained = ms();
    const configLayers = new ConfigLayers(configLayerStore, registry, broker, log, {
      metrics,
      onPushed: (pushed) => {
        const at = Date.now();
        bus.emit('changes', pushed.map((p) => ({ type: 'config' as const, terminalId: p.terminalId, at, data: { version: p.version, desired: true } })));
      },
    });
    // what the alert engine reads synchronously; then terminals registered or moved while the hub was down get their
    // effective config
    await configLayers.load();
    await configLayers.reconcile();
    started.reconcile = ms();
    // ...and those registered, imported or moved from now on, at once (the periodic reconcile is the backstop)
    bus.on('changes', (changes: Change[]) => {
      const placed = changes
        .filter((c) => c.type === 'terminal' && typeof c.data === 'object' && c.data !== null && ('registered' in c.data || 'station' in c.data))
        .map((c) => c.terminalId);
      if (placed.length > 0) configLayers.reconcile(placed).catch((err: unknown) => log.error({ err }, 'config reconcile failed'));
      // config reports committed by ingest: the drift check the alert engine reads from memory
      for (const c of changes) {
        const d = c.type === 'config' ? (c.data as { version?: unknown; status?: unknown } | null) : null;
        if (d && typeof d.version === 'number' && (d.status === 'applied' || d.status === 'rejected')) configLayers.noteReported(c.terminalId, d.version, d.status);
      }
    });

    const releases = await createReleases({
      store: createReleaseStore(engine),
      dataDir: config.dataDir,
      releaseKeys: config.releaseKeys,
      logger: log,
      // KF_ADMIN_TOKEN, or a city admin's API token.
      isAdminToken: async (t) => tokenMatches(t, adminToken) || (await auth.tokenPrincipal(t))?.role === 'city-admin',
      // Operators by role: everyone reads releases, only a city admin uploads (auth/policy.ts).
      requireAdmin: requireOperator({ auth, adminToken }, { read: 'fleet:read', write: 'release:write' }),
      actor: (c) => (c as Context<ApiEnv>).get('actor'),
      audit: (c, e) => auditChange(c as Context<ApiEnv>, { audit }, e),
      isTerminalAllowed: async (id) => (await registry.terminal(id))?.state === 'active',
    });

    const alerts = await new Alerts(
      { engine, log, registry, configLayers, auth, presence, metricsRegistry: metrics.registry, emit: (changes) => bus.emit('changes', changes) },
      {
        evaluateMs: config.alerts.evaluateMs,
        startGraceMs: config.alerts.startGraceMs,
        webhook: { backoffMs: config.alerts.webhookBackoffMs },
        timeZone: config.timezone,
        leads: { alerts: () => leads.isLeader('alerts'), webhooks: () => leads.isLeader('webhooks') },
      },
    ).init();

    // Download URLs in update/target are built from the address terminals reach us at; with KF_HTTP_PORT=0 that is
    // known only once the HTTP server listens (set below).
    let publicUrl = config.publicUrl ?? '';
    const queries = createQueryStore(engine);
    const rolloutStore = createRolloutStore(engine);
    await importRolloutFiles(config.dataDir, rolloutStore, log);
    const rollouts = await new RolloutService({
      store: rolloutStore,
      logger: log,
      ports: hubRolloutPorts({ registry, queries, downlink, bus }, releases, { baseUrl: () => publicUrl }),
      shared: engine.kind === 'postgres',
      leads: () => leads.isLeader('rollouts'),
    }).init();

    const databaseHealth = new DatabaseHealth(engine, log);
    writer.health = databaseHealth;
    databaseHealth.start();
    const services: HubServices = {
      engine,
      databaseHealth,
      alerts,
      rollouts,
      leadership: leads,
      releases,
      auth,
      audit,
      get db(): Db {
        if (!sqlite) throw new Error('hub.db is the SQLite connection; this hub runs on PostgreSQL (use hub.engine)');
        return sqlite;
      },
      log,
      metrics,
      registry,
      queries,
      nodeCounters,
      downlink,
      configLayers,
      broker,
      presence,
      retention,
      writer,
      ingest,
      bus,
      adminToken,
      dashboardDir: config.dashboardDir,
      timezone: config.timezone,
      demo: config.demo ?? false,
      hubId: config.hubId,
      hubs: hubStore,
      importFleet: async (fleet, by, alsoInTx) => {
        const result = await importFleet(engine, registry, fleet, by, alsoInTx);
        const now = Date.now();
        services.changed(
          ...result.terminals.created.map((t) => ({ type: 'terminal' as const, terminalId: t.id, at: now, data: { registered: true } })),
        );
        log.info({ nodes: result.nodes.created.length, terminals: result.terminals.created.length }, 'fleet imported');
        return result;
      },
      changed: (...changes: Change[]) => {
        if (changes.length > 0) bus.emit('changes', changes);
      },
    };

    // MQTT over TCP (and TLS when a cert is given).
    started.services = ms();
    const b = broker;
    let mqttPort: number | null = null;
    if (config.mqttPort !== null) {
      const tcp = net.createServer((socket) => b.handle(socket, socket.remoteAddress ?? 'unknown'));
      servers.push(tcp);
      mqttPort = await listen(tcp, config.mqttPort, config.bind);
    } else {
      log.info('plain MQTT listener off (KF_MQTT_PORT=off): MQTT over TLS and WebSocket only');
    }
    let mqttProxyPort: number | null = null;
    if (config.mqttProxy) {
      const trusted = parseTrustedSources(config.mqttProxy.from);
      const proxied = net.createServer((socket) =>
        acceptProxied(socket, trusted, (s, address) => b.handle(s, address), (reason, detail) => {
          metrics.proxyRefused.inc({ reason });
          log.warn({ reason, detail, peer: socket.remoteAddress }, 'PROXY protocol connection refused');
        }),
      );
      servers.push(proxied);
      mqttProxyPort = await listen(proxied, config.mqttProxy.port, config.bind);
    }
    let mqttsPort: number | null = null;
    let tlsOptions: tls.TlsOptions | null = null;
    if (config.tlsCert && config.tlsKey) {
      tlsOptions = { cert: fs.readFileSync(config.tlsCert), key: fs.readFileSync(config.tlsKey) };
      const secure = tls.createServer(tlsOptions, (socket) => b.handle(socket, socket.remoteAddress ?? 'unknown'));
      servers.push(secure);
      mqttsPort = await listen(secure, config.mqttsPort ?? 8883, config.bind);
    }

    // HTTP(S): the API and dashboard, plus MQTT over WebSocket at /mqtt.
    const listener = getRequestListener(createHttpApp(services).fetch);
    const web = tlsOptions ? https.createServer(tlsOptions, listener) : http.createServer(listener);
    // Keep idle connections longer than clients do (undici and browsers give up after 4-60 s; Node's server default
    // is 5 s), so a client never reuses a connection the hub is closing at that instant: that race surfaced as
    // "other side closed" on a loaded machine. headersTimeout must stay above keepAliveTimeout.
    web.keepAliveTimeout = 65_000;
    web.headersTimeout = 66_000;
    servers.push(web);
    wss = new WebSocketServer({ noServer: true, maxPayload: config.maxPayload + 4096 });
    const ws = wss;
    web.on('upgrade', (req, socket, head) => {
      if (new URL(req.url ?? '/', 'http://x').pathname !== '/mqtt') return socket.destroy();
      ws.handleUpgrade(req, socket, head, (conn) => {
        b.handle(createWebSocketStream(conn), req.socket.remoteAddress ?? 'unknown');
      });
    });
    const httpPort = await listen(web, config.httpPort, config.bind);
    if (!publicUrl) {
      const host = config.bind === '0.0.0.0' || config.bind === '::' ? '127.0.0.1' : config.bind;
      publicUrl = `${tlsOptions ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${httpPort}`;
    }

    started.listen = ms();
    timers.push(
      setInterval(() => {
        try {
          const now = Date.now();
          quota.tick(now);
          takeovers.tick(now);
        } catch (err) {
          log.error({ err }, 'security tick failed');
        }
      }, 1000),
    );
    timers.push(setInterval(() => presence.checkStale().catch((err: unknown) => log.error({ err }, 'stale check failed')), config.presence.staleCheckMs));
    timers.push(
      setInterval(() => {
        downlink.expire().then(
          (expired) => {
            for (const c of expired) services.changed({ type: 'command', terminalId: c.terminalId, at: Date.now(), data: { id: c.id, status: 'expired' } });
          },
          (err: unknown) => log.error({ err }, 'command expiry failed'),
        );
      }, 5000),
    );
    // Placement changes (move, import, register) change effective configs; a sweep through the fleet catches those no
    // event announced (19,000 terminals every 10 s at the defaults, a slice at a time).
    timers.push(
      setInterval(
        () => configLayers.sweep(config.configSweep.terminals).catch((err: unknown) => log.error({ err }, 'config reconcile failed')),
        config.configSweep.everyMs,
      ),
    );
    timers.push(
      setInterval(() => {
        if (leads.isLeader('retention')) retention.run().catch((err: unknown) => log.error({ err }, 'retention failed'));
      }, config.maintenanceMs),
    );
    // Deliveries queued by other hubs (an alert acknowledged through their API) wait for the leader's look.
    if (engine.kind === 'postgres') timers.push(setInterval(() => alerts.webhooks.poll(), 2000));
    for (const t of timers) t.unref();
    // What init() read is current at start; a hub that becomes leader later picks up from the tables.
    leads.on('change', ({ gained }: LeadershipChange) => {
      if (gained.includes('alerts')) alerts.takeOver();
      if (gained.includes('webhooks')) alerts.webhooks.kick();
      if (gained.includes('rollouts')) rollouts.takeOver().catch((err: unknown) => log.error({ err }, 'rollout takeover failed'));
    });
    alerts.start(bus);
    reaper.start();
    // update/status (stored by ingest) drives the rollouts; the periodic tick runs the time-based soak gates.
    const detachRolloutFeed = attachStatusFeed(bus, rollouts, log);
    rollouts.start();
    started.alerts = ms();
    log.info({ ms: started }, 'started');

    let closing: Promise<void> | null = null;
    // The services' descriptors, not a spread: a spread would read `db`, which throws on PostgreSQL.
    const hub: Hub = Object.defineProperties({
      config,
      mqttPort,
      mqttsPort,
      mqttProxyPort,
      httpPort,
      close: () => {
        closing ??= (async () => {
          const ms = phaseTimer();
          for (const t of timers) clearInterval(t);
          databaseHealth.stop();
          await alerts.close(bus);
          rollouts.stop();
          detachRolloutFeed();
          // after the jobs stopped: their locks go to the next leader at once
          await leads.stop();
          const background = ms();
          // Stop accepting; commit what the terminals sent (their PUBACKs leave) and every served terminal's offline
          // (`hub-restart`, one job: a terminal's will or the end of its connection writes nothing from here on);
          // then close the connections at once (Broker.close) and flush what arrived meanwhile.
          const closed = servers.map((s) => closeServer(s));
          const offline = presence.hubStopping(b.stop()).catch((err: unknown) => log.error({ err }, 'presence write failed'));
          await writer.flush();
          await offline;
          // after this hub's terminals went offline: a reaper finds nothing of ours to take
          await reaper.stop();
          const registry = hubRegistry;
          await registry?.stop().catch((err: unknown) => log.error({ err }, 'hub lease not ended'));
          // The committed messages' PUBACKs are written from the promise callbacks, and mqtt-packet uncorks the socket
          // on the next tick: all done by the check phase.
          await new Promise((resolve) => setImmediate(resolve));
          const drain = ms();
          for (const c of ws.clients) c.terminate();
          ws.close();
          await b.close();
          const broker = ms();
          (web as http.Server).closeAllConnections?.();
          await Promise.all(closed);
          const listeners = ms();
          await writer.close();
          await security.settled();
          const flush = ms();
          sqlite?.pragma('wal_checkpoint(TRUNCATE)');
          const checkpoint = ms();
          await opened.close();
          lock.release();
          log.info({ ms: { background, drain, broker, listeners, flush, checkpoint, close: ms() } }, 'stopped');
        })();
        return closing;
      },
    } as Omit<Hub, keyof HubServices>, Object.getOwnPropertyDescriptors(services)) as Hub;
    log.debug({ restored }, 'retained down messages restored from the database');
    return hub;
  } catch (err) {
    for (const t of timers) clearInterval(t);
    await leadership?.stop();
    await hubRegistry?.stop().catch(() => {});
    wss?.close();
    await Promise.all(servers.filter((s) => s.listening).map((s) => closeServer(s)));
    if (broker?.aedes) await broker.close();
    await opened.close().catch(() => {});
    lock.release();
    throw err;
  }
}

/** Alias kept for callers that think of it as construction. */
export const createHub = startHub;
