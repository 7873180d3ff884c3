/** Prometheus metrics (prom-client), one registry per hub so that several hubs in one test process do not clash. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export function createMetrics(opts: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  // prom-client's own names (process_*, nodejs_*), no prefix: stock Node.js dashboards and alert rules query them
  // by these names; the job/instance labels already say which process it is.
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry });
  const m = {
    registry,
    connectedTerminals: new Gauge({ name: 'kf_connected_terminals', help: 'Terminals with a live MQTT connection', registers: [registry] }),
    /** The `*_info` idiom: always 1, its labels name the hub (KF_HUB_ID) and its version; join on it by instance. */
    hubInfo: new Gauge({ name: 'kf_hub_info', help: 'This hub: KF_HUB_ID and version (value always 1)', labelNames: ['hub_id', 'version'], registers: [registry] }),
    loginsWaiting: new Gauge({
      name: 'kf_mqtt_logins_waiting',
      help: 'Accepted MQTT connections waiting for a login slot (more than MAX_LOGINS_IN_FLIGHT logging in at once)',
      registers: [registry],
    }),
    messagesIn: new Counter({
      name: 'kf_messages_in_total',
      help: 'Valid terminal → hub messages committed, by kind',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    duplicates: new Counter({
      name: 'kf_messages_duplicate_total',
      help: 'Messages whose (terminal, stream, epoch, seq) was already stored (redelivery, outbox replay)',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    rejected: new Counter({
      name: 'kf_messages_rejected_total',
      help: 'Terminal → hub messages refused, by reason (invalid-json, unsupported-version, schema, acl-publish, acl-subscribe, oversize, auth, stale-will, unstorable)',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    proxyRefused: new Counter({
      name: 'kf_mqtt_proxy_refused_total',
      help: 'Connections to the PROXY protocol listener closed before MQTT: untrusted source, bad header, timeout',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    authFailures: new Counter({ name: 'kf_auth_failures_total', help: 'Refused MQTT connections', labelNames: ['reason'] as const, registers: [registry] }),
    authDelayed: new Counter({
      name: 'kf_auth_delayed_total',
      help: 'Connection attempts answered late because their address failed to log in repeatedly',
      registers: [registry],
    }),
    writeQueueDepth: new Gauge({ name: 'kf_write_queue_depth', help: 'Messages waiting for their batch to commit', registers: [registry] }),
    batchSeconds: new Histogram({
      name: 'kf_batch_write_seconds',
      help: 'Time to write and commit one batch',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    batchSize: new Histogram({
      name: 'kf_batch_size',
      help: 'Messages per committed batch',
      buckets: [1, 10, 50, 100, 250, 500, 1000, 2000],
      registers: [registry],
    }),
    writeFailures: new Counter({
      name: 'kf_write_failures_total',
      help: 'Failed commits (disk full, I/O error): `batch` when a whole batch failed, `message` for each message not acknowledged because of it',
      labelNames: ['scope'] as const,
      registers: [registry],
    }),
    backpressureWaits: new Counter({
      name: 'kf_write_backpressure_total',
      help: 'Messages that waited for room in the full write queue (their PUBACK was delayed)',
      registers: [registry],
    }),
    presenceTransitions: new Counter({
      name: 'kf_presence_transitions_total',
      help: 'Presence transitions stored, by new state and reason',
      labelNames: ['state', 'reason'] as const,
      registers: [registry],
    }),
    quotaDropped: new Counter({
      name: 'kf_ingest_quota_dropped_total',
      help: 'Terminal → hub messages dropped (and acknowledged) over a per-terminal quota, by stream and reason (rate, daily-cap)',
      labelNames: ['stream', 'reason'] as const,
      registers: [registry],
    }),
    takeovers: new Counter({
      name: 'kf_mqtt_takeovers_total',
      help: "Connections that took over a terminal's live connection, by whether both came from the same address",
      labelNames: ['addresses'] as const,
      registers: [registry],
    }),
    pruned: new Counter({ name: 'kf_pruned_rows_total', help: 'Rows removed by retention', labelNames: ['table'] as const, registers: [registry] }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
