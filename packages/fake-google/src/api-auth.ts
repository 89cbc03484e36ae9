/**
 * The checks every Data API (and Admin API) call passes before its method runs:
 * a valid bearer token (one the token endpoint issued, or a JWT the service
 * account signed itself: self-signed-jwt.ts) with an Analytics scope, a numeric
 * property id, and read access of the token's account to that property (granted
 * on the property or on its whole GA account). Answers as Google's front end does.
 */
import { apiError, type Reply } from './http-util.js';
import { selfSignedToken } from './self-signed-jwt.js';
import type { Account, FakeState, IssuedToken, Property } from './state.js';

const ANALYTICS_SCOPES = ['https://www.googleapis.com/auth/analytics.readonly', 'https://www.googleapis.com/auth/analytics'];

/** The API a request is for, as Google names it in error details, and the scopes it takes. */
export interface ApiInfo {
  /** gRPC service prefix of the method, e.g. google.analytics.data.v1beta.BetaAnalyticsData */
  rpc: string;
  service: string;
  scopes: string[];
}

const DATA_API: ApiInfo = { rpc: 'google.analytics.data.v1beta.BetaAnalyticsData', service: 'analyticsdata.googleapis.com', scopes: ANALYTICS_SCOPES };

/** The Admin API v1beta: accountSummaries.list takes analytics.readonly or analytics.edit. */
export const ADMIN_API: ApiInfo = {
  rpc: 'google.analytics.admin.v1beta.AnalyticsAdminService',
  service: 'analyticsadmin.googleapis.com',
  scopes: ['https://www.googleapis.com/auth/analytics.readonly', 'https://www.googleapis.com/auth/analytics.edit'],
};
const REALM = 'Bearer realm="https://accounts.google.com/"';
const CREDENTIAL_HINT =
  'Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.';
const PROPERTY_ID_HINT = 'To learn more about Property ID, see https://developers.google.com/analytics/devguides/reporting/data/v1/property-id.';

function errorInfo(reason: string, method: string, api: ApiInfo): unknown {
  return {
    '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
    reason,
    domain: 'googleapis.com',
    metadata: { method: `${api.rpc}.${method}`, service: api.service },
  };
}

export type Checked<T> = { ok: true; value: T } | { ok: false; reply: Reply };

/** `method` is the gRPC method name Google reports in error details: RunReport, GetMetadata. */
export function authenticate(
  state: FakeState,
  authorization: string | undefined,
  method: string,
  api: ApiInfo = DATA_API,
): Checked<{ token: IssuedToken; account: Account }> {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  if (!authorization) {
    return {
      ok: false,
      reply: apiError(401, 'UNAUTHENTICATED', `Request is missing required authentication credential. ${CREDENTIAL_HINT}`, {
        details: [errorInfo('CREDENTIALS_MISSING', method, api)],
        headers: { 'www-authenticate': REALM },
      }),
    };
  }
  // an access token the token endpoint issued, or a JWT the service account signed itself
  const token = bearer ? (state.tokens.get(bearer[1] ?? '') ?? selfSignedToken(state, bearer[1] ?? '', api)) : undefined;
  const account = token ? state.accounts.get(token.account) : undefined;
  if (!token || !account || state.now() >= token.expiresAt) {
    return {
      ok: false,
      reply: apiError(401, 'UNAUTHENTICATED', `Request had invalid authentication credentials. ${CREDENTIAL_HINT}`, {
        headers: { 'www-authenticate': `${REALM}, error="invalid_token"` },
      }),
    };
  }
  if (!token.scopes.some((s) => api.scopes.includes(s))) {
    return {
      ok: false,
      reply: apiError(403, 'PERMISSION_DENIED', 'Request had insufficient authentication scopes.', {
        details: [errorInfo('ACCESS_TOKEN_SCOPE_INSUFFICIENT', method, api)],
        headers: { 'www-authenticate': `${REALM}, error="insufficient_scope", scope="${api.scopes.join(' ')}"` },
      }),
    };
  }
  return { ok: true, value: { token, account } };
}

/** A numeric id of a property the account was granted; Google does not say whether an id exists. */
export function authorizeProperty(state: FakeState, account: Account, propertyId: string): Checked<Property> {
  if (!/^\d+$/.test(propertyId)) {
    return {
      ok: false,
      reply: apiError(400, 'INVALID_ARGUMENT', `Invalid property ID: ${propertyId}. A numeric Property ID is required. ${PROPERTY_ID_HINT}`),
    };
  }
  const property = state.properties.get(propertyId);
  if (!property || !canRead(state, account.clientEmail, property)) {
    return { ok: false, reply: apiError(403, 'PERMISSION_DENIED', `User does not have sufficient permissions for this property. ${PROPERTY_ID_HINT}`) };
  }
  return { ok: true, value: property };
}

/** Read access to a property: granted on the property itself or on its GA account. */
export function canRead(state: FakeState, clientEmail: string, property: Property): boolean {
  return state.grants.get(property.id)?.has(clientEmail) === true || state.accountGrants.get(property.account)?.has(clientEmail) === true;
}
