/**
 * Identifiers of the three-tier tree (city → district → station) and of terminals.
 *
 * Node ids are hierarchical by construction: a district id is its city id plus one segment, a station id its
 * district id plus one segment (`GZ`, `GZ-YX`, `GZ-YX-001`). A terminal id is an opaque, stable identity that is
 * also its MQTT client id and username; the reference fleet names terminals `{stationId}-{nn}`, which records where
 * a terminal was first registered, but its placement (which station it stands at now) belongs to the hub's
 * registry, since a terminal can be moved without being renamed. Never derive placement from a terminal id.
 */
import * as z from 'zod';

/** Max length of any id; also the MQTT client id limit we promise to keep under (23 is only a 3.1 minimum). */
export const MAX_ID_LENGTH = 64;

/**
 * A terminal id: letters, digits, `.`, `_`, `-`, 1 to 64 characters, starting with a letter or digit.
 * This excludes every character that would make a topic ambiguous (`/`, `+`, `#`, NUL) and whitespace.
 */
export const TERMINAL_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function isTerminalId(id: string): boolean {
  return TERMINAL_ID_PATTERN.test(id);
}

export const terminalIdSchema = z.string().regex(TERMINAL_ID_PATTERN, 'terminal id: 1-64 of A-Z a-z 0-9 . _ -');

/** One segment of a node id: letters and digits, 1 to 16 characters. */
const SEGMENT = '[A-Za-z0-9]{1,16}';
export const NODE_ID_PATTERN = new RegExp(`^${SEGMENT}(-${SEGMENT}){0,2}$`);

export const nodeIdSchema = z
  .string()
  .max(MAX_ID_LENGTH)
  .regex(NODE_ID_PATTERN, 'node id: city `GZ`, district `GZ-YX`, station `GZ-YX-001`');

export const NODE_LEVELS = ['city', 'district', 'station'] as const;
export type NodeLevel = (typeof NODE_LEVELS)[number];

/** The level of a node id from its shape, or null when it is not a node id. */
export function nodeLevel(id: string): NodeLevel | null {
  if (id.length > MAX_ID_LENGTH || !NODE_ID_PATTERN.test(id)) return null;
  return NODE_LEVELS[id.split('-').length - 1] ?? null;
}

/** The parent of a district or station id; null for a city (or a malformed id). */
export function parentNodeId(id: string): string | null {
  const level = nodeLevel(id);
  if (level === null || level === 'city') return null;
  return id.slice(0, id.lastIndexOf('-'));
}

/** The ids from the city down to `id` itself: `GZ-YX-001` → [`GZ`, `GZ-YX`, `GZ-YX-001`]. */
export function nodePath(id: string): string[] {
  if (nodeLevel(id) === null) return [];
  const parts = id.split('-');
  return parts.map((_, i) => parts.slice(0, i + 1).join('-'));
}

/** True when `id` is `ancestor` or lies below it in the tree. */
export function isUnderNode(id: string, ancestor: string): boolean {
  return id === ancestor || id.startsWith(`${ancestor}-`);
}
