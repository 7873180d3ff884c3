/** What a fleet file holds, read in the browser before anything is sent (the hub validates every row on import). */
export function previewFleet(content: string): { format: 'json' | 'csv'; stations: number; terminals: number } {
  const trimmed = content.trim();
  if (trimmed.startsWith('{')) {
    const j = JSON.parse(trimmed) as { stations?: unknown[]; terminals?: unknown[] };
    if (!Array.isArray(j.terminals)) throw new Error('no "terminals" array');
    return { format: 'json', stations: Array.isArray(j.stations) ? j.stations.length : 0, terminals: j.terminals.length };
  }
  const lines = trimmed.split(/\r?\n/).filter((l) => l.trim() !== '');
  // The hub's CSV is `id,station,type,serial`, with or without that header line.
  const rows = /^\s*id\s*,/i.test(lines[0] ?? '') ? lines.slice(1) : lines;
  const stations = new Set(rows.map((l) => l.split(',')[1]?.trim()).filter(Boolean));
  return { format: 'csv', stations: stations.size, terminals: rows.length };
}

