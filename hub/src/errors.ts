/** Errors with codes; the API maps them to HTTP in one place (api/app.ts onError). */
export class HubError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 413 | 429 | 503,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'HubError';
  }
}

export const notFound = (what: string, id: string) => new HubError(404, 'not-found', `${what} ${id} not found`, { id });
export const conflict = (message: string, details?: unknown) => new HubError(409, 'conflict', message, details);
export const badRequest = (code: string, message: string, details?: unknown) =>
  new HubError(400, code, message, details);
export const forbidden = (message: string, details?: unknown) => new HubError(403, 'forbidden', message, details);
