/**
 * Releases and their artifacts, in the hub's database (migration 0008 added the artifact tables; `releases` has
 * existed since 0002). Times are integer milliseconds since the epoch, like the rest of the schema.
 *
 * Artifacts are content-addressed: one `release_artifacts` row per sha256, whatever releases name it. Its bytes are
 * rows of `release_artifact_chunks`, keyed by the upload that wrote them (`content_id`), not by the sha256: an upload
 * writes its chunks before its hash is known to be right, so two uploads of the same bytes, or a failed one, never
 * touch chunks that a stored artifact points at. The artifact row, written in the upload's last transaction after
 * the hash check, is what makes the chunks visible; chunks no artifact points at are a crashed or refused upload.
 */
import { blob, index, integer, primaryKey, sqliteTable, text } from 'drizzle-orm/sqlite-core';

export const releases = sqliteTable(
  'releases',
  {
    /** `<kind>-<version>`; one content forever. */
    id: text('id').primaryKey(),
    kind: text('kind', { enum: ['app', 'agent'] }).notNull(),
    version: text('version').notNull(),
    size: integer('size').notNull(),
    sha256: text('sha256').notNull(),
    /** JSON array of terminal type ids. */
    terminalTypes: text('terminal_types').notNull(),
    minAgentVersion: text('min_agent_version'),
    createdAt: integer('created_at').notNull(),
    uploadedAt: integer('uploaded_at').notNull(),
    keyId: text('key_id').notNull(),
    /** base64 of the signed manifest bytes, and the base64 signature, passed on untouched in update/target. */
    manifest: text('manifest').notNull(),
    signature: text('signature').notNull(),
  },
  (t) => [index('releases_sha256').on(t.sha256), index('releases_kind_uploaded').on(t.kind, t.uploadedAt)],
);

export const releaseArtifacts = sqliteTable('release_artifacts', {
  /** Lowercase hex sha256 of the bytes, checked before this row was written. */
  sha256: text('sha256').primaryKey(),
  size: integer('size').notNull(),
  /** Bytes in every chunk but the last (which holds the rest): chunk n covers [n × chunkSize, (n + 1) × chunkSize). */
  chunkSize: integer('chunk_size').notNull(),
  chunks: integer('chunks').notNull(),
  /** The `content_id` of the chunks holding the bytes. */
  contentId: text('content_id').notNull().unique(),
  storedAt: integer('stored_at').notNull(),
});

export const releaseArtifactChunks = sqliteTable(
  'release_artifact_chunks',
  {
    /** The upload that wrote the chunk (a random id); an artifact row points at it once the upload is complete. */
    contentId: text('content_id').notNull(),
    /** 0-based index of the chunk. */
    n: integer('n').notNull(),
    data: blob('data', { mode: 'buffer' }).notNull(),
    /** When it was written: a store shared by several hubs drops only unreferenced chunks older than any upload. */
    writtenAt: integer('written_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.contentId, t.n] })],
);
