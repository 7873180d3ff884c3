/**
 * Releases and their artifacts in PostgreSQL, the twin of schema.ts: the same tables and columns (times in bigint ms,
 * chunks as bytea), so that `migrate-store` copies them unchanged and any hub serves any download.
 */
import { bigint, customType, index, pgTable, primaryKey, text } from 'drizzle-orm/pg-core';

/** bytea as a Buffer (drizzle's pg-core has no bytea column of its own). */
const bytea = customType<{ data: Buffer; driverData: Buffer }>({ dataType: () => 'bytea' });

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

export const releaseArtifacts = pgTable('release_artifacts', {
  /** Lowercase hex sha256 of the bytes, checked before this row was written. */
  sha256: text('sha256').primaryKey(),
  size: bigint('size', { mode: 'number' }).notNull(),
  /** Bytes in every chunk but the last (which holds the rest): chunk n covers [n × chunkSize, (n + 1) × chunkSize). */
  chunkSize: bigint('chunk_size', { mode: 'number' }).notNull(),
  chunks: bigint('chunks', { mode: 'number' }).notNull(),
  /** The `content_id` of the chunks holding the bytes. */
  contentId: text('content_id').notNull().unique(),
  storedAt: bigint('stored_at', { mode: 'number' }).notNull(),
});

export const releaseArtifactChunks = pgTable(
  'release_artifact_chunks',
  {
    /** The upload that wrote the chunk (a random id); an artifact row points at it once the upload is complete. */
    contentId: text('content_id').notNull(),
    /** 0-based index of the chunk. */
    n: bigint('n', { mode: 'number' }).notNull(),
    data: bytea('data').notNull(),
    /** When it was written: a store shared by several hubs drops only unreferenced chunks older than any upload. */
    writtenAt: bigint('written_at', { mode: 'number' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.contentId, t.n] })],
);
