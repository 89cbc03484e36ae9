/**
 * `POST /token`, as https://oauth2.googleapis.com/token answers the OAuth 2.0
 * JWT bearer grant (RFC 7523) for service accounts: same checks, same order,
 * same error bodies.
 */
import { createSign, randomBytes } from 'node:crypto';
import { numericClaim, parseJwt, verifyRs256 } from './keys.js';
import { jsonReply, oauthError, type Reply } from './http-util.js';
import { idTokenKey, type Account, type FakeState } from './state.js';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/** Google's own token URLs, past and present; any of them is a valid `aud`. */
const GOOGLE_AUDIENCES = ['https://oauth2.googleapis.com/token', 'https://www.googleapis.com/oauth2/v4/token', 'https://accounts.google.com/o/oauth2/token'];

/** Scopes Google grants access tokens for (a subset: the ones a collector might plausibly ask). */
const KNOWN_SCOPES = new Set([
  'https://www.googleapis.com/auth/analytics',
  'https://www.googleapis.com/auth/analytics.readonly',
  'https://www.googleapis.com/auth/analytics.edit',
  'https://www.googleapis.com/auth/analytics.manage.users',
  'https://www.googleapis.com/auth/analytics.manage.users.readonly',
  'https://www.googleapis.com/auth/webmasters',
  'https://www.googleapis.com/auth/webmasters.readonly',
  'https://www.googleapis.com/auth/cloud-platform',
  'https://www.googleapis.com/auth/cloud-platform.read-only',
  'https://www.googleapis.com/auth/userinfo.email',
  'https://www.googleapis.com/auth/userinfo.profile',
  'openid',
  'email',
  'profile',
]);

const INVALID_SIGNATURE = 'Invalid JWT Signature.';
const BAD_TIMEFRAME =
  'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.';
/** How far in the future an `iat` may be, for clock skew. */
const SKEW_SECONDS = 300;

export interface TokenOutcome {
  reply: Reply;
  account?: string;
}

function readParams(body: string, contentType: string): URLSearchParams {
  if (contentType.includes('application/json')) {
    try {
      const obj: unknown = JSON.parse(body);
      const params = new URLSearchParams();
      if (obj && typeof obj === 'object') {
        for (const [k, v] of Object.entries(obj)) if (typeof v === 'string') params.set(k, v);
      }
      return params;
    } catch {
      return new URLSearchParams();
    }
  }
  return new URLSearchParams(body);
}

function signIdToken(state: FakeState, account: Account, audience: string, nowSec: number): string {
  const key = idTokenKey(state);
  const enc = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  const header = enc({ alg: 'RS256', kid: key.kid, typ: 'JWT' });
  const claims = enc({
    aud: audience,
    azp: account.clientEmail,
    email: account.clientEmail,
    email_verified: true,
    exp: nowSec + 3600,
    iat: nowSec,
    iss: 'https://accounts.google.com',
    sub: account.clientId,
  });
  const signer = createSign('RSA-SHA256');
  signer.update(`${header}.${claims}`);
  return `${header}.${claims}.${signer.sign(key.privateKey).toString('base64url')}`;
}

/** Exchanges a signed JWT assertion for an access token. */
export function handleToken(state: FakeState, body: string, contentType: string): TokenOutcome {
  const params = readParams(body, contentType);
  const grantType = params.get('grant_type') ?? '';
  if (grantType !== JWT_BEARER) return { reply: oauthError(400, 'unsupported_grant_type', `Invalid grant_type: ${grantType}`) };

  const jwt = parseJwt(params.get('assertion') ?? '');
  if (!jwt) return { reply: oauthError(400, 'invalid_request', 'Bad Request') };
  // Google gives no dedicated message for a wrong algorithm: it is a bad signature.
  if (jwt.header.alg !== 'RS256') return { reply: oauthError(400, 'invalid_grant', INVALID_SIGNATURE) };

  const iss = jwt.claims.iss;
  const account = typeof iss === 'string' ? state.accounts.get(iss) : undefined;
  if (!account) return { reply: oauthError(400, 'invalid_grant', 'Invalid grant: account not found') };

  const kid = jwt.header.kid;
  const candidates = account.keys.filter((k) => !k.revoked && (kid === undefined || k.id === kid));
  if (!candidates.some((k) => verifyRs256(jwt, k.publicKey))) {
    return { reply: oauthError(400, 'invalid_grant', INVALID_SIGNATURE), account: account.clientEmail };
  }
  const fail = (status: number, error: string, description: string): TokenOutcome => ({
    reply: oauthError(status, error, description),
    account: account.clientEmail,
  });

  const iat = numericClaim(jwt.claims.iat);
  const exp = numericClaim(jwt.claims.exp);
  if (iat === undefined) return fail(400, 'invalid_grant', 'Invalid JWT: iat (issued at) is not set.');
  if (exp === undefined) return fail(400, 'invalid_grant', 'Invalid JWT: exp (expiration time) is not set.');
  const nowMs = state.now();
  const nowSec = Math.floor(nowMs / 1000);
  if (exp <= iat || exp - iat > 3600 || exp <= nowSec || iat > nowSec + SKEW_SECONDS) {
    return fail(400, 'invalid_grant', BAD_TIMEFRAME);
  }

  const scope = typeof jwt.claims.scope === 'string' ? jwt.claims.scope.trim() : '';
  const targetAudience = jwt.claims.target_audience;
  if (!scope && typeof targetAudience !== 'string') {
    return fail(400, 'invalid_scope', 'Invalid OAuth scope or ID token audience provided.');
  }

  const aud = jwt.claims.aud;
  if (typeof aud !== 'string' || !(GOOGLE_AUDIENCES.includes(aud) || state.audiences.includes(aud))) {
    return fail(400, 'invalid_grant', 'Invalid JWT: Failed audience check.');
  }
  const sub = jwt.claims.sub;
  if (sub !== undefined && sub !== account.clientEmail) {
    // Domain-wide delegation is never configured in the fake.
    return fail(
      401,
      'unauthorized_client',
      'Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.',
    );
  }

  const scopes = scope.split(/\s+/).filter(Boolean);
  if (!scope || !scopes.every((s) => KNOWN_SCOPES.has(s))) {
    // Google answers an unrecognized scope (or a target_audience) with an ID token and no access token.
    const audience = typeof targetAudience === 'string' && !scope ? targetAudience : scope;
    return { reply: jsonReply(200, { id_token: signIdToken(state, account, audience, nowSec) }), account: account.clientEmail };
  }

  const accessToken = `ya29.c.${randomBytes(96).toString('base64url')}`;
  state.tokens.set(accessToken, {
    account: account.clientEmail,
    scopes,
    issuedAt: nowMs,
    expiresAt: nowMs + state.tokenLifetimeSeconds * 1000,
  });
  const answer: Record<string, unknown> = { access_token: accessToken, expires_in: state.tokenLifetimeSeconds - 1, token_type: 'Bearer' };
  return {
    reply: jsonReply(200, state.tokenResponseRewrite ? state.tokenResponseRewrite(answer) : answer, {
      'cache-control': 'no-cache, no-store, max-age=0, must-revalidate',
      pragma: 'no-cache',
    }),
    account: account.clientEmail,
  };
}
