/**
 * The signed release manifest: what `kiosk-fleet release pack` signs, what the hub checks on upload and what the
 * agent checks before it installs anything. No I/O and no crypto here (the dashboard imports this package in a
 * browser); signing and verifying live in `@kiosk-fleet/protocol/release-signing` (Node only).
 *
 * The signature covers the manifest's exact bytes. Those bytes travel base64-encoded (`update/target.manifest`,
 * the upload's `X-KF-Manifest` header), so nobody ever re-serialises a manifest before verifying it; the canonical
 * form below only makes `pack` deterministic and manifests easy to diff.
 */
import * as z from 'zod';
import { TERMINAL_TYPE_IDS } from './catalog.ts';
import { RELEASE_KINDS } from './schemas/messages.ts';

/** Semantic Versioning 2.0.0, the regex suggested by semver.org (no leading `v`). */
const SEMVER_RE =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

export function isSemver(s: string): boolean {
  return s.length <= 64 && SEMVER_RE.test(s);
}

export const semver = z.string().max(64).regex(SEMVER_RE, 'version: semver such as 3.3.0 or 3.3.0-rc.1');

/** Compare two semver strings by precedence (build metadata ignored): negative, 0 or positive. Throws on non-semver. */
export function compareSemver(a: string, b: string): number {
  const pa = SEMVER_RE.exec(a);
  const pb = SEMVER_RE.exec(b);
  if (!pa || !pb) throw new Error(`not a semver version: ${pa ? b : a}`);
  for (let i = 1; i <= 3; i++) {
    const d = Number(pa[i]) - Number(pb[i]);
    if (d !== 0) return Math.sign(d);
  }
  const preA = pa[4];
  const preB = pb[4];
  // [semver 11.3] a version without pre-release ranks above the same version with one.
  if (preA === undefined || preB === undefined) return preA === preB ? 0 : preA === undefined ? 1 : -1;
  const idsA = preA.split('.');
  const idsB = preB.split('.');
  for (let i = 0; i < Math.max(idsA.length, idsB.length); i++) {
    const x = idsA[i];
    const y = idsB[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const nx = /^\d+$/.test(x);
    const ny = /^\d+$/.test(y);
    if (nx && ny) {
      const d = Number(x) - Number(y);
      if (d !== 0) return Math.sign(d);
    } else if (nx !== ny) {
      return nx ? -1 : 1; // [semver 11.4.3] numeric identifiers rank below alphanumeric ones
    } else if (x !== y) {
      return x < y ? -1 : 1;
    }
  }
  return 0;
}

export const MANIFEST_VERSION = 1;
/** A manifest is small; anything larger is refused before parsing (it also bounds `update/target.manifest`). */
export const MAX_MANIFEST_BYTES = 4096;

export const releaseManifestSchema = z
  .object({
    /** Manifest format version. */
    v: z.literal(MANIFEST_VERSION),
    kind: z.enum(RELEASE_KINDS),
    version: semver,
    /** Bytes of the artifact (tar.gz). */
    size: z.int().min(1).max(Number.MAX_SAFE_INTEGER),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'sha256: 64 lowercase hex digits'),
    /** Which terminal types may install it. */
    terminalTypes: z.array(z.enum(TERMINAL_TYPE_IDS as [string, ...string[]])).min(1).max(TERMINAL_TYPE_IDS.length),
    /** The oldest agent that can install it (an app may need a newer agent's local API). */
    minAgentVersion: semver.optional(),
    createdAt: z.iso.datetime({ offset: true }),
  })
  .strict();
export type ReleaseManifest = z.infer<typeof releaseManifestSchema>;

/** The release id used in URLs, `update/target.release.id` and the store: `app-3.3.0`, `agent-1.2.0`. */
export function releaseId(m: Pick<ReleaseManifest, 'kind' | 'version'>): string {
  return `${m.kind}-${m.version}`;
}

/** JSON with keys sorted at every level, no whitespace: the bytes `pack` signs. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function canonicalManifestBytes(m: ReleaseManifest): Uint8Array {
  return new TextEncoder().encode(canonicalJson(releaseManifestSchema.parse(m)));
}

export type ManifestParseResult = { ok: true; manifest: ReleaseManifest } | { ok: false; reason: string };

/** Parse manifest bytes (as signed). Never throws: bad input is a reason string naming the field. */
export function parseManifestBytes(bytes: Uint8Array): ManifestParseResult {
  if (bytes.byteLength > MAX_MANIFEST_BYTES) return { ok: false, reason: `manifest larger than ${MAX_MANIFEST_BYTES} bytes` };
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return { ok: false, reason: 'manifest is not UTF-8 JSON' };
  }
  const r = releaseManifestSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    return { ok: false, reason: `manifest ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}` };
  }
  return { ok: true, manifest: r.data };
}
