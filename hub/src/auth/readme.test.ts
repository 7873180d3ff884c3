/** The permission matrix in hub/README.md ("Operators") says what PERMISSIONS says. */
import fs from 'node:fs';
import path from 'node:path';
import { expect, test } from 'vitest';
import { PERMISSIONS, ROLES, type Permission } from './permissions.ts';

test('the README matrix matches PERMISSIONS row for row', () => {
  const readme = fs.readFileSync(path.resolve(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
  const rows = readme
    .split('\n')
    .filter((l) => /^\| `[a-z]+:[a-z]+` \|/.test(l))
    .map((l) => l.split('|').map((c) => c.trim()));
  const table = Object.fromEntries(rows.map((cells) => [cells[1]!.replaceAll('`', ''), ROLES.filter((_, i) => cells[2 + i] === '✓')]));
  const expected = Object.fromEntries((Object.keys(PERMISSIONS) as Permission[]).map((p) => [p, [...PERMISSIONS[p].roles]]));
  expect(table).toEqual(expected);
});
