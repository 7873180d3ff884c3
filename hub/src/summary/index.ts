import type { Engine } from '../db/engine.ts';
import { NodeCounters } from './node-counters.ts';
import { SqliteSummaryStore } from './store.sqlite.ts';
import { PostgresSummaryStore } from './store.postgres.ts';
import type { SummaryStore } from './store.ts';

export function createSummaryStore(engine: Engine): SummaryStore {
  return engine.kind === 'sqlite' ? new SqliteSummaryStore(engine.db) : new PostgresSummaryStore(engine.pg);
}

/** The counters, seeded from the database (their first read waits for it). */
export function createNodeCounters(engine: Engine): NodeCounters {
  return new NodeCounters(createSummaryStore(engine));
}
