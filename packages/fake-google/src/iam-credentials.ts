/**
 * `POST /v1/projects/-/serviceAccounts/{email}:generateAccessToken`, as IAM Service Account
 * Credentials answers it (https://cloud.google.com/iam/docs/reference/credentials/rest/v1/projects.serviceAccounts/generateAccessToken):
 * the caller's bearer token must be valid and carry `cloud-platform` (or `iam`); the caller must
 * hold the Token Creator role on the target (else 403 PERMISSION_DENIED, which Google also answers
 * for a target that does not exist); `scope` is required; `lifetime` at most 3600s. Answers
 * `{"accessToken", "expireTime"}` with an RFC 3339 time.
 */
import { apiError, jsonReply, type Reply } from './http-util.js';
import { ensurePrincipal, issueToken, type FakeIdentity } from './identity.js';
import type { FakeState } from './state.js';

const CALLER_SCOPES = ['https://www.googleapis.com/auth/cloud-platform', 'https://www.googleapis.com/auth/iam'];
const CREDENTIAL_HINT =
  'Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.';

function errorInfo(reason: string, extra: Record<string, string> = {}): unknown {
  return {
    '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
    reason,
    domain: reason === 'IAM_PERMISSION_DENIED' ? 'iam.googleapis.com' : 'googleapis.com',
    metadata: { service: 'iamcredentials.googleapis.com', ...extra },
  };
}

export function handleGenerateAccessToken(
  identity: FakeIdentity,
  state: FakeState,
  target: string,
  authorization: string | undefined,
  body: string,
): { reply: Reply; account?: string } {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  if (!authorization) return { reply: apiError(401, 'UNAUTHENTICATED', `Request is missing required authentication credential. ${CREDENTIAL_HINT}`) };
  const token = bearer ? state.tokens.get(bearer[1]!) : undefined;
  if (!token || state.now() >= token.expiresAt)
    return { reply: apiError(401, 'UNAUTHENTICATED', `Request had invalid authentication credentials. ${CREDENTIAL_HINT}`) };
  const caller = token.account;
  if (!token.scopes.some((s) => CALLER_SCOPES.includes(s))) {
    return {
      reply: apiError(403, 'PERMISSION_DENIED', 'Request had insufficient authentication scopes.', { details: [errorInfo('ACCESS_TOKEN_SCOPE_INSUFFICIENT')] }),
      account: caller,
    };
  }
  const exists = identity.serviceAccounts.has(target) || Boolean(state.accounts.get(target)?.keys.length);
  if (!exists || !identity.mayImpersonate(caller, target)) {
    return {
      reply: apiError(403, 'PERMISSION_DENIED', "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).", {
        details: [errorInfo('IAM_PERMISSION_DENIED', { permission: 'iam.serviceAccounts.getAccessToken' })],
      }),
      account: caller,
    };
  }
  let req: { scope?: unknown; lifetime?: unknown };
  try {
    req = JSON.parse(body || '{}') as typeof req;
  } catch {
    return { reply: apiError(400, 'INVALID_ARGUMENT', 'Invalid JSON payload received.'), account: caller };
  }
  const scopes = Array.isArray(req.scope) ? req.scope.filter((s): s is string => typeof s === 'string') : typeof req.scope === 'string' ? [req.scope] : [];
  if (scopes.length === 0) return { reply: apiError(400, 'INVALID_ARGUMENT', 'Scope required.'), account: caller };
  let lifetime = 3600;
  if (req.lifetime !== undefined) {
    const m = /^(\d+(?:\.\d+)?)s$/.exec(String(req.lifetime));
    if (!m)
      return {
        reply: apiError(
          400,
          'INVALID_ARGUMENT',
          `Invalid value at 'lifetime' (type.googleapis.com/google.protobuf.Duration), Field 'lifetime', Illegal duration format; duration must end with 's'`,
        ),
        account: caller,
      };
    lifetime = Number(m[1]);
    if (lifetime > 3600)
      return {
        reply: apiError(
          400,
          'INVALID_ARGUMENT',
          'The lifetime requested is not supported. The maximum lifetime is 3600 seconds; longer ones need the organization policy constraints/iam.allowServiceAccountCredentialLifetimeExtension.',
        ),
        account: caller,
      };
  }
  ensurePrincipal(state, target, /@([^.]+)\.iam\.gserviceaccount\.com$/.exec(target)?.[1] ?? 'fake-project');
  const seconds = Math.min(lifetime, state.tokenLifetimeSeconds);
  const accessToken = issueToken(state, target, scopes, seconds);
  const expireTime = new Date(state.tokens.get(accessToken)!.expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return { reply: jsonReply(200, { accessToken, expireTime }), account: target };
}
