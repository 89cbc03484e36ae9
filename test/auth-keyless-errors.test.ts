/**
 * Without a key, when something is wrong: each refusal says what to fix, naming the audience, the
 * subject token and where it came from, or both principals of an impersonation and the missing
 * role; a person's credentials are warned about; a malformed credentials file stops the start
 * (exit 2), a refusal at run time fails the run (exit 1). Never a token in a message.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TokenManager } from '../src/auth/tokenManager.js';
import { createLogger } from '../src/log.js';
import { Metrics } from '../src/metrics.js';
import { logLines, runCli, testDb, tmpDir, writeJson, type TestDb } from './helpers.js';
import { GITHUB_ISSUER, KEY_SA, PROJECT_NUMBER, keylessWorld, type KeylessWorld } from './keyless-helpers.js';

const logger = createLogger('silent');
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

describe('refusals say what to fix', () => {
  let w: KeylessWorld;
  let manager: TokenManager;
  const tokenError = async (credentials: string, impersonate = ''): Promise<string> => {
    const source = manager.forPrincipal({ credentials, impersonate });
    try {
      await source.getToken();
    } catch (err) {
      const message = (err as Error).message;
      for (const t of w.fake.issuedTokens()) assert.ok(!message.includes(t), 'no token in the message');
      assert.doesNotMatch(message, /eyJ[\w-]+\.[\w-]+/, 'no subject token in the message');
      return message;
    }
    assert.fail('expected the exchange to be refused');
  };
  before(async () => {
    w = await keylessWorld({ firstProperty: 830_001 });
    manager = new TokenManager({
      tokenUrl: '',
      iamCredentialsRootUrl: `${w.fake.url}/`,
      logger,
      metrics: new Metrics({ defaultMetrics: false }),
      minExchangeIntervalMs: 0,
      env: w.env,
    });
  });
  after(async () => {
    manager?.stop();
    await w?.stop();
  });

  const tokenFile = (name: string, audience: string, lifetimeSeconds = 3600) => {
    const file = path.join(w.dir, name);
    fs.writeFileSync(file, w.fake.identity.oidcToken({ issuer: GITHUB_ISSUER, subject: 'repo:acme/collector', audience, lifetimeSeconds }));
    return file;
  };
  const fileSourced = (name: string, audience: string, subjectFile: string, extra: Record<string, unknown> = {}) =>
    w.externalAccountFile(name, { audience, subject_token_type: 'urn:ietf:params:oauth:token-type:jwt', credential_source: { file: subjectFile }, ...extra });
  const httpsAudience = () => `https://iam.googleapis.com/${w.oidcAudience.replace('//iam.googleapis.com/', '')}`;

  it('STS refuses the audience: a provider that does not exist, or a name that is not a provider', async () => {
    const missing = w.oidcAudience.replace(/providers\/github$/, 'providers/deleted-provider');
    const m1 = await tokenError(fileSourced('wif-missing-provider.json', missing, tokenFile('t1.jwt', httpsAudience())));
    assert.match(
      m1,
      new RegExp(`STS refused the audience ${esc(missing)} \\(invalid_target: The target service indicated by the "audience" parameters is invalid`),
    );
    assert.match(
      m1,
      /Fix "audience" in .*wif-missing-provider\.json: it must be the workload identity pool provider's full name, \/\/iam\.googleapis\.com\/projects\/PROJECT_NUMBER\/locations\/global\/workloadIdentityPools\/POOL\/providers\/PROVIDER/,
    );
    const short = `projects/${PROJECT_NUMBER}/locations/global/workloadIdentityPools/collector-pool/providers/github`;
    const m2 = await tokenError(fileSourced('wif-short-audience.json', short, tokenFile('t2.jwt', httpsAudience())));
    assert.match(
      m2,
      new RegExp(
        `STS refused the audience ${esc(short)} \\(invalid_request: Invalid value for "audience"\\. This value should be the full resource name of the Identity Provider`,
      ),
    );
  });

  it('STS refuses the subject token: named with where it came from (wrong audience, expired, rejected by the attribute condition, a bad AWS signature)', async () => {
    const wrongAud = tokenFile('wrong-aud.jwt', 'https://example.com/not-the-provider');
    const m1 = await tokenError(fileSourced('wif-wrong-aud.json', w.oidcAudience, wrongAud));
    assert.match(
      m1,
      new RegExp(
        `STS refused the subject token from file ${esc(wrongAud)} for ${esc(w.oidcAudience)} \\(invalid_grant: The audience in ID Token \\[https://example\\.com/not-the-provider\\] does not match the expected audience`,
      ),
    );
    assert.match(m1, new RegExp(`its audience must be one the provider allows \\(by default ${esc(httpsAudience())}\\)`));

    const expired = tokenFile('expired.jwt', httpsAudience(), -60);
    const m2 = await tokenError(fileSourced('wif-expired.json', w.oidcAudience, expired));
    assert.match(
      m2,
      new RegExp(`STS refused the subject token from file ${esc(expired)} .*\\(invalid_grant: ID Token expired at \\d+\\).*must not be expired`),
    );

    const guarded = w.fake.identity.addWorkloadProvider({
      projectNumber: PROJECT_NUMBER,
      pool: 'collector-pool',
      provider: 'guarded',
      issuer: GITHUB_ISSUER,
      condition: (c) => String(c['sub']).startsWith('repo:acme/other'),
    });
    const m3 = await tokenError(
      fileSourced('wif-condition.json', guarded, tokenFile('t3.jwt', `https://iam.googleapis.com/${guarded.slice('//iam.googleapis.com/'.length)}`)),
    );
    assert.match(
      m3,
      /STS refused the subject token from file .*t3\.jwt .*\(unauthorized_client: The given credential is rejected by the attribute condition\): the provider's attribute condition does not admit this identity/,
    );

    const aws = JSON.parse(fs.readFileSync(path.join(w.dir, 'wif-aws.json'), 'utf8')) as Record<string, unknown>;
    const inst = w.fake.identity.awsInstance!;
    w.fake.identity.aws.set(inst.accessKeyId, { ...w.fake.identity.aws.get(inst.accessKeyId)!, secretAccessKey: 'the-secret-was-rotated' });
    try {
      const m4 = await tokenError(w.externalAccountFile('wif-aws-badsig.json', { ...aws, service_account_impersonation_url: undefined }));
      assert.match(
        m4,
        new RegExp(
          `STS refused the subject token from AWS for ${esc(w.awsAudience)} \\(invalid_grant: Received invalid AWS response of type SignatureDoesNotMatch`,
        ),
      );
      assert.doesNotMatch(m4, /fakeSecretAccessKey|FwoGZXIv/, 'no AWS secret in the message');
    } finally {
      w.fake.identity.aws.set(inst.accessKeyId, { ...w.fake.identity.aws.get(inst.accessKeyId)!, secretAccessKey: inst.secretAccessKey });
    }
  });

  it('a subject token that cannot be read is retried, naming its source', async () => {
    const gone = path.join(w.dir, 'not-yet-written.jwt');
    const source = manager.forPrincipal({ credentials: fileSourced('wif-no-token-yet.json', w.oidcAudience, gone), impersonate: '' });
    await assert.rejects(source.getToken(), (err: Error & { code?: string }) => {
      assert.equal(err.name, 'RetryableError');
      assert.match(err.message, new RegExp(`the subject token from file ${esc(gone)} could not be read`));
      return true;
    });
  });

  it('impersonation without the Token Creator role names both principals and the role, for every kind of caller', async () => {
    // a target per caller: callers impersonating one target would share its token source
    const [target, target2, target3, target4, target5] = [1, 2, 3, 4, 5].map((i) => `no-grant-${i}@keyless-project.iam.gserviceaccount.com`) as [
      string,
      string,
      string,
      string,
      string,
    ];
    for (const t of [target, target2, target3, target4, target5]) w.fake.identity.addServiceAccount(t);
    const key = w.principals.find((p) => p.name === 'key')!.config.credentials!;
    const m1 = await tokenError(key, target);
    assert.match(
      m1,
      new RegExp(
        `${esc(KEY_SA)} may not impersonate ${esc(target)} \\(IAM Credentials said PERMISSION_DENIED: Permission 'iam\\.serviceAccounts\\.getAccessToken' denied on resource \\(or it may not exist\\)\\)\\. Grant ${esc(KEY_SA)} the role roles/iam\\.serviceAccountTokenCreator on the service account ${esc(target)}: gcloud iam service-accounts add-iam-policy-binding ${esc(target)} --member='serviceAccount:${esc(KEY_SA)}' --role=roles/iam\\.serviceAccountTokenCreator`,
      ),
    );
    // the federation's own service account, named in its file
    const wif = fileSourced('wif-no-grant.json', w.oidcAudience, tokenFile('t4.jwt', httpsAudience()), {
      service_account_impersonation_url: `${w.fake.url}/v1/projects/-/serviceAccounts/${target2}:generateAccessToken`,
    });
    const m2 = await tokenError(wif);
    assert.match(
      m2,
      new RegExp(
        `federated principals of ${esc(w.oidcAudience)} may not impersonate ${esc(target2)} .*PERMISSION_DENIED.*roles/iam\\.serviceAccountTokenCreator.*--member='principalSet://iam\\.googleapis\\.com/projects/${PROJECT_NUMBER}/locations/global/workloadIdentityPools/collector-pool/\\*'`,
      ),
    );
    // a person (named by the ID token of their sign-in) and the attached service account
    const person = writeJson(path.join(w.dir, 'dave.json'), w.fake.identity.addUser('dave@example.com', w.fake.tokenUrl));
    assert.match(
      await tokenError(person, target3),
      /dave@example\.com may not impersonate .*--member='user:dave@example\.com' --role=roles\/iam\.serviceAccountTokenCreator/,
    );
    assert.match(
      await tokenError('', target4),
      /vm-runner@keyless-project\.iam\.gserviceaccount\.com may not impersonate .*--member='serviceAccount:vm-runner@/,
    );
    // a caller whose token lacks cloud-platform (a sign-in narrowed with --scopes)
    const narrow = writeJson(
      path.join(w.dir, 'erin.json'),
      w.fake.identity.addUser('erin@example.com', w.fake.tokenUrl, { scopes: ['openid', 'https://www.googleapis.com/auth/analytics.readonly'] }),
    );
    w.fake.identity.grantTokenCreator('erin@example.com', target5);
    assert.match(
      await tokenError(narrow, target5),
      /erin@example\.com may not impersonate .*insufficient authentication scopes.*lacks the cloud-platform scope/,
    );
  });

  it("a person's revoked sign-in, or one their organisation wants renewed: sign in again", async () => {
    const file = writeJson(path.join(w.dir, 'frank.json'), w.fake.identity.addUser('frank@example.com', w.fake.tokenUrl));
    w.fake.identity.revokeUser('frank@example.com');
    assert.match(
      await tokenError(file),
      /refused the person's credentials in .*frank\.json \(invalid_grant: Token has been expired or revoked\): the sign-in was revoked or expired; run gcloud auth application-default login again/,
    );
    const grace = writeJson(path.join(w.dir, 'grace.json'), w.fake.identity.addUser('grace@example.com', w.fake.tokenUrl));
    for (const u of w.fake.identity.users.values()) if (u.email === 'grace@example.com') u.reauth = true;
    assert.match(await tokenError(grace), /\(invalid_grant: reauth related error \(invalid_rapt\)\): Google wants that person to sign in again/);
  });

  it('a metadata server without an attached service account, or something else at GCE_METADATA_HOST', async () => {
    w.fake.identity.attachServiceAccount(null);
    const m = new TokenManager({ tokenUrl: '', logger, metrics: new Metrics({ defaultMetrics: false }), minExchangeIntervalMs: 0, env: w.env });
    await assert.rejects(
      m.forPrincipal({ credentials: '' }).getToken(),
      /metadata server http:\/\/127\.0\.0\.1:\d+ has no service account for this machine, pod or service \(HTTP 404\): attach one/,
    );
    const impostor = http.createServer((_req, res) => res.end('hello'));
    await new Promise<void>((r) => impostor.listen(0, '127.0.0.1', r));
    try {
      const host = `127.0.0.1:${(impostor.address() as AddressInfo).port}`;
      const env = { ...w.env, GCE_METADATA_HOST: host, METADATA_SERVER_DETECTION: 'assume-present' };
      const m2 = new TokenManager({ tokenUrl: '', logger, metrics: new Metrics({ defaultMetrics: false }), minExchangeIntervalMs: 0, env });
      await assert.rejects(
        m2.forPrincipal({ credentials: '' }).getToken(),
        new RegExp(`http://${esc(host)} is not a Google metadata server \\(its answer lacks the Metadata-Flavor: Google header\\): check GCE_METADATA_HOST`),
      );
    } finally {
      impostor.close();
      w.fake.identity.attachServiceAccount('vm-runner@keyless-project.iam.gserviceaccount.com');
    }
  });
});

describe('from the command line', () => {
  let w: KeylessWorld;
  let db: TestDb;
  const config = (properties: unknown[], google: Record<string, unknown> = {}) =>
    writeJson(path.join(w.dir, `config-${crypto.randomBytes(3).toString('hex')}.json`), {
      database: { url: db.url, schema: db.schema },
      google: { apiRootUrl: w.fake.apiRootUrl, iamCredentialsRootUrl: `${w.fake.url}/`, ...google },
      reports: { daily: { metrics: ['sessions'], startDate: '2daysAgo', refreshDays: 1 } },
      log: { level: 'info' },
      properties,
    });
  before(async () => {
    w = await keylessWorld({ firstProperty: 840_001 });
    db = await testDb('keyless_cli');
    // check then only reports on credentials and properties
    const m = await runCli(['migrate', '--config', config([])], { env: w.env });
    assert.equal(m.code, 0, m.stderr);
  });
  after(async () => {
    await w?.stop();
    await db?.drop();
  });

  it('no credentials anywhere: check fails with the three ways to get some; run --once exits 1 saying the same', async () => {
    const home = tmpDir('nocreds');
    const closed = await new Promise<number>((resolve) => {
      const s = http.createServer();
      s.listen(0, '127.0.0.1', () => {
        const port = (s.address() as AddressInfo).port;
        s.close(() => resolve(port));
      });
    });
    const cfg = config([{ id: w.principals[0]!.property }]);
    const env = { HOME: home, GCE_METADATA_HOST: `127.0.0.1:${closed}`, METADATA_SERVER_DETECTION: 'ping-only' };
    const c = await runCli(['check', '--config', cfg], { env });
    assert.equal(c.code, 1, c.stdout + c.stderr);
    assert.match(
      c.stdout,
      new RegExp(
        `^FAIL\\s+attached metadata:default\\s+token refused: no Google credentials found: set google\\.credentials .*, or run on Google Cloud with an attached service account, or run \`gcloud auth application-default login\`.*Looked at: google\\.credentials and GOOGLE_APPLICATION_CREDENTIALS \\(unset\\); ${esc(home)}/\\.config/gcloud/application_default_credentials\\.json \\(absent\\); no metadata server answered at http://127\\.0\\.0\\.1:${closed} \\(ECONNREFUSED\\)`,
        'm',
      ),
    );
    assert.match(
      c.stdout,
      /fix: set google\.credentials, or run on Google Cloud with an attached service account, or run `gcloud auth application-default login`/,
    );
    const r = await runCli(['run', '--once', '--config', cfg], { env: { HOME: home, METADATA_SERVER_DETECTION: 'none' } });
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /no access token for metadata:default \(metadata server\): no Google credentials found: .*no metadata server \(METADATA_SERVER_DETECTION\)/,
    );
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
  });

  it("gcloud's file in CLOUDSDK_CONFIG is Application Default Credentials before the metadata server", async () => {
    const asked = () => w.fake.events.filter((e) => e.kind === 'gceMetadata').length;
    const before = asked();
    const gcloud = tmpDir('cloudsdk');
    const person = w.principals.find((p) => p.name === 'user')!;
    fs.copyFileSync(person.config.credentials!, path.join(gcloud, 'application_default_credentials.json'));
    const r = await runCli(['check', '--config', config([{ id: person.property }])], { env: { ...w.env, CLOUDSDK_CONFIG: gcloud } });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      new RegExp(
        `^ok\\s+user alice@example\\.com\\s+a person's credentials from ${esc(gcloud)}/application_default_credentials\\.json \\(gcloud's Application Default Credentials\\)`,
        'm',
      ),
    );
    assert.equal(asked(), before, 'the metadata server was not asked');
  });

  it("on Compute Engine or GKE (the VM's access scopes, whatever is asked): check says the token lacks the scope and to impersonate, which then works", async () => {
    w.fake.identity.attachServiceAccount('vm-runner@keyless-project.iam.gserviceaccount.com', {
      scopes: ['https://www.googleapis.com/auth/cloud-platform'],
      honoursRequestedScopes: false,
    });
    try {
      const attached = w.principals.find((p) => p.name === 'attached')!;
      const viaImpersonation = w.principals.find((p) => p.name === 'attached+impersonate')!;
      const r = await runCli(
        ['check', '--config', config([{ id: attached.property }, { id: viaImpersonation.property, impersonate: viaImpersonation.account }])],
        { env: w.env },
      );
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(
        r.stdout,
        new RegExp(
          `^FAIL\\s+property ${attached.property}\\s+.*the access token of vm-runner@keyless-project\\.iam\\.gserviceaccount\\.com lacks the analytics\\.readonly scope \\(PERMISSION_DENIED: Request had insufficient authentication scopes\\.\\)`,
          'm',
        ),
      );
      assert.match(
        r.stdout,
        /fix: set google\.impersonate \(or properties\[\]\.impersonate\) to a service account, and grant vm-runner@keyless-project\.iam\.gserviceaccount\.com the role roles\/iam\.serviceAccountTokenCreator on it/,
      );
      assert.match(r.stdout, new RegExp(`^ok\\s+property ${viaImpersonation.property}\\s+readable by ${esc(viaImpersonation.account)}`, 'm'));
    } finally {
      w.fake.identity.attachServiceAccount('vm-runner@keyless-project.iam.gserviceaccount.com');
    }
  });

  it('an impersonation refused at run time: run --once exits 1 naming both principals and the role', async () => {
    const key = w.principals.find((p) => p.name === 'key')!;
    const target = 'forgotten-grant@keyless-project.iam.gserviceaccount.com';
    w.fake.identity.addServiceAccount(target);
    const r = await runCli(['run', '--once', '--config', config([{ id: key.property, credentials: key.config.credentials, impersonate: target }])], {
      env: w.env,
    });
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`${esc(KEY_SA)} may not impersonate ${esc(target)} .*Grant ${esc(KEY_SA)} the role roles/iam\\.serviceAccountTokenCreator`),
    );
  });

  it("a person's credentials on a server: it runs, with a warning in the log", async () => {
    const person = w.principals.find((p) => p.name === 'user')!;
    const r = await runCli(['run', '--once', '--config', config([{ id: person.property, credentials: person.config.credentials }])], { env: w.env });
    assert.equal(r.code, 0, r.stderr);
    const warnings = logLines(r.stdout).filter((l) => l['event'] === 'key_file_warning' && l['code'] === 'user_credentials');
    assert.equal(warnings.length, 1, 'warned once');
    assert.match(
      String(warnings[0]!['msg']),
      /holds a person's credentials \("type": "authorized_user", from gcloud auth application-default login\): the collector acts as that person.*; fix: fine for a trial on a laptop; on a server use a service account/,
    );
    assert.ok(!r.stdout.includes(JSON.parse(fs.readFileSync(person.config.credentials!, 'utf8')).refresh_token), 'no refresh token in the log');
  });

  it('a malformed credentials file of any kind: exit 2 at start, one line naming the file and what is wrong', async () => {
    const adc = JSON.parse(fs.readFileSync(w.principals.find((p) => p.name === 'user')!.config.credentials!, 'utf8')) as Record<string, unknown>;
    const wif = {
      type: 'external_account',
      audience: w.oidcAudience,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      token_url: `${w.fake.url}/v1/token`,
      credential_source: { file: '/run/token' },
    };
    const cases: Array<[string, unknown, RegExp, NodeJS.ProcessEnv?]> = [
      ['no-audience.json', { ...wif, audience: undefined }, /"audience" is missing \(the workload identity pool provider/],
      ['no-source.json', { ...wif, credential_source: undefined }, /"credential_source" is missing: where the subject token comes from/],
      [
        'two-sources.json',
        { ...wif, credential_source: { file: '/run/token', url: 'http://169.254.169.254/token' } },
        /No valid Identity Pool "credential_source" provided.*create-cred-config/,
      ],
      [
        'bad-sa-url.json',
        { ...wif, service_account_impersonation_url: 'https://iamcredentials.googleapis.com/v1/reader@x.iam.gserviceaccount.com' },
        /"service_account_impersonation_url" is not https:\/\/iamcredentials/,
      ],
      [
        'executable.json',
        { ...wif, credential_source: { executable: { command: '/usr/local/bin/token' } } },
        /comes from an executable, which runs only when the environment says GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1/,
        { GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES: '' },
      ],
      ['user-no-refresh.json', { ...adc, refresh_token: undefined }, /"refresh_token" is missing; sign in again with gcloud auth application-default login/],
      [
        'imp-bad-url.json',
        { type: 'impersonated_service_account', service_account_impersonation_url: 'https://example.com/x', source_credentials: adc },
        /"service_account_impersonation_url" is missing or not https:\/\/iamcredentials/,
      ],
      [
        'imp-no-source.json',
        {
          type: 'impersonated_service_account',
          service_account_impersonation_url: `${w.fake.url}/v1/projects/-/serviceAccounts/a@b.iam.gserviceaccount.com:generateAccessToken`,
        },
        /"source_credentials" is missing/,
      ],
      [
        'workforce-user.json',
        { type: 'external_account_authorized_user', audience: '//iam.googleapis.com/locations/global/workforcePools/p/providers/q', refresh_token: 'r' },
        /a person's Workforce Identity Federation sign-in .*which ga-collector does not take/,
      ],
    ];
    for (const [name, content, want, extraEnv] of cases) {
      const file = writeJson(path.join(w.dir, name), content);
      const r = await runCli(['run', '--once', '--config', config([{ id: w.principals[0]!.property, credentials: file }])], { env: { ...w.env, ...extraEnv } });
      assert.equal(r.code, 2, `${name}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, `${name}: one line: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^ga-collector: credentials file ${esc(file)}: `), name);
      assert.match(r.stderr, want, name);
      assert.doesNotMatch(r.stderr, /GOCSPX|1\/\/0|d-FL95/, `${name}: no secret`);
    }
  });
});
