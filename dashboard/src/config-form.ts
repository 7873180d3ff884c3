/**
 * The config form's pure part: reading the protocol's own schema (`terminalConfigSchema`) for ranges and choices,
 * editing a layer by path, what a field inherits and from which layer, and validating a layer in the browser with
 * the same schema and the same rules as the hub (hub/src/config-layers/merge.ts `validateLayer`: every key known,
 * objects partial at every depth, `null` removes an inherited value), with messages in the user's language.
 */
import * as z from 'zod';
import { terminalConfigSchema } from '@kiosk-fleet/protocol';
import type { Inherited } from './api.ts';
import { t, type MessageKey } from './i18n/index.ts';

// The hub's CSP has no 'unsafe-eval': zod must not try `new Function` (its fast object parser), which would put a
// CSP violation in the console on the first parse.
z.config({ jitless: true });

export type Path = readonly string[];
export type Obj = Record<string, unknown>;

/** Monday first: the order of the grid and of the diff. */
export const WEEK = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEK)[number];
export interface Span {
  from: string;
  to: string;
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

interface Def {
  type: string;
  innerType?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  keyType?: z.ZodType;
  valueType?: z.ZodType;
  entries?: Record<string, string>;
}
const def = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

function unwrap(s: z.ZodType): z.ZodType {
  for (let cur = s; ; ) {
    const d = def(cur);
    if ((d.type === 'optional' || d.type === 'nullable' || d.type === 'default') && d.innerType) cur = d.innerType;
    else return cur;
  }
}

/** The schema of the field at `path` (object keys and record keys alike), unwrapped; undefined when there is none. */
export function schemaAt(path: Path): z.ZodType | undefined {
  let cur: z.ZodType = terminalConfigSchema;
  for (const k of path) {
    const d = def(unwrap(cur));
    if (d.type === 'object' && d.shape?.[k]) cur = d.shape[k];
    else if (d.type === 'record' && d.valueType) cur = d.valueType;
    else return undefined;
  }
  return unwrap(cur);
}

/** A number field's range as the schema states it. */
export function rangeAt(path: Path): { min?: number; max?: number; int: boolean } {
  const s = schemaAt(path) as (z.ZodType & { minValue?: number | null; maxValue?: number | null; isInt?: boolean }) | undefined;
  const min = s?.minValue;
  const max = s?.maxValue;
  return { ...(typeof min === 'number' && Number.isFinite(min) ? { min } : {}), ...(typeof max === 'number' && Number.isFinite(max) ? { max } : {}), int: s?.isInt === true };
}

/** An enum field's choices as the schema states them. */
export function choicesAt(path: Path): string[] {
  const s = schemaAt(path);
  const d = s ? def(s) : undefined;
  return d?.type === 'enum' && d.entries ? Object.values(d.entries) : [];
}

export function getAt(obj: unknown, path: Path): unknown {
  let cur = obj;
  for (const k of path) {
    if (!isObj(cur) || !Object.hasOwn(cur, k)) return undefined;
    cur = cur[k];
  }
  return cur;
}

/** A copy of `obj` with `value` at `path`; `undefined` removes the key, and objects left empty by that go too. */
export function setAt(obj: Obj, path: Path, value: unknown): Obj {
  const [k, ...rest] = path;
  if (k === undefined) return obj;
  const out: Obj = { ...obj };
  if (rest.length === 0) {
    if (value === undefined) delete out[k];
    else out[k] = value;
    return out;
  }
  const child = setAt(isObj(obj[k]) ? obj[k] : {}, rest, value);
  if (Object.keys(child).length === 0 && value === undefined) delete out[k];
  else out[k] = child;
  return out;
}

/** What a field inherits and which layer set it (a nested value takes its nearest parent's source). */
export function inheritedAt(inh: Inherited | null, path: Path): { value: unknown; source: { level: string; id: string } | null } {
  if (!inh) return { value: undefined, source: null };
  const value = getAt(inh.config, path);
  let source = null;
  for (let n = path.length; n > 0 && !source; n--) source = inh.sources[path.slice(0, n).join('.')] ?? null;
  if (!source) {
    // a parent object: any source below it (the form shows one layer; the advanced view shows the rest)
    const prefix = `${path.join('.')}.`;
    const k = Object.keys(inh.sources).find((s) => s.startsWith(prefix));
    source = k ? inh.sources[k]! : null;
  }
  return { value, source };
}

/** A span whose end is not after its start runs past midnight into the next day. */
export const crossesMidnight = (s: Span): boolean => s.to <= s.from;

// ------------------------------------------------------------------------------------------------ validation

export interface FieldError {
  path: string;
  message: string;
}

interface RawIssue {
  code: string;
  path: PropertyKey[];
  minimum?: number | bigint;
  maximum?: number | bigint;
  expected?: string;
  values?: unknown[];
  keys?: string[];
  format?: string;
}

/** A zod issue in the user's words: the schema's own English messages are for the API, not for this form. */
function describe(i: RawIssue, path: Path): string {
  const last = String(path.at(-1) ?? '');
  switch (i.code) {
    case 'too_small':
      return t('cfgform.err.min', { min: String(i.minimum) });
    case 'too_big':
      return i.maximum !== undefined && (last === 'servicesEnabled' || /^(mon|tue|wed|thu|fri|sat|sun)$/.test(last))
        ? t('cfgform.err.maxItems', { max: String(i.maximum) })
        : t('cfgform.err.max', { max: String(i.maximum) });
    case 'invalid_format':
      if (last === 'from' || last === 'to') return t('cfgform.err.time');
      if (last === 'probe') return t('cfgform.err.probe');
      return t('cfgform.err.format');
    case 'invalid_value':
      return t('cfgform.err.choice', { values: (i.values ?? []).map(String).join(', ') });
    case 'invalid_type': {
      const key = `cfgform.type.${i.expected ?? ''}` as MessageKey;
      const known = ['number', 'int', 'string', 'boolean', 'array', 'object'].includes(i.expected ?? '');
      return t('cfgform.err.type', { expected: known ? t(key) : String(i.expected) });
    }
    default:
      return t('cfgform.err.invalid');
  }
}

/** Checks a layer as the hub does (see the module comment); each error with its dotted path, in the user's words. */
export function validateLayer(layer: unknown): FieldError[] {
  const out: FieldError[] = [];
  if (!isObj(layer)) return [{ path: '', message: t('cfgform.err.object') }];
  walk(terminalConfigSchema, layer, [], out);
  return out;
}

function walk(schema: z.ZodType, value: unknown, path: string[], out: FieldError[]): void {
  if (value === null && path.length > 0) return;
  const d = def(unwrap(schema));
  if (d.type === 'object' || d.type === 'record') {
    if (!isObj(value)) {
      out.push({ path: path.join('.'), message: t('cfgform.err.object') });
      return;
    }
    for (const [k, v] of Object.entries(value)) {
      const child = d.type === 'object' ? d.shape?.[k] : d.keyType?.safeParse(k).success ? d.valueType : undefined;
      if (!child) out.push({ path: [...path, k].join('.'), message: t('cfgform.err.unknownKey', { key: k }) });
      else walk(child, v, [...path, k], out);
    }
    return;
  }
  const r = schema.safeParse(value);
  if (!r.success) {
    for (const i of r.error.issues as unknown as RawIssue[]) {
      const p = [...path, ...i.path.map(String)];
      out.push({ path: p.join('.'), message: describe(i, p) });
    }
  }
}
