/**
 * ReleaseStore on PostgreSQL (postgres.js): the same tables as on SQLite (schema.postgres.ts), chunks as bytea, so
 * every hub on the database serves every download.
 *
 * Several hubs may write at once here, where SQLite had one process, so each step that SQLite settled by reading
 * first is an ON CONFLICT here: two uploads of one release id committing together both pass a "not stored yet"
 * check, and only the insert itself decides which one won (the loser's insert waits for the winner's commit, then
 * does nothing, and the loser reads the winner's row).
 *
 * Chunks are 256 KiB as on SQLite (CHUNK_BYTES): an upload holds one chunk and writes it in its own statement as the
 * body streams in; a download reads one chunk per pull of its stream, one round trip each.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Sql, TransactionSql } from 'postgres';
import type { PostgresDb } from '../db/postgres/open.ts';
import type { ReleaseRecord } from './artifact-store.ts';
import { CHUNK_BYTES, ChunkedUpload, releaseRecord, releaseRow, TOKEN_KEY, type ReleaseRow } from './chunked-upload.ts';
import type { ArtifactUpload, ByteRange, ReleaseStore } from './store.ts';

/** A `releases` row as postgres.js returns it (snake_case columns). */
interface PgReleaseRow {
  id: string;
  kind: 'app' | 'agent';
  version: string;
  size: number;
  sha256: string;
  terminal_types: string;
  min_agent_version: string | null;
  created_at: number;
  uploaded_at: number;
  key_id: string;
  manifest: string;
  signature: string;
}

function fromPg(r: PgReleaseRow): ReleaseRecord {
  return releaseRecord({
    id: r.id,
    kind: r.kind,
    version: r.version,
    size: r.size,
    sha256: r.sha256,
    terminalTypes: r.terminal_types,
    minAgentVersion: r.min_agent_version,
    createdAt: r.created_at,
    uploadedAt: r.uploaded_at,
    keyId: r.key_id,
    manifest: r.manifest,
    signature: r.signature,
  });
}

interface ArtifactRow {
  size: number;
  chunk_size: number;
  chunks: number;
  content_id: string;
}

/** 6 h: a 512 MiB upload (the default limit) over a 200 kbit/s link. */
const UPLOAD_GRACE_MS = 6 * 3_600_000;

export class PostgresReleaseStore implements ReleaseStore {
  readonly incompleteUploadGraceMs = UPLOAD_GRACE_MS;
  readonly #chunkBytes: number;

  /** `chunkBytes` only for tests that want many chunks from a small artifact. */
  constructor(
    private readonly pg: PostgresDb,
    o: { chunkBytes?: number } = {},
  ) {
    this.#chunkBytes = o.chunkBytes ?? CHUNK_BYTES;
  }

  async get(id: string): Promise<ReleaseRecord | undefined> {
    const [row] = await this.pg.sql<PgReleaseRow[]>`select * from releases where id = ${id}`;
    return row ? fromPg(row) : undefined;
  }

  async list(): Promise<ReleaseRecord[]> {
    // Ties in byte order, as SQLite sorts text, whatever the database's collation.
    const rows = await this.pg.sql<PgReleaseRow[]>`select * from releases order by uploaded_at desc, id collate "C" desc`;
    return rows.map(fromPg);
  }

  async hasArtifact(sha256: string): Promise<boolean> {
    const rows = await this.pg.sql`select 1 from release_artifacts where sha256 = ${sha256}`;
    return rows.length > 0;
  }

  async beginArtifact(sha256: string, size: number): Promise<ArtifactUpload> {
    const contentId = randomUUID();
    return new ChunkedUpload(sha256, size, this.#chunkBytes, {
      writeChunk: async (n, data) => {
        await this.pg.sql`
          insert into release_artifact_chunks (content_id, n, data, written_at) values (${contentId}, ${n}, ${data}, ${Date.now()})`;
      },
      commit: (chunkCount, record) => this.#commitUpload(contentId, chunkCount, record),
      abort: async () => {
        // Never the chunks of a stored artifact, whatever the caller believes about its commit.
        await this.pg.sql`
          delete from release_artifact_chunks c where c.content_id = ${contentId}
            and not exists (select 1 from release_artifacts a where a.content_id = c.content_id)`;
      },
    });
  }

  async put(record: ReleaseRecord): Promise<{ record: ReleaseRecord; created: boolean }> {
    return this.#begin(async (sql) => {
      const [stored] = await sql`select 1 from release_artifacts where sha256 = ${record.sha256}`;
      if (!stored) {
        // The release's own id may be taken already, which is the answer then; else the caller broke the contract.
        const existing = await this.#insertRelease(sql, record);
        if (existing) return { record: existing, created: false };
        throw new Error(`artifact ${record.sha256} is not stored`);
      }
      const existing = await this.#insertRelease(sql, record);
      return existing ? { record: existing, created: false } : { record, created: true };
    });
  }

  async openArtifact(sha256: string, range: ByteRange): Promise<ReadableStream<Uint8Array> | null> {
    const [a] = await this.pg.sql<ArtifactRow[]>`select size, chunk_size, chunks, content_id from release_artifacts where sha256 = ${sha256}`;
    if (!a) return null;
    const { start, end } = range;
    if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start <= end && end < a.size)) {
      throw new RangeError(`bytes ${start}-${end} outside artifact ${sha256} of ${a.size} bytes`);
    }
    const last = Math.floor(end / a.chunk_size);
    let n = Math.floor(start / a.chunk_size);
    const sql = this.pg.sql;
    return new ReadableStream<Uint8Array>(
      {
        async pull(ctl) {
          const [row] = await sql<{ data: Buffer }[]>`select data from release_artifact_chunks where content_id = ${a.content_id} and n = ${n}`;
          if (!row) {
            ctl.error(new Error(`artifact ${sha256}: chunk ${n} of ${a.chunks} missing`));
            return;
          }
          const base = n * a.chunk_size;
          ctl.enqueue(row.data.subarray(Math.max(start - base, 0), Math.min(end - base + 1, row.data.length)));
          if (++n > last) ctl.close();
        },
      },
      // Read a chunk only when the client took the previous one: a slow terminal holds one chunk, not the artifact.
      { highWaterMark: 0 },
    );
  }

  async dropIncompleteUploads(before: number): Promise<{ chunks: number }> {
    const r = await this.pg.sql`
      delete from release_artifact_chunks c where c.written_at < ${before}
        and not exists (select 1 from release_artifacts a where a.content_id = c.content_id)`;
    return { chunks: r.count };
  }

  async tokenKey(candidate?: Buffer): Promise<Buffer> {
    const key = candidate && candidate.length >= 32 ? candidate : randomBytes(32);
    // First writer wins, so every hub on this database signs with the same key.
    await this.pg.sql`insert into meta (key, value) values (${TOKEN_KEY}, ${key.toString('base64')}) on conflict (key) do nothing`;
    const [row] = await this.pg.sql<{ value: string }[]>`select value from meta where key = ${TOKEN_KEY}`;
    return Buffer.from(row!.value, 'base64');
  }

  async #commitUpload(contentId: string, chunkCount: number, record: ReleaseRecord): Promise<{ record: ReleaseRecord; created: boolean }> {
    return this.#begin(async (sql) => {
      // An upload slower than the grace may have lost its first chunks to another hub's start: refuse, never store a hole.
      const [have] = await sql<{ n: number }[]>`select count(*)::int as n from release_artifact_chunks where content_id = ${contentId}`;
      if (have!.n !== chunkCount) throw new Error(`upload of ${record.sha256}: ${have!.n} of ${chunkCount} chunks stored (dropped as stale by another hub?)`);
      const existing = await this.#insertRelease(sql, record);
      if (existing) {
        await sql`delete from release_artifact_chunks where content_id = ${contentId}`;
        return { record: existing, created: false };
      }
      const inserted = await sql`
        insert into release_artifacts (sha256, size, chunk_size, chunks, content_id, stored_at)
        values (${record.sha256}, ${record.size}, ${this.#chunkBytes}, ${chunkCount}, ${contentId}, ${Date.now()})
        on conflict (sha256) do nothing returning sha256`;
      // Same bytes uploaded under another id meanwhile: one copy is enough.
      if (inserted.length === 0) await sql`delete from release_artifact_chunks where content_id = ${contentId}`;
      return { record, created: true };
    });
  }

  /** Inserts the release unless its id is taken; returns the stored release when it was. */
  async #insertRelease(sql: PgQuery, record: ReleaseRecord): Promise<ReleaseRecord | undefined> {
    const r: ReleaseRow = releaseRow(record);
    const inserted = await sql`
      insert into releases (id, kind, version, size, sha256, terminal_types, min_agent_version, created_at, uploaded_at, key_id, manifest, signature)
      values (${r.id}, ${r.kind}, ${r.version}, ${r.size}, ${r.sha256}, ${r.terminalTypes}, ${r.minAgentVersion}, ${r.createdAt}, ${r.uploadedAt},
              ${r.keyId}, ${r.manifest}, ${r.signature})
      on conflict (id) do nothing returning id`;
    if (inserted.length > 0) return undefined;
    // READ COMMITTED: this statement sees the row of the transaction the insert waited for.
    const [row] = await sql<PgReleaseRow[]>`select * from releases where id = ${record.id}`;
    return fromPg(row!);
  }

  async #begin<T>(fn: (sql: PgQuery) => Promise<T>): Promise<T> {
    // postgres.js types begin()'s result as UnwrapPromiseArray<T>; for a single awaited value that is T.
    return (await this.pg.sql.begin((sql) => fn(sql))) as T;
  }
}

type PgQuery = Sql | TransactionSql;
