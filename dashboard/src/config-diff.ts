/** The change an operator is about to save, as flat dotted keys: what the diff before saving shows. */
type Flat = Record<string, unknown>;

function flatten(obj: unknown, prefix = '', out: Flat = {}): Flat {
  if (obj && typeof obj === 'object' && !Array.isArray(obj)) {
    for (const [k, v] of Object.entries(obj)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) out[prefix] = obj;
  return out;
}

/** Keys added, changed or removed between two settings objects, as flat dotted paths. */
export function configDiff(before: unknown, after: unknown): { key: string; from: unknown; to: unknown }[] {
  const a = flatten(before);
  const b = flatten(after);
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k])).map((k) => ({ key: k, from: a[k], to: b[k] }));
}

