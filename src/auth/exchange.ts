/**
 * The one file that knows how google-auth-library exchanges a service account's signed JWT for an
 * access token, and how to bend it:
 *
 * - Its JWT client signs the assertion (RS256, `iss` = client_email, `aud` and the POST target
 *   both hard-coded to https://oauth2.googleapis.com/token) through gtoken, sending the request
 *   with the client's `transporter` (a Gaxios instance). A request interceptor on our own
 *   transporter is therefore the supported way to send the exchange elsewhere (`google.tokenUrl`,
 *   a private endpoint, or the tests' fake). The `aud` claim keeps Google's documented value.
 * - It only refreshes lazily (when a request finds the token within 5 minutes of expiry) and caches
 *   the token inside gtoken. We want neither: every call here builds a fresh client, so every call
 *   is exactly one exchange, and the token manager decides when to call.
 * - gaxios retries the POST by itself (gtoken asks it to); we switch that off, because retries,
 *   backoff and their metrics belong to the token manager.
 * - On failure gtoken rewrites the error message to "<error>: <error_description>" from Google's
 *   body; the error object still carries the request config (with the assertion), so it is turned
 *   into our own error here and never logged as is.
 * - A `timeout` set in a request interceptor is never applied (gaxios 7 builds its timeout signal
 *   before the interceptors run), and gaxios's own timeout signal can be lost to garbage
 *   collection (net/deadline.ts). So the exchange runs under withDeadline, whose signal the
 *   interceptor puts on the request: gaxios passes the config to its fetch (node-fetch 3), which
 *   listens to that signal for the connection and the body alike.
 * - gtoken adds `expires_in` to the issue time as a number (a `"3600"` string is concatenated
 *   instead: an expiry past the largest Date). The body is taken from a response interceptor and
 *   read leniently by tokenResponse.ts instead.
 */
import { JWT, gaxios } from 'google-auth-library';
import { abortSafeFetch } from '../net/abortSafeFetch.js';
import { GOOGLE_TOKEN_URL } from '../config/googleUrls.js';
import { PermanentError, RetryableError, systemErrorCode } from '../errors.js';
import { withNetworkCause } from '../net/networkCause.js';
import { redactUrl } from '../log.js';
import { withDeadline } from '../net/deadline.js';
import type { ServiceAccountKey } from './serviceAccountKey.js';
import { parseTokenResponse, type ParsedTokenResponse } from './tokenResponse.js';
import { API_SCOPES } from './scopes.js';

/** The longest one exchange may take: Google answers in well under a second. */
export const DEFAULT_EXCHANGE_TIMEOUT_MS = 30_000;

export interface ExchangedToken {
  accessToken: string;
  /** ms since epoch: issuedAt plus the lifetime the endpoint answered (see tokenResponse.ts) */
  expiresAt: number;
  /** ms since epoch, when the exchange was sent */
  issuedAt: number;
  /** the endpoint's expires_in was missing or unbelievable and was replaced */
  note?: ParsedTokenResponse['note'];
}

export interface ExchangeOptions {
  tokenUrl: string;
  /** the token's scopes; default API_SCOPES (scopes.ts) */
  scopes?: readonly string[];
  /** deadline of the whole exchange, connection to last byte; default DEFAULT_EXCHANGE_TIMEOUT_MS */
  timeoutMs?: number;
  /** aborts the exchange (the token source stopping); it then rejects with AbortedError */
  signal?: AbortSignal;
}

/**
 * The exchange deadline for a configured API request timeout (`fetch.timeoutSeconds`): the same,
 * but never more than 30 s, since a token endpoint has no large body to send.
 */
export function exchangeDeadlineMs(requestTimeoutSeconds: number): number {
  return requestTimeoutSeconds > 0 ? Math.min(DEFAULT_EXCHANGE_TIMEOUT_MS, requestTimeoutSeconds * 1000) : DEFAULT_EXCHANGE_TIMEOUT_MS;
}

/**
 * Exchanges a freshly signed assertion for an access token, within a deadline held by our own
 * timer (net/deadline.ts): a token endpoint that accepts the connection and never answers, or
 * stalls mid-body, ends as DeadlineExceededError (retryable, code `timeout`).
 *
 * @throws RetryableError (5xx, 429, network, timeout, a body without a token), PermanentError
 *   (the endpoint refused the key or account), AbortedError (opts.signal aborted)
 */
export async function exchangeToken(key: ServiceAccountKey, opts: ExchangeOptions): Promise<ExchangedToken> {
  const issuedAt = Date.now();
  const endpoint = redactUrl(opts.tokenUrl);
  const what = `token exchange for ${who(key)} at ${endpoint}`;
  const data = await withDeadline(what, opts.timeoutMs ?? DEFAULT_EXCHANGE_TIMEOUT_MS, opts.signal, (signal) =>
    send(key, opts.tokenUrl, opts.scopes ?? API_SCOPES, signal),
  );
  const parsed = parseTokenResponse(data, endpoint);
  return { accessToken: parsed.accessToken, expiresAt: issuedAt + parsed.lifetimeS * 1000, issuedAt, ...(parsed.note ? { note: parsed.note } : {}) };
}

/** One exchange through google-auth-library; resolves with the response body as gaxios parsed it. */
async function send(key: ServiceAccountKey, tokenUrl: string, scopes: readonly string[], signal: AbortSignal): Promise<unknown> {
  // abortSafeFetch: node-fetch handed an already aborted signal crashes the process (net/abortSafeFetch.ts)
  const transporter = new gaxios.Gaxios({ fetchImplementation: abortSafeFetch });
  let body: unknown;
  transporter.interceptors.request.add({
    resolved: async (config) => {
      if (String(config.url) === GOOGLE_TOKEN_URL) config.url = new URL(tokenUrl);
      config.retry = false;
      delete config.retryConfig;
      // Request interceptors run after gaxios has turned `timeout` into a signal, so a timeout set
      // here would never apply; the signal does: gaxios hands this config to fetch as it is.
      config.signal = signal;
      return config;
    },
  });
  transporter.interceptors.response.add({
    resolved: async (response) => {
      // gtoken keeps only the fields it understands, and reads expires_in as a number; we read
      // the body ourselves (tokenResponse.ts)
      body = response.data;
      return response;
    },
  });
  const client = new JWT({
    email: key.clientEmail,
    key: key.privateKey,
    ...(key.privateKeyId ? { keyId: key.privateKeyId } : {}),
    scopes: [...scopes],
    transporter,
  });
  try {
    await client.authorize();
  } catch (err) {
    throw classifyTokenError(err, key);
  }
  return body;
}

function who(key: ServiceAccountKey): string {
  return `service account ${key.clientEmail} (key id ${key.privateKeyId || 'unknown'})`;
}

/** The library's error is not kept as `cause`: it carries the request, signed JWT assertion included. */
function classifyTokenError(err: unknown, key: ServiceAccountKey): Error {
  const e = err as { response?: { status?: number; data?: unknown }; code?: string; name?: string; message?: string };
  const status = e.response?.status;
  const body = e.response?.data;
  const oauthError = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const error = typeof oauthError['error'] === 'string' ? oauthError['error'] : undefined;
  const description = typeof oauthError['error_description'] === 'string' ? oauthError['error_description'] : '';
  if (status !== undefined && status >= 400 && status < 500 && status !== 429 && status !== 408) {
    const what = (error ? `${error}${description ? `: ${description}` : ''}` : `HTTP ${status}`).replace(/\.+$/, '');
    return new PermanentError(`token exchange refused for ${who(key)}: ${what}. ${hintFor(error, description)}`, error ?? `http_${status}`);
  }
  if (status !== undefined) {
    return new RetryableError(`token endpoint answered HTTP ${status} for ${who(key)}`, `http_${status}`);
  }
  if (e.name === 'AbortError' || /abort|timeout/i.test(e.message ?? '')) {
    return new RetryableError(`token exchange for ${who(key)} timed out`, 'timeout');
  }
  return new RetryableError(`token exchange for ${who(key)} failed: ${withNetworkCause(e.code ?? 'network error', err)}`, systemErrorCode(e.code) ?? 'network');
}

function hintFor(error: string | undefined, description: string): string {
  if (/short-lived|reasonable timeframe|iat|exp/i.test(description)) {
    return "The JWT times were refused: check that this machine's clock is right (NTP).";
  }
  if (/signature/i.test(description)) {
    return 'The key was deleted or rotated in Google Cloud (IAM > Service accounts > Keys): create a new JSON key and install it.';
  }
  if (/account not found|invalid_client|disabled/i.test(`${error} ${description}`)) {
    return 'The service account was deleted or disabled: check it in Google Cloud IAM, or use another key.';
  }
  if (error === 'invalid_scope') return 'The scope was refused; the account may be restricted by an organisation policy.';
  return 'Check the key file and the token URL (google.tokenUrl).';
}
