/**
 * A person's credentials (`authorized_user`, gcloud's Application Default Credentials file):
 * their refresh token exchanged at the token endpoint through google-auth-library's
 * UserRefreshClient, bent thus:
 *
 * - `refreshTokenNoCache()` is called directly: one refresh-token grant, nothing cached.
 * - The endpoint is the file's `token_uri` (Google's Python library reads it too), else Google's:
 *   set through the client's `endpoints.oauth2TokenUrl`. google.tokenUrl does not apply (it is the
 *   key files' setting).
 * - The token's scopes are the ones the person consented to at sign-in; a refresh cannot widen
 *   them. gcloud's default sign-in grants cloud-platform, enough to impersonate a service account,
 *   not to read Analytics: hence the advice to impersonate.
 * - Who the person is comes from the ID token Google returns with the refresh when the sign-in
 *   included `openid` (gcloud's does): its `email` claim names them in messages and metrics.
 */
import { UserRefreshClient } from 'google-auth-library';
import { PermanentError, RetryableError } from '../errors.js';
import { redactUrl } from '../log.js';
import { authTransport, httpFailure, idTokenEmail, isRetryableStatus, networkFailure, oauthErrorOf } from './authHttp.js';
import type { AuthorizedUserFile } from './credentialsFile.js';
import type { MintedToken } from './mintedToken.js';
import { parseTokenResponse } from './tokenResponse.js';

const SIGN_IN_AGAIN = 'gcloud auth application-default login';

/**
 * One refresh-token grant.
 *
 * @throws PermanentError (revoked or expired sign-in, deleted OAuth client, reauthentication
 *   required), RetryableError (5xx, 429, network), AbortedError
 */
export async function userToken(u: AuthorizedUserFile, signal: AbortSignal): Promise<MintedToken> {
  const issuedAt = Date.now();
  const { transporter, lastBody } = authTransport(signal);
  const client = new UserRefreshClient({
    clientId: u.clientId,
    clientSecret: u.clientSecret,
    refreshToken: u.refreshToken,
    transporter,
    endpoints: { oauth2TokenUrl: u.tokenUri },
  });
  try {
    await (client as unknown as { refreshTokenNoCache(): Promise<unknown> }).refreshTokenNoCache();
  } catch (err) {
    throw classify(err, u);
  }
  const body = lastBody();
  const parsed = parseTokenResponse(body, redactUrl(u.tokenUri));
  const email = idTokenEmail((body as Record<string, unknown>)['id_token']);
  return {
    accessToken: parsed.accessToken,
    issuedAt,
    expiresAt: issuedAt + parsed.lifetimeS * 1000,
    ...(email ? { account: email } : {}),
    ...(parsed.note ? { note: parsed.note } : {}),
  };
}

function classify(err: unknown, u: AuthorizedUserFile): Error {
  if (err instanceof PermanentError || err instanceof RetryableError) return err;
  const f = httpFailure(err);
  const at = redactUrl(u.tokenUri);
  const whose = `the person's credentials in ${u.file}${u.account ? ` (${u.account})` : ''}`;
  if (f.status === undefined) return networkFailure(`refreshing ${whose} at ${at}`, err);
  if (isRetryableStatus(f.status)) return new RetryableError(`token endpoint ${at} answered HTTP ${f.status} refreshing ${whose}`, `http_${f.status}`);
  const oauth = oauthErrorOf(f.body);
  const said = oauth ? `${oauth.error}${oauth.description ? `: ${oauth.description}` : ''}`.replace(/\.+$/, '') : `HTTP ${f.status}`;
  const code = oauth?.error ?? `http_${f.status}`;
  if (oauth?.error === 'invalid_rapt' || /reauth/i.test(`${oauth?.error} ${oauth?.description}`)) {
    return new PermanentError(
      `${at} refused ${whose} (${said}): Google wants that person to sign in again (a reauthentication policy); run ${SIGN_IN_AGAIN}, and on a server use a service account instead`,
      code,
    );
  }
  if (oauth?.error === 'invalid_client' || oauth?.error === 'unauthorized_client') {
    return new PermanentError(`${at} refused the OAuth client of ${whose} (${said}): sign in again with ${SIGN_IN_AGAIN}`, code);
  }
  return new PermanentError(`${at} refused ${whose} (${said}): the sign-in was revoked or expired; run ${SIGN_IN_AGAIN} again`, code);
}
