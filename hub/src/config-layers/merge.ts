/**
 * The pure part of layered config: validating one layer, merging layers, provenance and diffs. No I/O.
 *
 * Merge rule (city → district → station → terminal, later layers win):
 * - objects merge key by key, recursively;
 * - arrays and scalars replace what came before (a station's `servicesEnabled` is the whole list, not an append);
 * - an explicit `null` removes the inherited value at that key (the key is then absent, unless a later layer sets it
 *   again). So `announcement: null` at a station means "no announcement here", whatever the district says.
 *
 * A layer is validated on its own against the shape of the terminal config with every object level made optional
 * (a station may set `peripherals.idCardReader.timeoutMs` alone and inherit the driver), and every effective config
 * it produces is validated again in full by `terminalConfigSchema` before anything is saved or pushed.
 */
import { terminalConfigSchema } from '@kiosk-fleet/protocol';
import { z } from 'zod';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export interface Issue {
  path: string[];
  message: string;
}

export interface LayerRef {
  level: 'city' | 'district' | 'station' | 'terminal';
  id: string;
  version: number;
}

export interface Layer extends LayerRef {
  config: JsonObject;
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Key-sorted JSON: equal configs give equal strings whatever the key order. */
export function canonical(v: unknown): string {
  return JSON.stringify(sortKeys(v));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (isObject(v)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = sortKeys(v[k]);
    return out;
  }
  return v;
}

// ------------------------------------------------------------------------------------------------ layer validation

interface ZodDef {
  type: string;
  innerType?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  keyType?: z.ZodType;
  valueType?: z.ZodType;
}

function def(s: z.ZodType): ZodDef {
  return (s as unknown as { _zod: { def: ZodDef } })._zod.def;
}

/** Optional/nullable/default wrappers hide the object or record inside. */
function unwrap(s: z.ZodType): z.ZodType {
  let cur = s;
  for (;;) {
    const d = def(cur);
    if ((d.type === 'optional' || d.type === 'nullable' || d.type === 'default') && d.innerType) cur = d.innerType;
    else return cur;
  }
}

/**
 * Checks one layer: every key known, every leaf valid, objects partial at every depth, `null` allowed at any key
 * (it removes the inherited value). Returns each bad field's path.
 */
export function validateLayer(layer: unknown, schema: z.ZodType = terminalConfigSchema): Issue[] {
  const issues: Issue[] = [];
  if (!isObject(layer)) return [{ path: [], message: 'config must be a JSON object' }];
  walk(schema, layer, [], issues);
  return issues;
}

function walk(schema: z.ZodType, value: unknown, path: string[], issues: Issue[]): void {
  if (value === null && path.length > 0) return; // removes the inherited value
  const s = unwrap(schema);
  const d = def(s);
  if (d.type === 'object' && d.shape) {
    if (!isObject(value)) {
      issues.push({ path, message: 'expected an object' });
      return;
    }
    for (const [k, v] of Object.entries(value)) {
      const child = d.shape[k];
      if (!child) issues.push({ path: [...path, k], message: `unknown key ${JSON.stringify(k)}` });
      else walk(child, v, [...path, k], issues);
    }
    return;
  }
  if (d.type === 'record' && d.keyType && d.valueType) {
    if (!isObject(value)) {
      issues.push({ path, message: 'expected an object' });
      return;
    }
    for (const [k, v] of Object.entries(value)) {
      const key = d.keyType.safeParse(k);
      if (!key.success) issues.push({ path: [...path, k], message: `unknown key ${JSON.stringify(k)}` });
      else walk(d.valueType, v, [...path, k], issues);
    }
    return;
  }
  const r = schema.safeParse(value);
  if (!r.success) for (const i of r.error.issues) issues.push({ path: [...path, ...i.path.map(String)], message: i.message });
}

/** Full check of an effective config (what a terminal would receive). */
export function validateEffective(config: unknown): Issue[] {
  const r = terminalConfigSchema.safeParse(config);
  return r.success ? [] : r.error.issues.map((i) => ({ path: i.path.map(String), message: i.message }));
}

// ------------------------------------------------------------------------------------------------ merge

export interface Effective {
  config: JsonObject;
  /** Dotted path of each effective leaf (a scalar, an array, or an empty object) → the layer that set it. */
  sources: Record<string, LayerRef>;
}

/** Merges layers in order (city first, terminal last). */
export function mergeLayers(layers: readonly Layer[]): Effective {
  const config: JsonObject = {};
  const sources: Record<string, LayerRef> = {};
  for (const l of layers) {
    const ref: LayerRef = { level: l.level, id: l.id, version: l.version };
    mergeInto(config, l.config, [], ref, sources);
  }
  return { config, sources };
}

function mergeInto(target: JsonObject, overlay: JsonObject, path: string[], ref: LayerRef, sources: Record<string, LayerRef>): void {
  for (const [k, v] of Object.entries(overlay)) {
    const p = [...path, k];
    if (v === null) {
      delete target[k];
      dropSources(sources, p);
      continue;
    }
    if (isObject(v)) {
      let cur = target[k];
      if (!isObject(cur)) {
        dropSources(sources, p);
        cur = {};
        target[k] = cur;
      } else if (Object.keys(v).length > 0) {
        delete sources[p.join('.')];
      }
      mergeInto(cur, v, p, ref, sources);
      // an empty object is itself a value (`peripherals: {}`): someone set it, so it has a source
      if (Object.keys(cur).length === 0 && !hasSourceUnder(sources, p)) sources[p.join('.')] = ref;
      continue;
    }
    dropSources(sources, p);
    target[k] = structuredClone(v);
    sources[p.join('.')] = ref;
  }
}

function hasSourceUnder(sources: Record<string, LayerRef>, path: string[]): boolean {
  const key = path.join('.');
  return Object.keys(sources).some((s) => s === key || s.startsWith(`${key}.`));
}

function dropSources(sources: Record<string, LayerRef>, path: string[]): void {
  const key = path.join('.');
  for (const s of Object.keys(sources)) if (s === key || s.startsWith(`${key}.`)) delete sources[s];
}

// ------------------------------------------------------------------------------------------------ diff

export interface Change {
  path: string[];
  op: 'add' | 'remove' | 'change';
  from?: Json;
  to?: Json;
}

/** Leaf-level differences: objects are compared key by key, arrays and scalars as a whole. */
export function diff(from: Json | undefined, to: Json | undefined, path: string[] = []): Change[] {
  if (isObject(from) && isObject(to)) {
    const out: Change[] = [];
    for (const k of [...new Set([...Object.keys(from), ...Object.keys(to)])].sort()) {
      out.push(...diff(from[k], to[k], [...path, k]));
    }
    return out;
  }
  if (from === undefined && to === undefined) return [];
  if (from === undefined) return [{ path, op: 'add', to: to! }];
  if (to === undefined) return [{ path, op: 'remove', from }];
  return canonical(from) === canonical(to) ? [] : [{ path, op: 'change', from, to }];
}
