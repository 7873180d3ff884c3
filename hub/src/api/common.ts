/** Shared API pieces: the env type, cursors, time conversion, shared schemas. */
import { z } from '@hono/zod-openapi';
import type { Principal } from '../auth/permissions.ts';
import type { HubServices } from '../hub.ts';

export interface ApiEnv {
  /** `principal`: who is calling (auth/middleware.ts); `actor`: its name for logs and placement history. */
  /** `audited`: the handler wrote its own audit record (else auth/policy.ts writes a generic one for a write). */
  Variables: { actor: string; principal: Principal; audited: boolean };
}

export type Services = HubServices;

export const iso = (ms: number | null | undefined): string | null => (ms === null || ms === undefined ? null : new Date(ms).toISOString());
export const isoReq = (ms: number): string => new Date(ms).toISOString();

export const errorSchema = z
  .object({ error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }) })
  .openapi('Error');

export const errorResponses = {
  400: { description: 'Bad request', content: { 'application/json': { schema: errorSchema } } },
  401: { description: 'Not signed in, or an unknown, expired or revoked token', content: { 'application/json': { schema: errorSchema } } },
  403: { description: "The caller's role may not do this (or a signed-in write without X-CSRF-Token)", content: { 'application/json': { schema: errorSchema } } },
  404: { description: "Not found, or outside the caller's node", content: { 'application/json': { schema: errorSchema } } },
} as const;

export const json = <T extends z.ZodType>(schema: T, description = 'OK') => ({
  description,
  content: { 'application/json': { schema } },
});

/** A route's required JSON request body, spread into `request` (the counterpart of `json` for responses). */
export const jsonBody = <T extends z.ZodType>(schema: T) => ({ body: { required: true, content: { 'application/json': { schema } } } });

/**
 * A whole number in a path or query string, the one schema for all of them: decimal digits only (no sign, `0x`,
 * exponent, blanks, `NaN` or `Infinity`, which `Number()` and `z.coerce` take), within [min, max] and never past 2^53 - 1
 * (above it a JS number is no longer exact, and SQLite refused 2^63 with a 500). A bad value is a 400 naming the field.
 */
export const wholeNumber = (min = 0, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .regex(/^[0-9]+$/, { message: 'expected decimal digits only' })
    .transform(Number)
    .pipe(z.number().int().min(min).max(Math.min(max, Number.MAX_SAFE_INTEGER)));

/** The number in a part of a composite cursor (`ts~epoch~seq`), or null when it is not one `wholeNumber` takes. */
export function wholeNumberOf(s: string | undefined): number | null {
  const r = wholeNumber().safeParse(s);
  return r.success ? r.data : null;
}

export const limitQuery = wholeNumber(1, 1000).default(100).openapi({ description: '1 to 1000 (default 100)' });
export const timeQuery = z.iso.datetime({ offset: true }).optional();

export function listOf<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), nextCursor: z.string().nullable() });
}

export const idParam = z.object({ id: z.string().min(1).max(64).openapi({ param: { name: 'id', in: 'path' } }) });

export function parseJson<T>(s: string | null): T | null {
  return s === null ? null : (JSON.parse(s) as T);
}
