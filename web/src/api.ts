import type { components } from './api-types';

export type Schemas = components['schemas'];

/** An answer other than 2xx, with the API's own message and request id. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId: string | null,
  ) {
    super(message);
  }
}

export interface Api {
  get<T>(path: string): Promise<T>;
  post<T>(path: string, body?: unknown, headers?: Record<string, string>): Promise<T>;
  del<T>(path: string): Promise<T>;
  /** The raw response (CSV download). */
  raw(path: string): Promise<Response>;
}

export function makeApi(base: string, token: () => string | null, onUnauthorized: () => void): Api {
  async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
    const access = token();
    const init: RequestInit = {
      method,
      headers: {
        ...(access ? { Authorization: `Bearer ${access}` } : {}),
        ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
        ...headers,
      },
    };
    if (body !== undefined) init.body = JSON.stringify(body);
    let response: Response;
    try {
      response = await fetch(`${base}${path}`, init);
    } catch (error) {
      throw new ApiError(0, 'network', `The API could not be reached (${String(error)}).`, null);
    }
    if (response.ok) return response;
    let code = 'http_' + response.status;
    let message = response.statusText || `HTTP ${response.status}`;
    let requestId = response.headers.get('x-request-id') ?? response.headers.get('apigw-requestid');
    try {
      const parsed = (await response.json()) as Partial<Schemas['Error']>;
      if (parsed.error) {
        code = parsed.error.code;
        message = parsed.error.message;
        requestId = parsed.error.requestId ?? requestId;
      }
    } catch {
      // Not the API's JSON error shape: keep the status line.
    }
    if (response.status === 401) onUnauthorized();
    throw new ApiError(response.status, code, message, requestId);
  }
  const json = async <T,>(response: Response) => (await response.json()) as T;
  return {
    get: async (path) => json(await call('GET', path)),
    post: async (path, body, headers) => json(await call('POST', path, body, headers)),
    del: async (path) => json(await call('DELETE', path)),
    raw: (path) => call('GET', path),
  };
}

/** A fresh Idempotency-Key for one user intent (kept across retries of that intent). */
export function idempotencyKey(): string {
  return crypto.randomUUID();
}
