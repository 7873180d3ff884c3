/** The change an operator is about to save, as flat dotted keys: what the diff before saving shows. */
type Flat = Record<string, unknown>;

function flatten(obj: unknown, prefix = '', out: Flat = {}): Flat {
  if (obj && typeof obj === 'object' && !Array.isArray(obj)) {
    for (const [k, v] of Object.entries(obj)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) out[prefix] = obj;
  return out;
}

/** Weekdays in the week's order (Monday first, as the form's grid): alphabetical order would read fri, mon, sat… */
const WEEK = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

function compareKeys(a: string, b: string): number {
  const x = a.split('.');
  const y = b.split('.');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] === y[i]) continue;
    const wx = WEEK.indexOf(x[i]!);
    const wy = WEEK.indexOf(y[i]!);
    if (wx >= 0 && wy >= 0) return wx - wy;
    return x[i]! < y[i]! ? -1 : 1;
  }
  return x.length - y.length;
}

/** Keys added, changed or removed between two settings objects, as flat dotted paths (weekdays in week order). */
export function configDiff(before: unknown, after: unknown): { key: string; from: unknown; to: unknown }[] {
  const a = flatten(before);
  const b = flatten(after);
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort(compareKeys);
  return keys.filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k])).map((k) => ({ key: k, from: a[k], to: b[k] }));
}

