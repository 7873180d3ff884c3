/**
 * The updater's persisted state: one JSON file, replaced atomically (temp, fsync, rename, fsync dir) before each
 * step runs, so that after a kill the updater resumes the step it was in. Read by the updater and by the boot guard.
 */
import fs from 'node:fs';
import * as z from 'zod';
import { RELEASE_KINDS, UPDATE_STATES } from '@kiosk-fleet/protocol';
import { writeFileAtomic } from '../fs-atomic.ts';

export const targetSchema = z.object({
  releaseId: z.string().min(1).max(128),
  kind: z.enum(RELEASE_KINDS),
  version: z.string().min(1).max(64),
  url: z.string().max(2048),
  size: z.int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** base64 of the signed manifest bytes, and the base64 signature, exactly as the hub passed them on. */
  manifest: z.string().max(8192),
  signature: z.string().max(512),
  token: z.string().max(512).optional(),
  rolloutId: z.string().max(128).optional(),
  urgent: z.boolean(),
});
export type Target = z.infer<typeof targetSchema>;

const errorSchema = z.object({ code: z.string(), message: z.string() });
export type UpdateError = z.infer<typeof errorSchema>;

export const persistedStateSchema = z.object({
  v: z.literal(1),
  state: z.enum(UPDATE_STATES),
  /** The release being worked on (kept after committed/failed, for reporting). */
  target: targetSchema.nullable(),
  /** A newer desired target that arrived while a step ran; adopted at the next step boundary. */
  pending: z.object({ target: targetSchema.nullable() }).nullable(),
  /** The version `current` pointed at before switching: where a rollback goes. null: nothing was installed. */
  previous: z.string().nullable(),
  /** When the new version must have passed its health check (ISO). Set once, on entering health-check. */
  healthDeadline: z.string().nullable(),
  /** The process boot that performed the restart of the current restarting/rolling-back step (agent self-update). */
  restartBootId: z.string().nullable(),
  /** Process starts seen while in restarting/health-check for this target; too many is a boot loop. */
  boots: z.int().min(0),
  /** Starts counted by the boot guard (boot-guard.mjs) for an agent self-update: catches a new agent that dies
   *  before it can run this updater at all. */
  guardStarts: z.int().min(0).default(0),
  error: errorSchema.nullable(),
  /** Releases that failed here, by sha256: never retried (loop detection). */
  failed: z.record(z.string(), z.object({ releaseId: z.string(), version: z.string(), code: z.string(), at: z.string() })),
  updatedAt: z.string(),
});
export type PersistedState = z.infer<typeof persistedStateSchema>;

export function initialState(): PersistedState {
  return {
    v: 1,
    state: 'idle',
    target: null,
    pending: null,
    previous: null,
    healthDeadline: null,
    restartBootId: null,
    boots: 0,
    guardStarts: 0,
    error: null,
    failed: {},
    updatedAt: new Date().toISOString(),
  };
}

export type LoadResult = { ok: true; state: PersistedState; fresh: boolean } | { ok: false; reason: string };

export function loadState(file: string): LoadResult {
  let raw: string;
  try {
    raw = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { ok: true, state: initialState(), fresh: true };
    return { ok: false, reason: (err as Error).message };
  }
  try {
    const r = persistedStateSchema.safeParse(JSON.parse(raw));
    if (r.success) return { ok: true, state: r.data, fresh: false };
    return { ok: false, reason: `schema: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}` };
  } catch (err) {
    return { ok: false, reason: `invalid JSON: ${(err as Error).message}` };
  }
}

export function saveState(file: string, s: PersistedState): void {
  writeFileAtomic(file, `${JSON.stringify(s, null, 1)}\n`, 0o600);
}
