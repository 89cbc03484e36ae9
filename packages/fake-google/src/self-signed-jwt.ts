/**
 * Service account authorization without OAuth: a JWT the service account signs itself, sent as the
 * bearer token of an API call with no token exchange
 * (https://developers.google.com/identity/protocols/oauth2/service-account#jwt-auth, AIP-4111).
 * Google's own client libraries do this: `google-auth-library`'s JWT client, with
 * `useJWTAccessWithScope` (which the generated GAPIC clients such as `@google-analytics/data` set),
 * signs `{iss, sub: client email, scope, iat, exp}` with the key's `kid` and never calls `token_uri`.
 * Without a `scope` claim the `aud` claim must name the API (`https://analyticsdata.googleapis.com/`).
 */
import { numericClaim, parseJwt, verifyRs256 } from './keys.js';
import type { FakeState, IssuedToken } from './state.js';

/** A self-signed JWT lives at most an hour, as an assertion does. */
const MAX_LIFETIME_SECONDS = 3600;
/** How far in the future an `iat` may be, for clock skew. */
const SKEW_SECONDS = 300;

/**
 * The token a self-signed JWT stands for (account, scopes, iat and exp in ms), or undefined when
 * `bearer` is not one the account's live keys signed, is expired or not yet valid, or names
 * neither a scope nor the API called (`api.service`, e.g. analyticsdata.googleapis.com) as its
 * audience; an audience-only JWT may call that API as if it held the API's scopes.
 */
export function selfSignedToken(state: FakeState, bearer: string, api: { service: string; scopes: string[] }): IssuedToken | undefined {
  const jwt = parseJwt(bearer);
  if (!jwt || jwt.header.alg !== 'RS256') return undefined;
  const iss = jwt.claims.iss;
  const account = typeof iss === 'string' ? state.accounts.get(iss) : undefined;
  if (!account || (jwt.claims.sub !== undefined && jwt.claims.sub !== iss)) return undefined;
  const kid = jwt.header.kid;
  if (!account.keys.some((k) => !k.revoked && (kid === undefined || k.id === kid) && verifyRs256(jwt, k.publicKey))) return undefined;
  const iat = numericClaim(jwt.claims.iat);
  const exp = numericClaim(jwt.claims.exp);
  const nowSec = state.now() / 1000;
  if (iat === undefined || exp === undefined || exp <= iat || exp - iat > MAX_LIFETIME_SECONDS || exp <= nowSec || iat > nowSec + SKEW_SECONDS)
    return undefined;
  const scopes = typeof jwt.claims.scope === 'string' ? jwt.claims.scope.split(/\s+/).filter(Boolean) : [];
  const aud = jwt.claims.aud;
  const forThisApi = typeof aud === 'string' && aud.replace(/\/+$/, '') === `https://${api.service}`;
  if (scopes.length === 0 && !forThisApi) return undefined;
  return { account: account.clientEmail, scopes: scopes.length ? scopes : api.scopes, issuedAt: iat * 1000, expiresAt: exp * 1000 };
}
