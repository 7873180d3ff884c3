/**
 * Provisioning through the hub's API: import the simulated fleet, keep the secrets it hands out (once) in the data
 * dir, reuse them on the next start, and get a new secret for a terminal the hub knows but we have no secret for
 * (the simulator's equivalent of a re-imaged terminal).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../fs-atomic.ts';
import type { Logger } from '../log.ts';

export type Secrets = Record<string, string>;

export function secretsFile(dataDir: string): string {
  return path.join(dataDir, 'secrets.json');
}

export function loadSecrets(dataDir: string): Secrets {
  try {
    const j = JSON.parse(readFileSync(secretsFile(dataDir), 'utf8')) as unknown;
    return j && typeof j === 'object' ? (j as Secrets) : {};
  } catch {
    return {};
  }
}

export function saveSecrets(dataDir: string, secrets: Secrets): void {
  mkdirSync(dataDir, { recursive: true });
  writeFileAtomic(secretsFile(dataDir), JSON.stringify(secrets, null, 1), 0o600);
}

interface ImportResult {
  nodes: { created: string[]; existing: string[] };
  terminals: { created: { id: string; secret: string }[]; existing: string[] };
}

export async function provision(opts: { api: string; token: string; body: Record<string, unknown>; ids: string[]; dataDir: string; logger: Logger }): Promise<Secrets> {
  const secrets = loadSecrets(opts.dataDir);
  const base = opts.api.replace(/\/+$/, '');
  const headers = { authorization: `Bearer ${opts.token}`, 'content-type': 'application/json' };
  const res = await fetch(`${base}/api/v1/import`, { method: 'POST', headers, body: JSON.stringify(opts.body) });
  if (res.status !== 200) throw new Error(`import refused by the hub: HTTP ${res.status} ${(await res.text()).slice(0, 500)}`);
  const result = (await res.json()) as ImportResult;
  for (const t of result.terminals.created) secrets[t.id] = t.secret;
  // save at once: the hub shows a new secret only this once
  saveSecrets(opts.dataDir, secrets);
  const wanted = new Set(opts.ids);
  const missing = result.terminals.existing.filter((id) => wanted.has(id) && !secrets[id]);
  let rotated = 0;
  for (const id of missing) {
    const r = await fetch(`${base}/api/v1/terminals/${encodeURIComponent(id)}/secret`, { method: 'POST', headers });
    if (r.status !== 200) {
      opts.logger.warn({ terminalId: id, status: r.status }, 'could not get a new secret for an existing terminal');
      continue;
    }
    const j = (await r.json()) as { id: string; secret: string };
    secrets[id] = j.secret;
    rotated += 1;
    if (rotated % 100 === 0) saveSecrets(opts.dataDir, secrets);
  }
  saveSecrets(opts.dataDir, secrets);
  opts.logger.info(
    { created: result.terminals.created.length, existing: result.terminals.existing.length, newSecrets: rotated, nodesCreated: result.nodes.created.length },
    'provisioned the simulated fleet',
  );
  return secrets;
}
