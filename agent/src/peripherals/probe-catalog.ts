/**
 * The terminal's probe catalog: probe name → the program that checks a peripheral (argv, no shell).
 *
 * Pushed config only names a probe (`{"driver":"command","probe":"receipt-printer"}`); what runs comes from here, from
 * files on the terminal (KF_PROBES_DIR, default /etc/kiosk-fleet/probes.d) and from the installed signed app
 * release (`<dataDir>/app/current/probes.d`), so neither the hub nor whoever holds `config:write` can make a terminal
 * run a program it does not already trust (issue 20, item 1).
 *
 * Invariants:
 * - A catalog file that cannot be read, is not valid, or is writable by group or others is skipped whole, logged
 *   once with its reason; the other files still load (one bad file must not take every probe away).
 * - Directories are read in the order given, files in name order; a name defined twice keeps its first definition
 *   (the local directory comes first, so the terminal's own administrator can override a release's probe).
 * - A relative program path resolves against the directory of its catalog file: a release ships its diagnostic
 *   beside its catalog, and nothing resolves through PATH.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as z from 'zod';
import { probeName } from '@kiosk-fleet/protocol';
import type { Logger } from '../log.ts';

export const DEFAULT_PROBES_DIR = '/etc/kiosk-fleet/probes.d';

const probeSchema = z
  .object({
    /** The program and its arguments (argv, no shell). */
    command: z.array(z.string().min(1).max(1024)).min(1).max(32),
    /** Default timeout; a pushed `timeoutMs` for the peripheral overrides it. */
    timeoutMs: z.int().min(100).max(120_000).optional(),
    description: z.string().max(200).optional(),
  })
  .strict();

export const probeCatalogFileSchema = z.object({ probes: z.record(probeName, probeSchema) }).strict();

export interface ProbeSpec {
  name: string;
  command: readonly string[];
  timeoutMs?: number | undefined;
  /** The catalog file it came from. */
  file: string;
}

export interface ProbeCatalog {
  get(name: string): ProbeSpec | undefined;
  names(): string[];
  /** Where it was read from, for messages. */
  readonly sources: readonly string[];
}

export class MapProbeCatalog implements ProbeCatalog {
  readonly #probes: Map<string, ProbeSpec>;
  constructor(
    probes: Iterable<ProbeSpec>,
    readonly sources: readonly string[] = [],
  ) {
    this.#probes = new Map([...probes].map((p) => [p.name, p]));
  }
  get(name: string): ProbeSpec | undefined {
    return this.#probes.get(name);
  }
  names(): string[] {
    return [...this.#probes.keys()].sort();
  }
}

/** The probes of one catalog file, or why the file is refused. */
export function readCatalogFile(file: string): { ok: true; probes: ProbeSpec[] } | { ok: false; reason: string } {
  let st: fs.Stats;
  let text: string;
  try {
    st = fs.statSync(file);
    if (!st.isFile()) return { ok: false, reason: 'not a regular file' };
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    return { ok: false, reason: `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
  // whoever may write this file chooses what the agent runs (as its user, often root)
  if (st.mode & 0o022) return { ok: false, reason: `writable by group or others (mode ${(st.mode & 0o777).toString(8)}); chmod go-w` };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: `not JSON: ${(err as Error).message}` };
  }
  const r = probeCatalogFileSchema.safeParse(json);
  if (!r.success) {
    // zod words a bad record key as "Invalid key in record": say what a name must be
    const issues = r.error.issues
      .slice(0, 3)
      .map((i) => `${i.path.map(String).join('.') || '(file)'}: ${i.code === 'invalid_key' ? 'not a probe name (a-z 0-9 . _ -, at most 64; not a path)' : i.message}`);
    return { ok: false, reason: issues.join('; ') };
  }
  const dir = path.dirname(file);
  return {
    ok: true,
    probes: Object.entries(r.data.probes).map(([name, p]) => {
      const [program, ...args] = p.command;
      return { name, command: [path.resolve(dir, program!), ...args], timeoutMs: p.timeoutMs, file };
    }),
  };
}

/** Refusals already logged: the catalog is read for every config, a bad file is reported once per reason. */
const warned = new Set<string>();

/** Reads every `*.json` in the directories (a missing directory is an empty catalog, logged at debug). */
export function loadProbeCatalog(dirs: readonly string[], logger: Logger): ProbeCatalog {
  const probes = new Map<string, ProbeSpec>();
  for (const dir of dirs) {
    let names: string[];
    try {
      names = fs.readdirSync(dir).filter((n) => n.endsWith('.json') && !n.startsWith('.')).sort();
    } catch (err) {
      logger.debug({ dir, code: (err as NodeJS.ErrnoException).code }, 'no probe catalog directory');
      continue;
    }
    for (const name of names) {
      const file = path.join(dir, name);
      const r = readCatalogFile(file);
      if (!r.ok) {
        if (once(`${file}\0${r.reason}`)) logger.warn({ file, reason: r.reason }, 'probe catalog file skipped');
        continue;
      }
      for (const p of r.probes) {
        const first = probes.get(p.name);
        if (!first) probes.set(p.name, p);
        else if (once(`${file}\0${p.name}\0twice`)) logger.warn({ probe: p.name, file, kept: first.file }, 'probe defined twice; the first definition is kept');
      }
    }
  }
  return new MapProbeCatalog(probes.values(), dirs);
}

function once(key: string): boolean {
  if (warned.has(key)) return false;
  if (warned.size > 1000) warned.clear();
  warned.add(key);
  return true;
}
