/**
 * What a benchmark terminal sends: the protocol's documented example payloads with this terminal's own epoch,
 * per-stream seq and clock, built from a template so that making one costs little on the load side.
 */
import { EXAMPLES, topicFor } from '@kiosk-fleet/protocol';
import { randomBytes } from 'node:crypto';

export interface TerminalCred {
  id: string;
  secret?: string;
}

/** A random outbox epoch, as an agent makes one (8-64 of A-Z a-z 0-9 _ -). */
export function newEpoch(): string {
  return randomBytes(9).toString('base64url');
}

/** Payload strings for one terminal's streams; `seq` counts from 1 per stream within this epoch. */
export class TerminalStreams {
  readonly epoch = newEpoch();
  readonly telemetryTopic: string;
  readonly presenceTopic: string;
  readonly reportedTopic: string;
  readonly desiredTopic: string;
  telemetrySeq = 0;
  reportedSeq = 0;
  readonly bootId = newEpoch();
  connSeq = 0;

  constructor(readonly id: string) {
    this.telemetryTopic = topicFor(id, 'telemetry');
    this.presenceTopic = topicFor(id, 'presence');
    this.reportedTopic = topicFor(id, 'config/reported');
    this.desiredTopic = topicFor(id, 'config/desired');
  }

  telemetry(): string {
    this.telemetrySeq++;
    return `${TELEMETRY_HEAD}"epoch":"${this.epoch}","seq":${this.telemetrySeq},"ts":"${nowIso()}",${TELEMETRY_TAIL}`;
  }

  presence(state: 'online' | 'offline', reason?: 'clean' | 'connection-lost'): string {
    const { lastExit: _drop, ...base } = EXAMPLES.presence;
    return JSON.stringify({
      ...base,
      state,
      bootId: this.bootId,
      connSeq: this.connSeq,
      ts: nowIso(),
      ...(reason ? { reason } : {}),
    });
  }

  configReported(version: number): string {
    this.reportedSeq++;
    return JSON.stringify({ v: 1, epoch: this.epoch, seq: this.reportedSeq, ts: nowIso(), version, status: 'applied' });
  }
}

// {"v":1,  ...  "host":{...},"peripherals":{...},"app":{...}} with epoch/seq/ts spliced in after `v`.
const { v, epoch: _e, seq: _s, ts: _t, ...TELEMETRY_REST } = EXAMPLES.telemetry;
const TELEMETRY_HEAD = `{"v":${v},`;
const TELEMETRY_TAIL = JSON.stringify(TELEMETRY_REST).slice(1);

let isoCacheMs = 0;
let isoCache = '';
function nowIso(): string {
  const ms = Date.now();
  if (ms !== isoCacheMs) {
    isoCacheMs = ms;
    isoCache = new Date(ms).toISOString();
  }
  return isoCache;
}

/** Terminal ids for a baseline broker that has no registry: the reference fleet's naming, stations numbered. */
export function syntheticIds(n: number, prefix = 'GZ-BX'): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(`${prefix}-${String(Math.floor(i / 10) + 1).padStart(4, '0')}-${String((i % 10) + 1).padStart(2, '0')}`);
  return out;
}
