/**
 * The refresh-token grant at `POST /token` (RFC 6749 section 6), as Google's token endpoint
 * answers it for a person's credentials (gcloud's `authorized_user` file): the OAuth client must
 * be known and its secret right (else 401 invalid_client), the refresh token valid (else 400
 * invalid_grant "Token has been expired or revoked."). The token carries the scopes the person
 * consented to; an ID token comes along when they include `openid`.
 */
import { jsonReply, oauthError, type Reply } from './http-util.js';
import { issueToken, signJwt, type FakeIdentity } from './identity.js';
import { idTokenKey, type FakeState } from './state.js';

export function isRefreshGrant(params: URLSearchParams): boolean {
  return params.get('grant_type') === 'refresh_token';
}

export function handleRefreshGrant(identity: FakeIdentity, state: FakeState, params: URLSearchParams): { reply: Reply; account?: string } {
  const clientId = params.get('client_id') ?? '';
  const user = identity.users.get(params.get('refresh_token') ?? '');
  const knownClient = [...identity.users.values()].find((u) => u.clientId === clientId);
  if (!knownClient || knownClient.clientSecret !== params.get('client_secret')) {
    return { reply: oauthError(401, 'invalid_client', 'The OAuth client was not found.') };
  }
  if (!user || user.clientId !== clientId || user.revoked) return { reply: oauthError(400, 'invalid_grant', 'Token has been expired or revoked.') };
  if (user.reauth) return { reply: oauthError(400, 'invalid_grant', 'reauth related error (invalid_rapt)'), account: user.email };
  const lifetime = state.tokenLifetimeSeconds;
  const accessToken = issueToken(state, user.email, user.scopes, lifetime);
  const now = Math.floor(state.now() / 1000);
  const body: Record<string, unknown> = { access_token: accessToken, expires_in: lifetime - 1, scope: user.scopes.join(' '), token_type: 'Bearer' };
  if (user.scopes.includes('openid')) {
    body['id_token'] = signJwt(idTokenKey(state), {
      iss: 'https://accounts.google.com',
      azp: clientId,
      aud: clientId,
      sub: '1'.padEnd(21, '7'),
      email: user.email,
      email_verified: true,
      iat: now,
      exp: now + 3600,
    });
  }
  return { reply: jsonReply(200, body, { 'cache-control': 'no-cache, no-store, max-age=0, must-revalidate', pragma: 'no-cache' }), account: user.email };
}
