/**
 * The metadata server of Compute Engine, GKE and Cloud Run, as far as credentials go
 * (https://cloud.google.com/compute/docs/metadata/querying-metadata):
 * `GET /computeMetadata/v1/instance/service-accounts/default/email` and `…/token[?scopes=a,b]`.
 *
 * Requests must carry `Metadata-Flavor: Google` (else 403), every answer carries it. No attached
 * service account: 404. `?scopes=` is honoured as on Cloud Run, or ignored as on Compute Engine and
 * GKE (FakeIdentity.attachServiceAccount). A token is cached per scopes and handed out again, with its remaining
 * `expires_in`, while more than five minutes of it are left, as the real server does.
 */
import type { Reply } from './http-util.js';
import { issueToken, type FakeIdentity } from './identity.js';
import type { FakeState } from './state.js';

const FLAVOR = { 'metadata-flavor': 'Google' };
/** The real server renews a cached token when less than this is left. */
const CACHE_MARGIN_MS = 5 * 60_000;

export interface MetadataOutcome {
  reply: Reply;
  account?: string;
}

export function handleMetadataServer(
  identity: FakeIdentity,
  state: FakeState,
  path: string,
  query: URLSearchParams,
  flavor: string | undefined,
): MetadataOutcome {
  if (flavor !== 'Google') {
    return {
      reply: {
        status: 403,
        headers: { 'content-type': 'text/html; charset=UTF-8', ...FLAVOR },
        body: `<!DOCTYPE html>\n<html><head><title>403 Forbidden</title></head><body>Your client does not have permission to get URL <code>${path}</code> from this server. Missing Metadata-Flavor:Google header.</body></html>\n`,
      },
    };
  }
  const m = /^\/computeMetadata\/v1\/instance\/service-accounts\/([^/]+)\/(email|token)$/.exec(path);
  const attached = identity.attached;
  if (!m || !attached || (m[1] !== 'default' && m[1] !== attached.email)) {
    return { reply: { status: 404, headers: { 'content-type': 'text/html; charset=UTF-8', ...FLAVOR }, body: 'Not Found\n' } };
  }
  if (m[2] === 'email')
    return { reply: { status: 200, headers: { 'content-type': 'application/text', ...FLAVOR }, body: attached.email }, account: attached.email };
  const asked = query.get('scopes');
  const scopes =
    asked && attached.honoursRequestedScopes
      ? asked
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : attached.scopes;
  const key = `${attached.email}\0${scopes.join(' ')}`;
  const now = state.now();
  let cached = identity.metadataCache.get(key);
  if (!cached || cached.expiresAt - now <= CACHE_MARGIN_MS) {
    const token = issueToken(state, attached.email, scopes, state.tokenLifetimeSeconds);
    cached = { token, expiresAt: state.tokens.get(token)!.expiresAt };
    identity.metadataCache.set(key, cached);
  }
  const body = { access_token: cached.token, expires_in: Math.max(0, Math.floor((cached.expiresAt - now) / 1000) - 1), token_type: 'Bearer' };
  return { reply: { status: 200, headers: { 'content-type': 'application/json', ...FLAVOR }, body: JSON.stringify(body) }, account: attached.email };
}
