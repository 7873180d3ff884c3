/**
 * The release routes in the OpenAPI document. The routes themselves are plain Hono (a streamed raw body does not
 * fit zod-openapi's validators), so they are described here and registered on the API's registry:
 * `registerReleasesOpenApi(api.openAPIRegistry)`.
 */
import { z, type OpenAPIHono } from '@hono/zod-openapi';

const error = z.object({ error: z.object({ code: z.string(), message: z.string() }) }).openapi('ReleaseError');
const release = z
  .object({
    id: z.string().openapi({ example: 'app-3.3.0' }),
    kind: z.enum(['app', 'agent']),
    version: z.string(),
    size: z.int(),
    sha256: z.string(),
    terminalTypes: z.array(z.string()),
    minAgentVersion: z.string().nullable(),
    createdAt: z.string(),
    uploadedAt: z.string(),
    keyId: z.string(),
    manifest: z.string().openapi({ description: 'base64 of the signed manifest bytes' }),
    signature: z.string().openapi({ description: 'base64 Ed25519 signature' }),
  })
  .openapi('Release');
const json = (schema: z.ZodType, description: string) => ({ description, content: { 'application/json': { schema } } });
const id = z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' }, example: 'app-3.3.0' }) });

export function registerReleasesOpenApi(registry: Pick<OpenAPIHono['openAPIRegistry'], 'registerPath'>): void {
  registry.registerPath({
    method: 'post',
    path: '/releases',
    summary: 'Upload a signed release artifact (streamed; verified against KF_RELEASE_KEYS before it is read)',
    security: [{ bearer: [] }],
    request: {
      headers: z.object({
        'x-kf-manifest': z.string().openapi({ description: 'base64 of the manifest file written by `kiosk-fleet release pack`' }),
        'x-kf-signature': z.string().openapi({ description: 'contents of the .sig file' }),
      }),
      body: { required: true, content: { 'application/gzip': { schema: z.string().openapi({ format: 'binary' }) } } },
    },
    responses: {
      201: json(release, 'Stored'),
      200: json(release, 'Identical bytes were already stored'),
      400: json(error, 'bad-request, bad-signature, bad-manifest, size-mismatch, sha256-mismatch'),
      401: json(error, 'Not an admin'),
      409: json(error, 'release-exists: the id names other content'),
      413: json(error, 'too-large'),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/releases',
    summary: 'List releases, newest first',
    security: [{ bearer: [] }],
    responses: { 200: json(z.object({ items: z.array(release), nextCursor: z.string().nullable() }), 'Releases'), 401: json(error, 'Not an admin') },
  });
  registry.registerPath({
    method: 'get',
    path: '/releases/{id}',
    summary: 'One release',
    security: [{ bearer: [] }],
    request: { params: id },
    responses: { 200: json(release, 'The release'), 401: json(error, 'Not an admin'), 404: json(error, 'No such release') },
  });
  registry.registerPath({
    method: 'get',
    path: '/releases/{id}/artifact',
    summary: 'Download the artifact with a terminal download token (Bearer or ?token=); single byte ranges',
    request: {
      params: id,
      query: z.object({ token: z.string().optional() }),
      headers: z.object({ range: z.string().optional().openapi({ example: 'bytes=1048576-' }), 'if-range': z.string().optional() }),
    },
    responses: {
      200: { description: 'The whole artifact', content: { 'application/gzip': { schema: z.string().openapi({ format: 'binary' }) } } },
      206: { description: 'A byte range (Content-Range)', content: { 'application/gzip': { schema: z.string().openapi({ format: 'binary' }) } } },
      401: json(error, 'Missing, expired or forged token, or a token for another release'),
      403: json(error, 'The terminal is not registered or was decommissioned'),
      404: json(error, 'No such release'),
      416: { description: 'Range not satisfiable' },
    },
  });
}
