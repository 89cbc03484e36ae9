/**
 * Service-account impersonation: IAM Credentials `generateAccessToken` called with the base
 * credentials' token, through google-auth-library's `Impersonated` client, bent thus:
 *
 * - Its source client is an OAuth2Client holding the base token we minted (no expiry and no
 *   refresh token, so it never refreshes by itself) on our transport (authHttp.ts): Impersonated
 *   sends generateAccessToken through its source client's `request()`.
 * - `refreshToken()` is called directly: one call, which returns the token and its expireTime.
 * - `endpoint` is the IAM Credentials root: google.iamCredentialsRootUrl, or the one the
 *   credentials file's service_account_impersonation_url names.
 *
 * A refusal names both principals and the role that is missing
 * (https://cloud.google.com/iam/docs/service-account-impersonation).
 */
import { Impersonated, OAuth2Client } from 'google-auth-library';
import { PermanentError, RetryableError } from '../errors.js';
import { redactUrl } from '../log.js';
import { authTransport, googleErrorOf, httpFailure, isRetryableStatus, networkFailure } from './authHttp.js';
import type { MintedToken } from './mintedToken.js';
import { parseGeneratedAccessToken } from './tokenResponse.js';

export const TOKEN_CREATOR_ROLE = 'roles/iam.serviceAccountTokenCreator';
/** Google's lifetime of an impersonated token; longer needs an organisation policy. */
const LIFETIME_S = 3600;

export interface ImpersonateOptions {
  /** the base credentials' token (with the cloud-platform scope) */
  callerToken: string;
  /** the caller as a person reads it (an email, a pool) */
  caller: string;
  /** the caller as an IAM member (`serviceAccount:…`, `user:…`, `principalSet://…`), for the fix */
  member: string;
  /** the service account tokens are minted for */
  target: string;
  /** IAM Credentials root, e.g. https://iamcredentials.googleapis.com */
  endpoint: string;
  delegates?: string[];
  scopes: readonly string[];
  signal: AbortSignal;
}

/**
 * One generateAccessToken call.
 *
 * @throws PermanentError naming both principals and the role (403), or what else IAM Credentials
 *   said (API disabled, scope, unknown account); RetryableError (5xx, 429, network); AbortedError
 */
export async function impersonate(o: ImpersonateOptions): Promise<MintedToken> {
  const issuedAt = Date.now();
  const endpoint = o.endpoint.replace(/\/+$/, '');
  const { transporter } = authTransport(o.signal);
  const source = new OAuth2Client({ transporter });
  source.setCredentials({ access_token: o.callerToken });
  const client = new Impersonated({
    sourceClient: source,
    targetPrincipal: o.target,
    targetScopes: [...o.scopes],
    delegates: o.delegates ?? [],
    lifetime: LIFETIME_S,
    endpoint,
  });
  let res: { data?: unknown } | null | undefined;
  try {
    ({ res } = await (client as unknown as { refreshToken(): Promise<{ res?: { data?: unknown } | null }> }).refreshToken());
  } catch (err) {
    throw impersonationError(err, { caller: o.caller, member: o.member, target: o.target, endpoint });
  }
  const parsed = parseGeneratedAccessToken(res?.data, redactUrl(endpoint), issuedAt);
  return {
    accessToken: parsed.accessToken,
    issuedAt,
    expiresAt: issuedAt + parsed.lifetimeS * 1000,
    account: o.target,
    ...(parsed.note ? { note: parsed.note } : {}),
  };
}

/**
 * A failed generateAccessToken call as our error. Shared with the federated exchange, whose file
 * may name a service account to impersonate.
 */
export function impersonationError(err: unknown, who: { caller: string; member: string; target: string; endpoint: string; federated?: boolean }): Error {
  if (err instanceof PermanentError || err instanceof RetryableError) return err;
  const f = httpFailure(err);
  const at = redactUrl(who.endpoint);
  if (f.status === undefined) return networkFailure(`impersonation of ${who.target} at ${at}`, err);
  if (isRetryableStatus(f.status))
    return new RetryableError(`IAM Credentials at ${at} answered HTTP ${f.status} to impersonating ${who.target}`, `http_${f.status}`);
  const g = googleErrorOf(f.body);
  const said = g ? `${g.status || `HTTP ${f.status}`}: ${g.message}`.replace(/\.+$/, '') : `HTTP ${f.status}`;
  const refused = `${who.caller} may not impersonate ${who.target} (IAM Credentials said ${said})`;
  if (g?.reason === 'SERVICE_DISABLED' || /has not been used in project|is disabled/i.test(g?.message ?? '')) {
    return new PermanentError(
      `${refused}. Enable the IAM Service Account Credentials API (iamcredentials.googleapis.com) in the project named there: gcloud services enable iamcredentials.googleapis.com --project PROJECT`,
      'api_disabled',
    );
  }
  if (g?.reason === 'ACCESS_TOKEN_SCOPE_INSUFFICIENT' || /insufficient authentication scopes/i.test(g?.message ?? '')) {
    return new PermanentError(
      `${refused}. The token of ${who.caller} lacks the cloud-platform scope that generateAccessToken needs: give a Compute Engine VM the cloud-platform access scope, or sign in to gcloud again without narrowing --scopes`,
      'scope_insufficient',
    );
  }
  if (f.status === 403 || f.status === 404) {
    const grant = `gcloud iam service-accounts add-iam-policy-binding ${who.target} --member='${who.member}' --role=${TOKEN_CREATOR_ROLE}`;
    return new PermanentError(
      `${refused}. Grant ${who.caller} the role ${TOKEN_CREATOR_ROLE} on the service account ${who.target}${who.federated ? " (or roles/iam.workloadIdentityUser, as Google's federation guides do)" : ''}: ${grant}; and check that ${who.target} exists`,
      'impersonation_denied',
    );
  }
  if (f.status === 401) {
    return new PermanentError(`${refused}: the token of ${who.caller} was not accepted; check the base credentials`, 'caller_unauthenticated');
  }
  return new PermanentError(`${refused}; check google.impersonate and the credentials' service_account_impersonation_url`, `http_${f.status}`);
}
