/**
 * Reading a token endpoint's successful answer leniently. Google answers
 * `{"access_token": "…", "expires_in": 3599, "token_type": "Bearer"}`; proxies and private STS
 * endpoints in front of it answer a little differently (`"expires_in": "3600"` as a string, no
 * `expires_in` at all, 0, or a lifetime of years). Whatever they say, the token we get is a Google
 * access token, so a lifetime that cannot be believed is replaced by Google's documented one hour,
 * and a very long one is capped, so the renewal timer always stays in range. The odd answer is
 * reported once (as a note) rather than failing every exchange.
 */
import { PermanentError, RetryableError } from '../errors.js';

/** Google's access tokens last an hour (https://developers.google.com/identity/protocols/oauth2/service-account). */
const DEFAULT_LIFETIME_S = 3600;
/**
 * The longest lifetime believed: 12 hours, the most Google grants (service-account token
 * lifetime extension, `constraints/iam.allowServiceAccountCredentialLifetimeExtension`).
 */
const MAX_LIFETIME_S = 12 * 3600;

export interface ParsedTokenResponse {
  accessToken: string;
  /** seconds the token is taken to live, after defaults and the cap */
  lifetimeS: number;
  /** set when expires_in was missing or unbelievable: one line for a warning, never the token */
  note?: { code: 'expires_in_missing' | 'expires_in_invalid' | 'expires_in_capped'; message: string };
}

/**
 * @param data      the response body as gaxios parsed it (an object for JSON, else a string)
 * @param endpoint  the token URL, for messages
 * @throws RetryableError `bad_response` for a body without an access token
 * @throws PermanentError `id_token_only` when the endpoint answered an ID token instead
 */
export function parseTokenResponse(data: unknown, endpoint: string): ParsedTokenResponse {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new RetryableError(`token endpoint ${endpoint} answered a body that is not a JSON object`, 'bad_response');
  }
  const body = data as Record<string, unknown>;
  const accessToken = body['access_token'];
  if (typeof accessToken !== 'string' || !accessToken) {
    if (typeof body['id_token'] === 'string') {
      // Google does this for an assertion whose scope it does not know
      throw new PermanentError(`token endpoint ${endpoint} answered an ID token and no access token: it did not accept the requested scopes`, 'id_token_only');
    }
    throw new RetryableError(`token endpoint ${endpoint} answered without an access_token`, 'bad_response');
  }
  const raw = body['expires_in'];
  const assumed = `assuming ${DEFAULT_LIFETIME_S} s, Google's token lifetime`;
  if (raw === undefined || raw === null || raw === '') {
    return {
      accessToken,
      lifetimeS: DEFAULT_LIFETIME_S,
      note: { code: 'expires_in_missing', message: `token endpoint ${endpoint} answered without expires_in; ${assumed}` },
    };
  }
  const seconds = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*\+?\d+(\.\d+)?\s*$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isFinite(seconds) || seconds <= 0) {
    return {
      accessToken,
      lifetimeS: DEFAULT_LIFETIME_S,
      note: {
        code: 'expires_in_invalid',
        message: `token endpoint ${endpoint} answered expires_in ${shown(raw)}, not a positive number of seconds; ${assumed}`,
      },
    };
  }
  if (seconds > MAX_LIFETIME_S) {
    return {
      accessToken,
      lifetimeS: MAX_LIFETIME_S,
      note: {
        code: 'expires_in_capped',
        message: `token endpoint ${endpoint} answered expires_in ${shown(raw)}; renewing as if it were ${MAX_LIFETIME_S / 3600} h, the longest Google grants`,
      },
    };
  }
  return { accessToken, lifetimeS: seconds };
}

function shown(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

/**
 * IAM Credentials' generateAccessToken answer, `{"accessToken": "…", "expireTime": "2024-01-01T00:00:00Z"}`
 * (RFC 3339), read as leniently as a token endpoint's: an expireTime that cannot be read, or lies
 * in the past, is replaced by Google's one hour with a note; a very long one is capped.
 *
 * @param issuedAt ms since epoch, when the request was sent (the lifetime counts from it)
 * @throws RetryableError `bad_response` for a body without an access token
 */
export function parseGeneratedAccessToken(data: unknown, endpoint: string, issuedAt: number): ParsedTokenResponse {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new RetryableError(`IAM Credentials at ${endpoint} answered a body that is not a JSON object`, 'bad_response');
  }
  const body = data as Record<string, unknown>;
  const accessToken = body['accessToken'];
  if (typeof accessToken !== 'string' || !accessToken)
    throw new RetryableError(`IAM Credentials at ${endpoint} answered without an accessToken`, 'bad_response');
  const expires = typeof body['expireTime'] === 'string' ? Date.parse(body['expireTime']) : NaN;
  const seconds = (expires - issuedAt) / 1000;
  if (!Number.isFinite(seconds) || seconds <= 0) {
    return {
      accessToken,
      lifetimeS: DEFAULT_LIFETIME_S,
      note: {
        code: 'expires_in_invalid',
        message: `IAM Credentials at ${endpoint} answered expireTime ${shown(body['expireTime'])}, not a time in the future; assuming ${DEFAULT_LIFETIME_S} s, Google's token lifetime`,
      },
    };
  }
  if (seconds > MAX_LIFETIME_S) {
    return {
      accessToken,
      lifetimeS: MAX_LIFETIME_S,
      note: {
        code: 'expires_in_capped',
        message: `IAM Credentials at ${endpoint} answered expireTime ${shown(body['expireTime'])}; renewing as if the token lasted ${MAX_LIFETIME_S / 3600} h, the longest Google grants`,
      },
    };
  }
  return { accessToken, lifetimeS: seconds };
}
