import { statusText, type Text } from '@kiosk-fleet/protocol';

/**
 * Errors with codes; the API maps them to HTTP in one place (api/app.ts onError). `text` is the sentence for a person
 * as a catalogue code (protocol texts.ts), sent as `error.text` beside the English `message`; without one the API
 * sends the generic sentence for the status, so a reader never sees the English sentence inside their language.
 */
export class HubError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 413 | 429 | 503,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    readonly text: Text = statusText(status),
  ) {
    super(message);
    this.name = 'HubError';
  }
}

export const notFound = (what: string, id: string) =>
  new HubError(404, 'not-found', `${what} ${id} not found`, { id }, { code: 'error.not-found', params: { what: what.startsWith('version of ') ? 'config' : what, id } });
export const conflict = (message: string, details?: unknown, text?: Text) => new HubError(409, 'conflict', message, details, text);
export const badRequest = (code: string, message: string, details?: unknown, text?: Text) =>
  new HubError(400, code, message, details, text);
export const forbidden = (message: string, details?: unknown) => new HubError(403, 'forbidden', message, details, { code: 'error.forbidden', params: {} });
/** The request's bad fields as one parameter (paths are identifiers, the same in every language). */
export function fieldsText(code: 'error.invalid-fields' | 'error.invalid-config', issues: readonly { path: readonly PropertyKey[] }[]): Text {
  const fields = [...new Set(issues.map((i) => i.path.map(String).join('.') || '(body)'))].join(', ');
  return { code, params: { fields: fields || '(body)' } };
}
