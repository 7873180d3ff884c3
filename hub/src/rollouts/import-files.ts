/**
 * Once, at start: the rollouts a hub before migration 0008 kept as `<dataDir>/rollouts/<id>.json` go into the
 * database (a rollout the database has already is left as it is there), then the directory is renamed
 * `rollouts.imported-<UTC time>` so the next start finds nothing to import. An unreadable file is logged by name and
 * stays only in the renamed directory.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { moveAside } from '../releases/import-files.ts';
import type { RolloutRecord } from './service.ts';
import type { RolloutStore } from './store.ts';

export async function importRolloutFiles(
  dataDir: string,
  store: RolloutStore,
  log: Logger,
): Promise<{ imported: string[]; failed: { file: string; reason: string }[]; movedTo: string | null }> {
  const dir = path.join(dataDir, 'rollouts');
  const imported: string[] = [];
  const failed: { file: string; reason: string }[] = [];
  if (!fs.existsSync(dir)) return { imported, failed, movedTo: null };
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));
  if (files.length === 0) {
    // An older hub that never made a rollout left its empty directory (and at most a torn `.tmp` write).
    fs.rmSync(dir, { recursive: true, force: true });
    return { imported, failed, movedTo: null };
  }
  for (const f of files) {
    let r: RolloutRecord;
    try {
      r = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as RolloutRecord;
      if (r?.v !== 1 || typeof r.spec?.id !== 'string' || typeof r.state?.status !== 'string') throw new Error('not a rollout record (v 1)');
    } catch (err) {
      failed.push({ file: f, reason: (err as Error).message });
      continue;
    }
    if (!(await store.load(r.spec.id))) await store.save(r);
    imported.push(r.spec.id);
  }
  const movedTo = moveAside(dir);
  const fields = { imported, failed, movedTo };
  if (failed.length > 0) log.error(fields, 'rollout files imported into the database, some unreadable: they are only in the moved directory');
  else log.info(fields, 'rollout files imported into the database; old directory moved aside');
  return { imported, failed, movedTo };
}
