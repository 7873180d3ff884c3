/**
 * Once, at start: the releases a hub before migration 0008 kept as files (`<dataDir>/artifacts/index.json` and
 * `artifacts/<sha256>`) go into the database through the upload's own checks (a signature by a key trusted now, the
 * signed size and sha256), keeping their upload time; then `artifacts/` is renamed `artifacts.imported-<UTC time>`
 * and `release-token.key` (which the store has taken over by then, see index.ts) `release-token.key.imported-<UTC
 * time>`, so the next start finds nothing to import. What fails a check stays only in the renamed directory, named
 * in the log.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { ReleaseRefused, type ArtifactStore, type ReleaseRecord } from './artifact-store.ts';
import { TOKEN_KEY_FILE } from './tokens.ts';

export interface FileImport {
  imported: string[];
  failed: { id: string; reason: string }[];
  /** Where the old files are now, or null when there were none. */
  movedTo: string | null;
}

/** Rename `p` to `<p>.imported-<UTC time>` (a free name) and return the new path. */
export function moveAside(p: string, now = new Date()): string {
  const stamp = `${now.toISOString().slice(0, 19).replace(/[-:]/g, '')}Z`;
  let target = `${p}.imported-${stamp}`;
  for (let i = 2; fs.existsSync(target); i++) target = `${p}.imported-${stamp}-${i}`;
  fs.renameSync(p, target);
  return target;
}

export async function importReleaseFiles(dataDir: string, artifacts: ArtifactStore, log: Logger): Promise<FileImport> {
  const result: FileImport = { imported: [], failed: [], movedTo: null };
  const keyFile = path.join(dataDir, TOKEN_KEY_FILE);
  if (fs.existsSync(keyFile)) {
    const to = moveAside(keyFile);
    log.info({ from: keyFile, to }, 'release token key now kept in the database; old key file moved aside');
  }
  const dir = path.join(dataDir, 'artifacts');
  if (!fs.existsSync(dir)) return result;
  const indexFile = path.join(dir, 'index.json');
  if (!fs.existsSync(indexFile) && fs.readdirSync(dir).every((f) => f === 'tmp')) {
    // An older hub that never stored a release left only its empty upload directory.
    fs.rmSync(dir, { recursive: true, force: true });
    return result;
  }

  let records: ReleaseRecord[] = [];
  try {
    const raw = JSON.parse(fs.readFileSync(indexFile, 'utf8')) as { v?: unknown; releases?: unknown };
    if (raw.v !== 1 || !Array.isArray(raw.releases)) throw new Error(`unknown index version ${String(raw.v)}`);
    records = raw.releases as ReleaseRecord[];
  } catch (err) {
    result.failed.push({ id: '*', reason: `${indexFile}: ${(err as Error).message}` });
  }
  for (const r of records) {
    const id = typeof r?.id === 'string' ? r.id : '?';
    const file = typeof r?.sha256 === 'string' && /^[0-9a-f]{64}$/.test(r.sha256) ? path.join(dir, r.sha256) : null;
    if (!file || !fs.existsSync(file)) {
      result.failed.push({ id, reason: 'artifact file missing' });
      continue;
    }
    try {
      await artifacts.ingest({
        manifestB64: r.manifest,
        signatureB64: r.signature,
        contentLength: fs.statSync(file).size,
        // Streamed like an upload: never the whole artifact in memory.
        body: fs.createReadStream(file, { highWaterMark: 256 * 1024 }),
        ...(typeof r.uploadedAt === 'string' ? { uploadedAt: r.uploadedAt } : {}),
      });
      result.imported.push(id);
    } catch (err) {
      if (!(err instanceof ReleaseRefused)) throw err;
      result.failed.push({ id, reason: `${err.code}: ${err.message}` });
    }
  }
  result.movedTo = moveAside(dir);
  const fields = { imported: result.imported, failed: result.failed, movedTo: result.movedTo };
  if (result.failed.length > 0) log.error(fields, 'release files imported into the database, some refused: they are only in the moved directory');
  else log.info(fields, 'release files imported into the database; old directory moved aside');
  return result;
}
