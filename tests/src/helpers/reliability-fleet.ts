/**
 * Fleet-level checks shared by the fault scenarios (tests/src/reliability) and the soak runs (tests/src/soak): wait
 * for a simulated fleet to be back with empty outboxes, then audit what the hub stored against what it produced.
 */
import { expect } from 'vitest';
import type { SimulatorProcess } from './agent.ts';
import { auditStreams, waitFor, type StreamAudit } from './reliability-util.ts';

export interface SimSummary {
  terminals: number;
  connected: number;
  pending: number;
  telemetry: number;
  events: number;
  reconnects: number;
  [k: string]: number;
}

/** Waits until every simulated terminal is connected and no outbox holds anything; returns that summary. */
export function drained(sim: SimulatorProcess, timeoutMs = 90_000): Promise<SimSummary> {
  return waitFor(
    'every terminal connected with an empty outbox',
    async () => {
      const s = (await sim.summary()) as SimSummary;
      return s.connected === s.terminals && s.pending === 0 ? s : null;
    },
    timeoutMs,
    250,
  );
}

/**
 * Nothing lost, nothing doubled: every (terminal, stream, epoch) contiguous from 1, each seq once, every terminal
 * present, and at least as many rows as were produced when the outboxes were last seen empty (rows only come from
 * produced messages, so fewer would mean a loss).
 */
export async function expectNothingLost(dataDir: string, terminals: number, produced: { telemetry: number; events: number }, pgUrl?: string): Promise<StreamAudit> {
  const a = await auditStreams(dataDir, undefined, pgUrl);
  expect(a.duplicates).toEqual([]);
  expect(a.gaps).toEqual([]);
  expect(a.terminals.telemetry).toBeGreaterThanOrEqual(terminals);
  expect(a.rows.telemetry! + a.rows.events!).toBeGreaterThanOrEqual(produced.telemetry + produced.events);
  return a;
}
