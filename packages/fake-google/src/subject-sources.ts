/**
 * Where a federated workload reads its subject token, played by the fake so that URL- and
 * AWS-sourced credentials can be tried end to end:
 *
 * - Azure's instance identity endpoint, `GET /metadata/identity/oauth2/token?api-version=…&resource=AUD`
 *   with `Metadata: true` (else 400), answering `{"access_token": <an OIDC token for AUD>, …}`;
 * - AWS instance metadata (IMDSv2): `PUT /latest/api/token` for a session token, then
 *   `/latest/meta-data/placement/availability-zone` and `/latest/meta-data/iam/security-credentials/[ROLE]`,
 *   each requiring that session token when one was asked for.
 */
import { jsonReply, type Reply } from './http-util.js';
import type { FakeIdentity } from './identity.js';

export function handleAzureIdentity(identity: FakeIdentity, query: URLSearchParams, metadataHeader: string | undefined): Reply {
  if (metadataHeader?.toLowerCase() !== 'true')
    return jsonReply(400, { error: 'invalid_request', error_description: 'Required metadata header not specified' });
  const who = identity.azureIdentity;
  if (!who) return jsonReply(400, { error: 'invalid_request', error_description: 'Identity not found' });
  const resource = query.get('resource') ?? '';
  if (!resource) return jsonReply(400, { error: 'invalid_request', error_description: "Required query variable 'resource' is missing" });
  const token = identity.oidcToken({ issuer: who.issuer, subject: who.subject, audience: resource });
  return jsonReply(200, { access_token: token, expires_in: '3599', resource, token_type: 'Bearer' });
}

export function handleAwsImds(identity: FakeIdentity, method: string, path: string, headers: Record<string, string | string[] | undefined>): Reply {
  const text = (status: number, body: string): Reply => ({ status, headers: { 'content-type': 'text/plain' }, body });
  const inst = identity.awsInstance;
  if (!inst) return text(404, 'Not Found');
  if (path === '/latest/api/token') {
    if (method !== 'PUT' || !headers['x-aws-ec2-metadata-token-ttl-seconds']) return text(400, 'Bad Request');
    return text(200, inst.imdsToken);
  }
  const session = headers['x-aws-ec2-metadata-token'];
  if (session !== undefined && session !== inst.imdsToken) return text(401, 'Unauthorized');
  if (path === '/latest/meta-data/placement/availability-zone') return text(200, `${inst.region}a`);
  if (path === '/latest/meta-data/iam/security-credentials/' || path === '/latest/meta-data/iam/security-credentials') return text(200, inst.roleName);
  if (path === `/latest/meta-data/iam/security-credentials/${inst.roleName}`) {
    return jsonReply(200, {
      Code: 'Success',
      LastUpdated: new Date().toISOString(),
      Type: 'AWS-HMAC',
      AccessKeyId: inst.accessKeyId,
      SecretAccessKey: inst.secretAccessKey,
      Token: inst.sessionToken ?? '',
      Expiration: new Date(Date.now() + 6 * 3600_000).toISOString(),
    });
  }
  return text(404, 'Not Found');
}
