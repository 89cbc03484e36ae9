/**
 * The fake Google's keyless endpoints answer as Google documents them: the metadata server, STS,
 * IAM Credentials generateAccessToken and the refresh-token grant; and the Data API takes what
 * they issue for the principal it was granted to.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FakeGoogle } from '@ga-collector/fake-google';

const CLOUD = 'https://www.googleapis.com/auth/cloud-platform';
const ANALYTICS = 'https://www.googleapis.com/auth/analytics.readonly';
const SA = 'attached@proj.iam.gserviceaccount.com';
const TARGET = 'target@proj.iam.gserviceaccount.com';
const ISSUER = 'https://issuer.example.com';

async function call(url: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; text: string; json: Record<string, unknown> }> {
  const res = await fetch(url, init);
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON: the test looks at text
  }
  return { status: res.status, headers: res.headers, text, json };
}

describe('fake Google: keyless endpoints', () => {
  let fake: FakeGoogle;
  let audience: string;
  before(async () => {
    fake = new FakeGoogle();
    await fake.start();
    fake.identity.attachServiceAccount(SA);
    audience = fake.identity.addWorkloadProvider({ projectNumber: '42', pool: 'pool', provider: 'prov', issuer: ISSUER });
    fake.addProperty({ id: '7', timeZone: 'UTC' });
  });
  after(() => fake.stop());

  const metadata = (path: string, flavor = true) =>
    call(`${fake.url}/computeMetadata/v1/instance/service-accounts/default/${path}`, flavor ? { headers: { 'Metadata-Flavor': 'Google' } } : {});
  const sts = (fields: Record<string, string>) =>
    call(`${fake.url}/v1/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        audience,
        scope: CLOUD,
        ...fields,
      }),
    });
  const generate = (token: string | undefined, body: unknown, target = TARGET) =>
    call(`${fake.url}/v1/projects/-/serviceAccounts/${target}:generateAccessToken`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });

  it('metadata server: refuses a request without Metadata-Flavor: Google; answers the email and a cached token with the header', async () => {
    const refused = await metadata('token', false);
    assert.equal(refused.status, 403);
    assert.match(refused.text, /Missing Metadata-Flavor:Google header/);
    const email = await metadata('email');
    assert.deepEqual([email.status, email.text, email.headers.get('metadata-flavor')], [200, SA, 'Google']);
    const first = await metadata(`token?scopes=${encodeURIComponent(CLOUD)}`);
    assert.equal(first.status, 200);
    assert.equal(first.json['token_type'], 'Bearer');
    assert.ok(Number(first.json['expires_in']) > 3500);
    const again = await metadata(`token?scopes=${encodeURIComponent(CLOUD)}`);
    assert.equal(again.json['access_token'], first.json['access_token'], 'cached while more than five minutes are left');
    fake.identity.attachServiceAccount(null);
    assert.equal((await metadata('email')).status, 404, 'no service account attached');
    fake.identity.attachServiceAccount(SA);
  });

  it("STS: Google's error bodies for a bad grant type, a malformed audience, an unknown provider and a token of another audience", async () => {
    const token = (aud: string) => fake.identity.oidcToken({ issuer: ISSUER, subject: 'svc-1', audience: aud });
    const good = `https://iam.googleapis.com/${audience.slice('//iam.googleapis.com/'.length)}`;
    assert.deepEqual((await sts({ grant_type: 'client_credentials', subject_token: token(good) })).json['error'], 'unsupported_grant_type');
    const malformed = await sts({ audience: 'pool/prov', subject_token: token(good) });
    assert.deepEqual([malformed.status, malformed.json['error']], [400, 'invalid_request']);
    assert.match(
      String(malformed.json['error_description']),
      /^Invalid value for "audience"\. This value should be the full resource name of the Identity Provider/,
    );
    const unknown = await sts({ audience: audience.replace(/providers\/prov$/, 'providers/gone'), subject_token: token(good) });
    assert.deepEqual([unknown.status, unknown.json['error']], [400, 'invalid_target']);
    const other = await sts({ subject_token: token('https://elsewhere.example.com') });
    assert.deepEqual([other.status, other.json['error']], [400, 'invalid_grant']);
    assert.match(
      String(other.json['error_description']),
      /The audience in ID Token \[https:\/\/elsewhere\.example\.com\] does not match the expected audience/,
    );
    const ok = await sts({ subject_token: token(good) });
    assert.equal(ok.status, 200);
    assert.deepEqual([ok.json['issued_token_type'], ok.json['token_type']], ['urn:ietf:params:oauth:token-type:access_token', 'Bearer']);
    assert.equal(
      fake.events.filter((e) => e.kind === 'sts').at(-1)!.account,
      'principal://iam.googleapis.com/projects/42/locations/global/workloadIdentityPools/pool/subject/svc-1',
    );
  });

  it('generateAccessToken: 401 without a valid bearer token, 403 without cloud-platform or without the Token Creator role, an RFC 3339 expireTime when granted', async () => {
    assert.equal((await generate(undefined, { scope: [ANALYTICS] })).status, 401);
    assert.equal((await generate('ya29.not-issued', { scope: [ANALYTICS] })).status, 401);
    const metadataToken = (scopes: string) => metadata(`token?scopes=${encodeURIComponent(scopes)}`).then((r) => String(r.json['access_token']));
    const narrow = await generate(await metadataToken(ANALYTICS), { scope: [ANALYTICS] });
    assert.deepEqual([narrow.status, (narrow.json['error'] as { message: string }).message], [403, 'Request had insufficient authentication scopes.']);
    const caller = await metadataToken(CLOUD);
    const denied = await generate(caller, { scope: [ANALYTICS] });
    const err = denied.json['error'] as { status: string; message: string; details: Array<{ reason: string }> };
    assert.deepEqual(
      [denied.status, err.status, err.message, err.details[0]!.reason],
      [403, 'PERMISSION_DENIED', "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).", 'IAM_PERMISSION_DENIED'],
    );
    fake.identity.grantTokenCreator(SA, TARGET);
    assert.equal((await generate(caller, { scope: [ANALYTICS], lifetime: '7200s' })).status, 400, 'longer than an hour');
    const ok = await generate(caller, { scope: [ANALYTICS], lifetime: '3600s' });
    assert.equal(ok.status, 200);
    assert.match(String(ok.json['expireTime']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.ok(Date.parse(String(ok.json['expireTime'])) > Date.now() + 3500_000);
    // the Data API takes it for the impersonated account, and only where that account was granted
    const report = () =>
      call(`${fake.url}/v1beta/properties/7:runReport`, {
        method: 'POST',
        headers: { authorization: `Bearer ${String(ok.json['accessToken'])}`, 'content-type': 'application/json' },
        body: JSON.stringify({ dateRanges: [{ startDate: 'yesterday', endDate: 'yesterday' }], metrics: [{ name: 'sessions' }] }),
      });
    assert.equal((await report()).status, 403);
    fake.grant(TARGET, '7');
    assert.equal((await report()).status, 200);
  });

  it('refresh-token grant: invalid_client for a wrong secret, invalid_grant once revoked, an ID token naming the person', async () => {
    const user = fake.identity.addUser('pat@example.com', fake.tokenUrl);
    const grant = (over: Record<string, string> = {}) =>
      call(fake.tokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'refresh_token',
          client_id: user['client_id']!,
          client_secret: user['client_secret']!,
          refresh_token: user['refresh_token']!,
          ...over,
        }),
      });
    assert.deepEqual([(await grant({ client_secret: 'wrong' })).status, (await grant({ client_secret: 'wrong' })).json['error']], [401, 'invalid_client']);
    const ok = await grant();
    assert.equal(ok.status, 200);
    const claims = JSON.parse(Buffer.from(String(ok.json['id_token']).split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    assert.equal(claims['email'], 'pat@example.com');
    assert.match(String(ok.json['scope']), /cloud-platform/);
    fake.identity.revokeUser('pat@example.com');
    const revoked = await grant();
    assert.deepEqual([revoked.status, revoked.json], [400, { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' }]);
  });
});
