/**
 * HTTP routes of releases, as a Hono sub-app mounted at `/api/v1/releases`:
 * - `POST /`                 upload (admin): body = the artifact bytes, streamed; headers `X-KF-Manifest` (base64
 *                            of the manifest bytes as signed) and `X-KF-Signature` (base64 Ed25519 signature).
 *                            201 new, 200 identical re-upload; 400 bad signature/manifest/size/sha256, 409 id taken
 *                            by other content, 413 too large.
 * - `GET /`                  list (admin): `{ items, nextCursor: null }`.
 * - `GET /:id`               one release (admin).
 * - `GET|HEAD /:id/artifact` the artifact for a terminal holding a download token (`Authorization: Bearer <token>`
 *                            or `?token=`), with Range (206, 416) and `ETag` = `"<sha256>"` for `If-Range`.
 */
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import type { Logger } from 'pino';
import { statusText, type Text } from '@kiosk-fleet/protocol';
import { ReleaseRefused, type ArtifactStore } from './artifact-store.ts';
import { parseRange } from './range.ts';
import { verifyDownloadToken } from './tokens.ts';

export interface ReleasesRoutesDeps {
  store: ArtifactStore;
  /** The hub's download-token key (`ReleaseStore.tokenKey()`, kept in the database). */
  tokenKey: Buffer;
  /** Guards upload and listing: the hub's admin authentication (and scope check). Required: no open default. */
  requireAdmin: MiddlewareHandler;
  /** Whether a token's terminal may still download (registered, not decommissioned). Default: any valid token. */
  isTerminalAllowed?: (terminalId: string) => boolean | Promise<boolean>;
  logger: Logger;
  now?: () => Date;
  /** The caller's name for log lines (the hub: the operator after requireAdmin). */
  actor?: (c: Context) => string;
  /**
   * Records an operator's change in the hub's audit log (the hub: with actor, address and node). Releases are
   * installation-wide, so their records carry no node.
   */
  audit?: (c: Context, e: ReleaseAuditEntry) => void | Promise<unknown>;
}

export interface ReleaseAuditEntry {
  action: 'release.upload';
  objectType: 'release';
  objectId: string;
  nodeId: null;
  after: Record<string, unknown>;
}

/** `text`: the sentence for a person beside the English `message` (hub/src/errors.ts). */
function errorBody(code: string, message: string, text?: Text): { error: { code: string; message: string; text: Text } } {
  return { error: { code, message, text: text ?? statusText(code === 'not-found' ? 404 : code === 'unauthorized' ? 401 : code === 'forbidden' ? 403 : 400) } };
}

export function releasesRoutes(deps: ReleasesRoutesDeps): Hono {
  const d = { ...deps };
  const now = d.now ?? (() => new Date());
  const app = new Hono();

  app.post('/', d.requireAdmin, async (c) => {
    const len = c.req.header('content-length');
    const contentLength = len !== undefined && /^\d+$/.test(len) ? Number(len) : undefined;
    // The store reads the body only once the headers pass, and not at all for an identical re-upload. What it left
    // unread, the app's settleRequestBody (api/request-body.ts) drains or closes the connection on before we answer:
    // an answer alone would leave the keep-alive connection stuck behind the rest of this body.
    const body = c.req.raw.body as AsyncIterable<Uint8Array> | null;
    try {
      const { record, created } = await d.store.ingest({
        manifestB64: c.req.header('x-kf-manifest'),
        signatureB64: c.req.header('x-kf-signature'),
        contentLength,
        body,
        actor: d.actor?.(c),
      });
      // An identical re-upload changes nothing: no record.
      if (created) {
        await d.audit?.(c, {
          action: 'release.upload',
          objectType: 'release',
          objectId: record.id,
          nodeId: null,
          after: { kind: record.kind, version: record.version, size: record.size, sha256: record.sha256, terminalTypes: record.terminalTypes, keyId: record.keyId },
        });
      }
      return c.json(record, created ? 201 : 200);
    } catch (err) {
      if (err instanceof ReleaseRefused) return c.json(errorBody(err.code, err.message, { code: 'error.release-refused', params: { reason: err.code } }), err.status);
      throw err;
    }
  });

  app.get('/', d.requireAdmin, async (c) => c.json({ items: await d.store.list(), nextCursor: null }));

  app.get('/:id', d.requireAdmin, async (c) => {
    const r = await d.store.get(c.req.param('id'));
    return r ? c.json(r) : c.json(errorBody('not-found', 'no such release'), 404);
  });

  const artifact = async (c: Context): Promise<Response> => {
    const id = c.req.param('id') ?? '';
    const auth = c.req.header('authorization');
    const token = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : c.req.query('token');
    if (!token) return c.json(errorBody('unauthorized', 'a download token is required'), 401);
    const check = verifyDownloadToken(d.tokenKey, token, id, now());
    if (!check.ok) {
      d.logger.warn({ releaseId: id, reason: check.reason }, 'artifact download refused');
      return c.json(errorBody('unauthorized', `download token refused: ${check.reason}`), 401);
    }
    if (d.isTerminalAllowed && !(await d.isTerminalAllowed(check.terminalId))) {
      d.logger.warn({ releaseId: id, terminalId: check.terminalId }, 'artifact download refused: terminal not allowed');
      return c.json(errorBody('forbidden', 'terminal may not download'), 403);
    }
    const rec = await d.store.get(id);
    if (!rec) return c.json(errorBody('not-found', 'no such release'), 404);

    const etag = `"${rec.sha256}"`;
    const ifRange = c.req.header('if-range');
    // [RFC 9110 13.1.5] a Range whose If-Range validator does not match is ignored: send the whole (new) body.
    const range = ifRange !== undefined && ifRange !== etag ? { kind: 'full' as const } : parseRange(c.req.header('range'), rec.size);
    const headers: Record<string, string> = {
      'accept-ranges': 'bytes',
      etag,
      'content-type': 'application/gzip',
      'cache-control': 'private, no-store',
    };
    if (range.kind === 'unsatisfiable') {
      return new Response(null, { status: 416, headers: { ...headers, 'content-range': `bytes */${rec.size}` } });
    }
    const start = range.kind === 'partial' ? range.start : 0;
    const end = range.kind === 'partial' ? range.end : rec.size - 1;
    headers['content-length'] = String(end - start + 1);
    if (range.kind === 'partial') headers['content-range'] = `bytes ${start}-${end}/${rec.size}`;
    const status = range.kind === 'partial' ? 206 : 200;
    if (c.req.method === 'HEAD' || rec.size === 0) return new Response(null, { status, headers });
    const body = await d.store.openArtifact(rec.sha256, { start, end });
    if (!body) throw new Error(`release ${rec.id}: artifact ${rec.sha256} is not stored`);
    return new Response(body, { status, headers });
  };
  // Hono answers HEAD through this GET route too (and drops the body).
  app.get('/:id/artifact', artifact);

  return app;
}
