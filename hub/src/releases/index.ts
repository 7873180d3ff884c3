/**
 * Releases, wired in one call: the artifact store over the database's ReleaseStore, the download-token key and the
 * HTTP routes.
 *
 *   const releases = await createReleases({ store: createReleaseStore(engine), dataDir, releaseKeys: env.KF_RELEASE_KEYS, logger, isAdminToken, isTerminalAllowed });
 *   app.route('/api/v1/releases', releases.routes);          // BEFORE the admin-bearer /api/v1 app: see README
 *   releases.updateTarget(record, terminalId, { baseUrl })   // what a rollout publishes on update/target
 */
import type { Hono, MiddlewareHandler } from 'hono';
import type { Logger } from 'pino';
import type { UpdateTarget } from '@kiosk-fleet/protocol';
import { ArtifactStore, type ReleaseRecord } from './artifact-store.ts';
import { importReleaseFiles } from './import-files.ts';
import { parseTrustedKeys } from './keys.ts';
import { releasesRoutes, type ReleasesRoutesDeps } from './routes.ts';
import type { ReleaseStore } from './store.ts';
import { DEFAULT_TOKEN_TTL_SECONDS, issueDownloadToken, readTokenKeyFile, type DownloadToken } from './tokens.ts';

export { ArtifactStore, ReleaseRefused, type ReleaseRecord } from './artifact-store.ts';
export { releaseCommand } from './cli.ts';
export { parseTrustedKeys, ReleaseKeyError } from './keys.ts';
export { releasesRoutes, type ReleasesRoutesDeps } from './routes.ts';
export { createReleaseStore, type ArtifactUpload, type ByteRange, type ReleaseStore } from './store.ts';
export { SqliteReleaseStore } from './store.sqlite.ts';
export { PostgresReleaseStore } from './store.postgres.ts';
export { issueDownloadToken, verifyDownloadToken } from './tokens.ts';

/** 512 MiB: a kiosk app with its assets is tens of MiB; the limit only stops an operator's mistake. */
export const DEFAULT_MAX_UPLOAD_BYTES = 512 * 1024 * 1024;

export interface ReleasesOptions {
  /** Where releases, artifacts and the token key are kept (the hub's database). */
  store: ReleaseStore;
  /** A data dir where an older hub may have kept releases as files: imported once at start (import-files.ts). */
  dataDir?: string;
  /** KF_RELEASE_KEYS as given (comma-separated paths or PEM strings). Empty: every upload is refused. */
  releaseKeys: string | undefined;
  logger: Logger;
  /** The hub's admin check for a bearer token (constant-time). */
  isAdminToken: (token: string) => boolean;
  /** Replaces the admin-bearer check on upload/list/detail (the hub passes its operator check: auth/middleware.ts). */
  requireAdmin?: MiddlewareHandler;
  isTerminalAllowed?: (terminalId: string) => boolean | Promise<boolean>;
  maxUploadBytes?: number;
  tokenTtlSeconds?: number;
  /** Who uploads (log lines) and the audit record of an upload: see ReleasesRoutesDeps. */
  actor?: ReleasesRoutesDeps['actor'];
  audit?: ReleasesRoutesDeps['audit'];
}

export interface Releases {
  store: ArtifactStore;
  tokenKey: Buffer;
  routes: Hono;
  issueToken(releaseId: string, terminalId: string): DownloadToken;
  /** The `update/target` payload that sends `release` to `terminalId`, with a fresh download token. */
  updateTarget(release: ReleaseRecord, terminalId: string, o: { baseUrl: string; rolloutId?: string; urgent?: boolean }): UpdateTarget;
}

export function adminBearer(isAdminToken: (token: string) => boolean): MiddlewareHandler {
  return async (c, next) => {
    const m = /^Bearer (.+)$/.exec(c.req.header('authorization') ?? '');
    if (!m || !isAdminToken(m[1]!)) {
      return c.json({ error: { code: 'unauthorized', message: 'send Authorization: Bearer <KF_ADMIN_TOKEN>' } }, 401);
    }
    return next();
  };
}

export async function createReleases(o: ReleasesOptions): Promise<Releases> {
  const log = o.logger.child({ module: 'releases' });
  const trustedKeys = parseTrustedKeys(o.releaseKeys);
  if (trustedKeys.length === 0) log.warn('KF_RELEASE_KEYS is empty: release uploads will be refused');
  const store = await new ArtifactStore({ store: o.store, trustedKeys, maxUploadBytes: o.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES, logger: log }).init();
  // An older hub's key file seeds the database's key, so the tokens in its retained update/targets stay valid.
  const tokenKey = await o.store.tokenKey(o.dataDir === undefined ? undefined : readTokenKeyFile(o.dataDir));
  if (o.dataDir !== undefined) await importReleaseFiles(o.dataDir, store, log);
  const ttlSeconds = o.tokenTtlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
  const issueToken = (releaseId: string, terminalId: string): DownloadToken => issueDownloadToken(tokenKey, { releaseId, terminalId, ttlSeconds });
  const routes = releasesRoutes({
    store,
    tokenKey,
    logger: log,
    requireAdmin: o.requireAdmin ?? adminBearer(o.isAdminToken),
    ...(o.isTerminalAllowed ? { isTerminalAllowed: o.isTerminalAllowed } : {}),
    ...(o.actor ? { actor: o.actor } : {}),
    ...(o.audit ? { audit: o.audit } : {}),
  });
  return {
    store,
    tokenKey,
    routes,
    issueToken,
    updateTarget(r, terminalId, t) {
      const tok = issueToken(r.id, terminalId);
      return {
        v: 1,
        release: {
          id: r.id,
          kind: r.kind,
          version: r.version,
          url: `${t.baseUrl.replace(/\/+$/, '')}/api/v1/releases/${encodeURIComponent(r.id)}/artifact`,
          size: r.size,
          sha256: r.sha256,
          manifest: r.manifest,
          signature: r.signature,
        },
        ...(t.rolloutId ? { rolloutId: t.rolloutId } : {}),
        token: tok.token,
        tokenExpiresAt: tok.expiresAt.toISOString(),
        urgent: t.urgent ?? false,
      };
    },
  };
}
