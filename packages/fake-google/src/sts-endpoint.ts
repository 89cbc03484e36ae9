/**
 * `POST /v1/token` as Google's Security Token Service answers the OAuth 2.0 token exchange
 * (RFC 8693) for Workload Identity Federation
 * (https://cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token): the audience must name
 * a provider that exists and is enabled; the subject token must be what that provider trusts (an
 * OIDC token of its issuer, signed, unexpired, with an allowed audience; or an AWS GetCallerIdentity
 * request signed with the keys of a role of its AWS account, aimed at this audience); the
 * provider's attribute condition must admit it. Errors are Google's `{"error", "error_description"}`.
 */
import { createHash, createHmac, createPublicKey, timingSafeEqual } from 'node:crypto';
import { jsonReply, oauthError, type Reply } from './http-util.js';
import { ensurePrincipal, issueToken, type FakeIdentity, type WorkloadProvider } from './identity.js';
import { numericClaim, parseJwt, verifyRs256 } from './keys.js';
import type { FakeState } from './state.js';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const JWT_TYPES = ['urn:ietf:params:oauth:token-type:jwt', 'urn:ietf:params:oauth:token-type:id_token'];
const AWS_TYPE = 'urn:ietf:params:aws:token-type:aws4_request';
const AUDIENCE_RE =
  /^\/\/iam\.googleapis\.com\/(projects\/[^/]+\/locations\/global\/workloadIdentityPools\/[^/]+\/providers\/[^/]+|locations\/global\/workforcePools\/[^/]+\/providers\/[^/]+)$/;
const BAD_AUDIENCE =
  'Invalid value for "audience". This value should be the full resource name of the Identity Provider. See https://cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token for the list of possible formats.';
const NO_TARGET =
  'The target service indicated by the "audience" parameters is invalid. This might either be because the pool or provider is disabled or deleted or because it doesn\'t exist.';

export interface StsOutcome {
  reply: Reply;
  account?: string;
}

function readParams(body: string, contentType: string): URLSearchParams {
  if (contentType.includes('application/json')) {
    const params = new URLSearchParams();
    try {
      const obj = JSON.parse(body) as Record<string, unknown>;
      for (const [k, v] of Object.entries(obj ?? {})) if (typeof v === 'string') params.set(k, v);
    } catch {
      // an empty set of parameters is refused below
    }
    return params;
  }
  return new URLSearchParams(body);
}

export function handleSts(identity: FakeIdentity, state: FakeState, body: string, contentType: string): StsOutcome {
  const p = readParams(body, contentType);
  const grantType = p.get('grant_type') ?? '';
  if (grantType !== TOKEN_EXCHANGE) return { reply: oauthError(400, 'unsupported_grant_type', `Invalid value for "grant_type": ${grantType}`) };
  if ((p.get('requested_token_type') ?? '') !== ACCESS_TOKEN_TYPE) {
    return { reply: oauthError(400, 'invalid_request', `Invalid value for "requested_token_type": ${p.get('requested_token_type') ?? ''}`) };
  }
  const audience = p.get('audience') ?? '';
  if (!AUDIENCE_RE.test(audience)) return { reply: oauthError(400, 'invalid_request', BAD_AUDIENCE) };
  const provider = identity.providers.get(audience);
  if (!provider || provider.disabled) return { reply: oauthError(400, 'invalid_target', NO_TARGET) };
  const subjectToken = p.get('subject_token') ?? '';
  if (!subjectToken) return { reply: oauthError(400, 'invalid_request', 'Missing required parameter: "subject_token".') };
  const type = p.get('subject_token_type') ?? '';
  const checked =
    provider.kind === 'oidc'
      ? JWT_TYPES.includes(type)
        ? checkOidc(identity, state, provider, subjectToken)
        : fail('invalid_request', `Invalid value for "subject_token_type": ${type}. The provider expects an OIDC token`)
      : type === AWS_TYPE
        ? checkAws(identity, state, provider, subjectToken)
        : fail('invalid_request', `Invalid value for "subject_token_type": ${type}. The provider expects ${AWS_TYPE}`);
  if ('reply' in checked) return checked;
  if (provider.condition && !provider.condition(checked.claims)) {
    return { reply: oauthError(400, 'unauthorized_client', 'The given credential is rejected by the attribute condition.') };
  }
  const principal = identity.federatedPrincipal(audience, checked.subject);
  ensurePrincipal(state, principal, provider.projectNumber);
  const scopes = (p.get('scope') ?? '').split(/\s+/).filter(Boolean);
  const lifetime = state.tokenLifetimeSeconds;
  const accessToken = issueToken(state, principal, scopes, lifetime, 'ya29.d.');
  return {
    reply: jsonReply(200, { access_token: accessToken, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', expires_in: lifetime - 1 }),
    account: principal,
  };
}

type Checked = { subject: string; claims: Record<string, unknown> } | { reply: Reply };

function fail(error: string, description: string): { reply: Reply } {
  return { reply: oauthError(400, error, description) };
}

function checkOidc(identity: FakeIdentity, state: FakeState, provider: WorkloadProvider, token: string): Checked {
  const jwt = parseJwt(token);
  if (!jwt) return fail('invalid_grant', 'Unable to parse the ID Token.');
  const issuer = identity.issuers.get(provider.issuer ?? '');
  const iss = jwt.claims['iss'];
  if (!issuer || iss !== issuer.url)
    return fail('invalid_grant', `The issuer in ID Token ${JSON.stringify(iss)} does not match the expected ISSUER ${provider.issuer ?? ''}.`);
  if (jwt.header['alg'] !== 'RS256' || !verifyRs256(jwt, createPublicKey(issuer.privateKey))) return fail('invalid_grant', 'Invalid ID Token signature.');
  const aud = jwt.claims['aud'];
  const auds = Array.isArray(aud) ? aud : [aud];
  if (!auds.some((a) => typeof a === 'string' && provider.allowedAudiences.includes(a))) {
    return fail('invalid_grant', `The audience in ID Token [${auds.join(', ')}] does not match the expected audience ${provider.allowedAudiences.join(', ')}.`);
  }
  const exp = numericClaim(jwt.claims['exp']);
  const nowSec = Math.floor(state.now() / 1000);
  if (exp === undefined || exp <= nowSec) return fail('invalid_grant', `ID Token expired at ${exp ?? 'an unknown time'}.`);
  const sub = jwt.claims['sub'];
  if (typeof sub !== 'string' || !sub) return fail('invalid_grant', 'The ID Token has no "sub" claim.');
  return { subject: sub, claims: jwt.claims };
}

/** The subject token of AWS: a GetCallerIdentity request, URL-encoded JSON `{url, method, headers: [{key, value}]}`. */
function checkAws(identity: FakeIdentity, state: FakeState, provider: WorkloadProvider, token: string): Checked {
  let req: { url?: unknown; method?: unknown; headers?: unknown };
  try {
    req = JSON.parse(decodeURIComponent(token)) as typeof req;
  } catch {
    return fail('invalid_grant', 'The AWS subject token is not a serialized GetCallerIdentity request.');
  }
  const headers = new Map<string, string>();
  if (Array.isArray(req.headers))
    for (const h of req.headers as Array<{ key?: unknown; value?: unknown }>)
      if (typeof h.key === 'string' && typeof h.value === 'string') headers.set(h.key.toLowerCase(), h.value);
  let url: URL;
  try {
    url = new URL(String(req.url));
  } catch {
    return fail('invalid_grant', 'The AWS subject token has no valid "url".');
  }
  if (!/^sts\.[a-z0-9-]+\.amazonaws\.com$/.test(url.host) || url.searchParams.get('Action') !== 'GetCallerIdentity' || req.method !== 'POST') {
    return fail('invalid_grant', 'The AWS subject token is not a GetCallerIdentity request to AWS STS.');
  }
  if (headers.get('x-goog-cloud-target-resource') !== provider.audience) {
    return fail('invalid_grant', "The AWS subject token's x-goog-cloud-target-resource header does not match the audience.");
  }
  const auth = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]+)$/.exec(
    headers.get('authorization') ?? '',
  );
  if (!auth) return fail('invalid_grant', 'The AWS subject token has no valid Authorization header.');
  const [, keyId, date, region, service, signedHeaders, signature] = auth as unknown as [string, string, string, string, string, string, string];
  const creds = identity.aws.get(keyId);
  const invalid = 'Received invalid AWS response of type InvalidClientTokenId with error message: The security token included in the request is invalid.';
  if (!creds || (creds.sessionToken !== undefined && headers.get('x-amz-security-token') !== creds.sessionToken)) return fail('invalid_grant', invalid);
  const amzDate = headers.get('x-amz-date') ?? '';
  const signed = signedHeaders.split(';');
  const canonical = [
    'POST',
    url.pathname,
    url.search.slice(1),
    signed.map((h) => `${h}:${headers.get(h) ?? ''}\n`).join(''),
    signedHeaders,
    createHash('sha256').update('').digest('hex'),
  ].join('\n');
  const toSign = ['AWS4-HMAC-SHA256', amzDate, `${date}/${region}/${service}/aws4_request`, createHash('sha256').update(canonical).digest('hex')].join('\n');
  const hmac = (key: Buffer | string, msg: string) => createHmac('sha256', key).update(msg).digest();
  const kSigning = hmac(hmac(hmac(hmac(`AWS4${creds.secretAccessKey}`, date), region), service), 'aws4_request');
  const expected = hmac(kSigning, toSign);
  const given = Buffer.from(signature, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return fail(
      'invalid_grant',
      'Received invalid AWS response of type SignatureDoesNotMatch with error message: The request signature we calculated does not match the signature you provided.',
    );
  }
  const account = /^arn:aws:sts::(\d+):/.exec(creds.arn)?.[1];
  if (account !== provider.awsAccountId) return fail('unauthorized_client', 'The given credential is rejected by the attribute condition.');
  const skew = Math.abs(Date.parse(amzDate.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z')) - state.now());
  if (!(skew < 15 * 60_000)) return fail('invalid_grant', 'Received invalid AWS response of type SignatureDoesNotMatch with error message: Signature expired.');
  return { subject: creds.arn, claims: { arn: creds.arn, account } };
}
