import { OpenAPIHono } from '@hono/zod-openapi';
import { describe, expect, it } from 'vitest';
import { registerReleasesOpenApi } from '../releases/openapi.ts';
import { registerRolloutsOpenApi } from './openapi.ts';

describe('OpenAPI description of releases and rollouts', () => {
  it('documents every route with its responses', () => {
    const api = new OpenAPIHono();
    registerReleasesOpenApi(api.openAPIRegistry);
    registerRolloutsOpenApi(api.openAPIRegistry);
    const doc = api.getOpenAPI31Document({ openapi: '3.1.0', info: { title: 't', version: '1' } });
    expect(Object.keys(doc.paths ?? {}).sort()).toEqual([
      '/releases',
      '/releases/{id}',
      '/releases/{id}/artifact',
      '/rollouts',
      '/rollouts/{id}',
      '/rollouts/{id}/abort',
      '/rollouts/{id}/pause',
      '/rollouts/{id}/resume',
    ]);
    expect(Object.keys(doc.paths!['/releases/{id}/artifact']!.get!.responses!)).toEqual(['200', '206', '401', '403', '404', '416']);
    const create = doc.paths!['/rollouts']!.post!.requestBody as { content: Record<string, { schema: { properties?: Record<string, unknown> } }> };
    expect(Object.keys(create.content['application/json']!.schema.properties ?? {})).toContain('waves');
  });
});
