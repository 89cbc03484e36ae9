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
 */
import { JWT, gaxios } from 'google-auth-library';
import { PermanentError, RetryableError } from '../errors.js';
import type { ServiceAccountKey } from './serviceAccountKey.js';

export const ANALYTICS_SCOPE = 'https://www.googleapis.com/auth/analytics.readonly';
const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';

export interface ExchangedToken {
  accessToken: string;
  /** ms since epoch */
  expiresAt: number;
  /** ms since epoch, when the exchange was sent */
  issuedAt: number;
}

export interface ExchangeOptions {
  tokenUrl: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Exchanges a freshly signed assertion for an access token. Throws RetryableError or PermanentError. */
export async function exchangeToken(key: ServiceAccountKey, opts: ExchangeOptions): Promise<ExchangedToken> {
  const transporter = new gaxios.Gaxios();
  transporter.interceptors.request.add({
    resolved: async (config) => {
      if (String(config.url) === GOOGLE_TOKEN_URL) config.url = new URL(opts.tokenUrl);
      config.retry = false;
      delete config.retryConfig;
      config.timeout = opts.timeoutMs ?? 30_000;
      if (opts.signal) config.signal = opts.signal;
      return config;
    },
  });
  const client = new JWT({
    email: key.clientEmail,
    key: key.privateKey,
    ...(key.privateKeyId ? { keyId: key.privateKeyId } : {}),
    scopes: [ANALYTICS_SCOPE],
    transporter,
  });
  const issuedAt = Date.now();
  let credentials;
  try {
    credentials = await client.authorize();
  } catch (err) {
    throw classifyTokenError(err, key);
  }
  if (!credentials.access_token || !credentials.expiry_date) {
    throw new RetryableError(`token endpoint ${opts.tokenUrl} answered without access_token or expires_in`, 'bad_response');
  }
  return { accessToken: credentials.access_token, expiresAt: credentials.expiry_date, issuedAt };
}

function classifyTokenError(err: unknown, key: ServiceAccountKey): Error {
  const e = err as { response?: { status?: number; data?: unknown }; code?: string; name?: string; message?: string };
  const status = e.response?.status;
  const body = e.response?.data;
  const oauthError = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const error = typeof oauthError['error'] === 'string' ? oauthError['error'] : undefined;
  const description = typeof oauthError['error_description'] === 'string' ? oauthError['error_description'] : '';
  const who = `service account ${key.clientEmail} (key id ${key.privateKeyId || 'unknown'})`;
  if (status !== undefined && status >= 400 && status < 500 && status !== 429 && status !== 408) {
    const what = (error ? `${error}${description ? `: ${description}` : ''}` : `HTTP ${status}`).replace(/\.+$/, '');
    return new PermanentError(`token exchange refused for ${who}: ${what}. ${hintFor(error, description)}`, error ?? `http_${status}`);
  }
  if (status !== undefined) {
    return new RetryableError(`token endpoint answered HTTP ${status} for ${who}`, `http_${status}`);
  }
  if (e.name === 'AbortError' || /abort|timeout/i.test(e.message ?? '')) {
    return new RetryableError(`token exchange for ${who} timed out`, 'timeout');
  }
  return new RetryableError(`token exchange for ${who} failed: ${e.code ?? 'network error'}`, e.code ?? 'network');
}

function hintFor(error: string | undefined, description: string): string {
  if (/short-lived|reasonable timeframe|iat|exp/i.test(description)) {
    return 'The JWT times were refused: check that this machine\'s clock is right (NTP).';
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
