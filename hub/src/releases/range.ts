/** RFC 9110 §14 byte ranges: one range per request (a multi-range request is answered with the whole body). */

export type RangeResult = { kind: 'full' } | { kind: 'partial'; start: number; end: number } | { kind: 'unsatisfiable' };

export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined) return { kind: 'full' };
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  // [RFC 9110 14.2] a server MAY ignore a Range it does not understand, and multi-range is optional.
  if (!m || (m[1] === '' && m[2] === '')) return { kind: 'full' };
  const [, a, b] = m as unknown as [string, string, string];
  if (a === '') {
    // suffix range: the last N bytes
    const n = Number(b);
    if (n === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (b !== '' && Number(b) < start) return { kind: 'full' }; // invalid spec: ignored, like an absent Range
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end };
}
