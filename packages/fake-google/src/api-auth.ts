/**
 * The checks every Data API call passes before its method runs: a valid
 * bearer token with an Analytics scope, a numeric property id, and read access
 * of the token's account to that property. Answers as Google's front end does.
 */
import { apiError, type Reply } from './http-util.js';
import type { Account, FakeState, IssuedToken, Property } from './state.js';

const ANALYTICS_SCOPES = ['https://www.googleapis.com/auth/analytics.readonly', 'https://www.googleapis.com/auth/analytics'];
const REALM = 'Bearer realm="https://accounts.google.com/"';
const CREDENTIAL_HINT =
  'Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.';
const PROPERTY_ID_HINT = 'To learn more about Property ID, see https://developers.google.com/analytics/devguides/reporting/data/v1/property-id.';

function errorInfo(reason: string, method: string): unknown {
  return {
    '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
    reason,
    domain: 'googleapis.com',
    metadata: { method: `google.analytics.data.v1beta.BetaAnalyticsData.${method}`, service: 'analyticsdata.googleapis.com' },
  };
}

export type Checked<T> = { ok: true; value: T } | { ok: false; reply: Reply };

/** `method` is the gRPC method name Google reports in error details: RunReport, GetMetadata. */
export function authenticate(state: FakeState, authorization: string | undefined, method: string): Checked<{ token: IssuedToken; account: Account }> {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  if (!authorization) {
    return {
      ok: false,
      reply: apiError(401, 'UNAUTHENTICATED', `Request is missing required authentication credential. ${CREDENTIAL_HINT}`, {
        details: [errorInfo('CREDENTIALS_MISSING', method)],
        headers: { 'www-authenticate': REALM },
      }),
    };
  }
  const token = bearer ? state.tokens.get(bearer[1] ?? '') : undefined;
  const account = token ? state.accounts.get(token.account) : undefined;
  if (!token || !account || state.now() >= token.expiresAt) {
    return {
      ok: false,
      reply: apiError(401, 'UNAUTHENTICATED', `Request had invalid authentication credentials. ${CREDENTIAL_HINT}`, {
        headers: { 'www-authenticate': `${REALM}, error="invalid_token"` },
      }),
    };
  }
  if (!token.scopes.some((s) => ANALYTICS_SCOPES.includes(s))) {
    return {
      ok: false,
      reply: apiError(403, 'PERMISSION_DENIED', 'Request had insufficient authentication scopes.', {
        details: [errorInfo('ACCESS_TOKEN_SCOPE_INSUFFICIENT', method)],
        headers: { 'www-authenticate': `${REALM}, error="insufficient_scope", scope="${ANALYTICS_SCOPES.join(' ')}"` },
      }),
    };
  }
  return { ok: true, value: { token, account } };
}

/** A numeric id of a property the account was granted; Google does not say whether an id exists. */
export function authorizeProperty(state: FakeState, account: Account, propertyId: string): Checked<Property> {
  if (!/^\d+$/.test(propertyId)) {
    return { ok: false, reply: apiError(400, 'INVALID_ARGUMENT', `Invalid property ID: ${propertyId}. A numeric Property ID is required. ${PROPERTY_ID_HINT}`) };
  }
  const property = state.properties.get(propertyId);
  if (!property || !state.grants.get(propertyId)?.has(account.clientEmail)) {
    return { ok: false, reply: apiError(403, 'PERMISSION_DENIED', `User does not have sufficient permissions for this property. ${PROPERTY_ID_HINT}`) };
  }
  return { ok: true, value: property };
}
