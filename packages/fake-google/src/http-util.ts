/**
 * Response shapes shared by the endpoints: Google's JSON error envelope, the
 * OAuth error body, and the HTML pages Google's front end serves for unknown
 * paths and gateway errors.
 */

export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const JSON_TYPE = 'application/json; charset=UTF-8';

/** Whether an `Accept-Encoding` header takes gzip (`gzip`, `x-gzip` or `*`, with a q-value above 0). */
export function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  return header.split(',').some((part) => {
    const [coding = '', ...params] = part.trim().toLowerCase().split(';');
    if (coding.trim() !== 'gzip' && coding.trim() !== 'x-gzip' && coding.trim() !== '*') return false;
    const q = params.map((p) => /^\s*q\s*=\s*([\d.]+)\s*$/.exec(p)).find((m) => m !== null);
    return q ? Number(q[1]) > 0 : true;
  });
}

/** Google pretty-prints JSON unless the request says `prettyPrint=false`. */
export function jsonReply(status: number, value: unknown, headers: Record<string, string> = {}, pretty = true): Reply {
  const body = pretty ? `${JSON.stringify(value, null, 2)}\n` : JSON.stringify(value);
  return { status, headers: { 'content-type': JSON_TYPE, ...headers }, body };
}

/** `{"error":{"code","message","status"}}`, the envelope of every Google API error. */
export function apiError(code: number, status: string, message: string, extra: { details?: unknown[]; headers?: Record<string, string> } = {}): Reply {
  const error: Record<string, unknown> = { code, message, status };
  if (extra.details) error.details = extra.details;
  return jsonReply(code, { error }, extra.headers);
}

export const invalidArgument = (message: string): Reply => apiError(400, 'INVALID_ARGUMENT', message);

/** The token endpoint's RFC 6749 error body. */
export function oauthError(status: number, error: string, description: string): Reply {
  return jsonReply(
    status,
    { error, error_description: description },
    { 'cache-control': 'no-cache, no-store, max-age=0, must-revalidate', pragma: 'no-cache' },
  );
}

const HTML_REASON: Record<number, [string, string]> = {
  404: ['Not Found', 'The requested URL <code>{path}</code> was not found on this server.'],
  502: ['Server Error', 'The server encountered a temporary error and could not complete your request.<p>Please try again in 30 seconds.'],
};

/** Google front-end HTML error page: a client that parses it as JSON must fail. */
export function htmlError(status: number, path = '/'): Reply {
  const [title, text] = HTML_REASON[status] ?? ['Error', 'The server cannot process the request.'];
  const escaped = path.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const body = `<!DOCTYPE html>
<html lang=en>
  <meta charset=utf-8>
  <meta name=viewport content="initial-scale=1, minimum-scale=1, width=device-width">
  <title>Error ${status} (${title})!!1</title>
  <a href=//www.google.com/><span id=logo aria-label=Google></span></a>
  <p><b>${status}.</b> <ins>That’s an error.</ins>
  <p>${text.replace('{path}', escaped)}  <ins>That’s all we know.</ins>
`;
  return { status, headers: { 'content-type': 'text/html; charset=UTF-8' }, body };
}

/** The body of an injected `status` fault, as Google's API front end answers with that code. */
export function faultReply(status: number, message: string | undefined): Reply {
  switch (status) {
    case 429:
      return apiError(429, 'RESOURCE_EXHAUSTED', message ?? 'Resource has been exhausted (e.g. check quota).');
    case 500:
      return apiError(500, 'INTERNAL', message ?? 'Internal error encountered.');
    case 502:
      return htmlError(502);
    case 503:
      return apiError(503, 'UNAVAILABLE', message ?? 'The service is currently unavailable.');
    case 504:
      return apiError(504, 'DEADLINE_EXCEEDED', message ?? 'Deadline expired before operation could complete.');
    case 400:
      return apiError(400, 'INVALID_ARGUMENT', message ?? 'Request contains an invalid argument.');
    case 401:
      return apiError(401, 'UNAUTHENTICATED', message ?? 'Request had invalid authentication credentials.');
    case 403:
      return apiError(403, 'PERMISSION_DENIED', message ?? 'The caller does not have permission');
    case 404:
      return apiError(404, 'NOT_FOUND', message ?? 'Requested entity was not found.');
    default:
      return apiError(status, status >= 500 ? 'UNKNOWN' : 'FAILED_PRECONDITION', message ?? `Injected fault ${status}.`);
  }
}
