/**
 * The releases table, for the hub's store when it takes release records over from `artifacts/index.json`
 * (artifact-store.ts). Not yet part of hub/src/store/schema.ts nor of any migration: the hub's store owns both.
 * Times are integer milliseconds since the epoch, like the rest of the schema. The artifact bytes stay on disk,
 * content-addressed by `sha256`.
 */
import { bigint, index, pgTable, text } from 'drizzle-orm/pg-core';

export const releases = pgTable(
  'releases',
  {
    /** `<kind>-<version>`; one content forever. */
    id: text('id').primaryKey(),
    kind: text('kind', { enum: ['app', 'agent'] }).notNull(),
    version: text('version').notNull(),
    size: bigint('size', { mode: 'number' }).notNull(),
    sha256: text('sha256').notNull(),
    /** JSON array of terminal type ids. */
    terminalTypes: text('terminal_types').notNull(),
    minAgentVersion: text('min_agent_version'),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
    uploadedAt: bigint('uploaded_at', { mode: 'number' }).notNull(),
    keyId: text('key_id').notNull(),
    /** base64 of the signed manifest bytes, and the base64 signature, passed on untouched in update/target. */
    manifest: text('manifest').notNull(),
    signature: text('signature').notNull(),
  },
  (t) => [index('releases_sha256').on(t.sha256), index('releases_kind_uploaded').on(t.kind, t.uploadedAt)],
);
