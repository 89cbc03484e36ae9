/**
 * What every token exchange shares, whatever the credential kind: the HTTP transport handed to
 * google-auth-library's clients, and reading what a failed call left behind.
 *
 * The transport is a Gaxios instance whose request interceptor, for every request a client makes
 * through it (STS, IAM Credentials, a subject-token URL, AWS metadata, a refresh-token grant):
 * - switches gaxios' own retries off (the library asks for them): retries, backoff and their
 *   metrics belong to the token manager;
 * - puts the exchange's deadline signal on the request (withDeadline, net/deadline.ts); a
 *   `timeout` set here would never apply, since gaxios turns it into a signal before interceptors
 *   run; and fetches through abortSafeFetch (net/abortSafeFetch.ts).
 */
import { gaxios } from 'google-auth-library';
import { AbortedError, RetryableError, systemErrorCode } from '../errors.js';
import { withNetworkCause } from '../net/networkCause.js';
import { abortSafeFetch } from '../net/abortSafeFetch.js';

export interface AuthTransport {
  transporter: gaxios.Gaxios;
  /** the body of the last successful answer, copied before the library rewrites it (it turns expires_in into expiry_date in place) */
  lastBody(): unknown;
}

/** A transport for one exchange: no retries of its own, every request bound to `signal`. */
export function authTransport(signal: AbortSignal): AuthTransport {
  const transporter = new gaxios.Gaxios({ fetchImplementation: abortSafeFetch });
  let body: unknown;
  bindToExchange(transporter, signal);
  transporter.interceptors.response.add({
    resolved: async (response) => {
      const data: unknown = response.data;
      body = typeof data === 'object' && data !== null && !Array.isArray(data) ? { ...(data as Record<string, unknown>) } : data;
      return response;
    },
  });
  return { transporter, lastBody: () => body };
}

/** Adds the interceptor described above to a transport (also one a library made for itself mid-exchange). */
export function bindToExchange(transporter: gaxios.Gaxios, signal: AbortSignal): void {
  transporter.interceptors.request.add({
    resolved: async (config) => {
      config.retry = false;
      delete config.retryConfig;
      config.signal = signal;
      if (!config.fetchImplementation) config.fetchImplementation = abortSafeFetch;
      return config;
    },
  });
}

/** What a failed request left: the HTTP status and parsed body when an answer came, else the network error. */
export interface HttpFailure {
  status?: number;
  body?: unknown;
  /** the request's URL, when known */
  url?: string;
  /** a network error code (ECONNREFUSED, ENOTFOUND, ...) */
  code?: string;
  name?: string;
  message: string;
}

export function httpFailure(err: unknown): HttpFailure {
  const e = (err ?? {}) as {
    response?: { status?: number; data?: unknown };
    config?: { url?: unknown };
    code?: unknown;
    name?: unknown;
    message?: unknown;
    cause?: { code?: unknown };
  };
  const out: HttpFailure = { message: typeof e.message === 'string' ? e.message : String(err) };
  if (e.response?.status !== undefined) out.status = e.response.status;
  if (e.response && 'data' in e.response) out.body = e.response.data;
  if (e.config?.url !== undefined) out.url = String(e.config.url);
  const code = typeof e.code === 'string' ? e.code : typeof e.cause?.code === 'string' ? e.cause.code : undefined;
  if (code) out.code = code;
  if (typeof e.name === 'string') out.name = e.name;
  return out;
}

/** An RFC 6749 error body, `{"error": "...", "error_description": "..."}`, as STS and the token endpoint answer. */
export function oauthErrorOf(body: unknown): { error: string; description: string } | null {
  const b = parseMaybeJson(body);
  if (typeof b !== 'object' || b === null) return null;
  const o = b as Record<string, unknown>;
  if (typeof o['error'] !== 'string') return null;
  return { error: o['error'], description: typeof o['error_description'] === 'string' ? o['error_description'] : '' };
}

/** Google's API error envelope, `{"error": {"code", "message", "status", "details": [{"reason"}]}}`. */
export function googleErrorOf(body: unknown): { status: string; message: string; reason: string } | null {
  const b = parseMaybeJson(body);
  if (typeof b !== 'object' || b === null) return null;
  const e = (b as Record<string, unknown>)['error'];
  if (typeof e !== 'object' || e === null) return null;
  const o = e as Record<string, unknown>;
  const details = Array.isArray(o['details']) ? (o['details'] as Array<Record<string, unknown>>) : [];
  const reason = details.map((d) => d?.['reason']).find((r) => typeof r === 'string');
  return {
    status: typeof o['status'] === 'string' ? o['status'] : '',
    message: typeof o['message'] === 'string' ? o['message'] : '',
    reason: typeof reason === 'string' ? reason : '',
  };
}

/** 429, 408 and 5xx heal by themselves; other 4xx answers do not. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 408 || status >= 500;
}

/**
 * A failure without an HTTP answer (refused connection, DNS, reset, our abort) as a
 * RetryableError naming `what`; AbortedError passes through.
 */
export function networkFailure(what: string, err: unknown): Error {
  if (err instanceof AbortedError || err instanceof RetryableError) return err;
  const f = httpFailure(err);
  if (f.name === 'AbortError' || /aborted|timeout/i.test(f.message)) return new RetryableError(`${what} timed out`, 'timeout');
  return new RetryableError(`${what} failed: ${withNetworkCause(f.code ?? 'network error', err)}`, systemErrorCode(f.code) ?? 'network');
}

/**
 * Text from outside (a library's message, an executable's output) fit for a log line: the first
 * line, cut short, with anything shaped like a token or key replaced.
 */
export function sanitize(text: string, max = 240): string {
  const line = (text.split('\n').find((l) => l.trim()) ?? '').trim();
  const cleaned = line
    .replace(/eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*/g, '[token]')
    .replace(/ya29\.[A-Za-z0-9._-]+/g, '[token]')
    .replace(/1\/\/[A-Za-z0-9._-]{20,}/g, '[token]')
    .replace(/[A-Za-z0-9+/_-]{48,}={0,2}/g, '[redacted]');
  return cleaned.length > max ? `${cleaned.slice(0, max - 3)}...` : cleaned;
}

function parseMaybeJson(body: unknown): unknown {
  if (typeof body !== 'string') return body;
  try {
    return JSON.parse(body);
  } catch {
    return null;
  }
}

/** The `email` claim of an ID token's payload (not verified: it names a principal in messages, nothing more). */
export function idTokenEmail(idToken: unknown): string {
  if (typeof idToken !== 'string') return '';
  const payload = idToken.split('.')[1];
  if (!payload) return '';
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
    return typeof claims['email'] === 'string' ? claims['email'] : '';
  } catch {
    return '';
  }
}
