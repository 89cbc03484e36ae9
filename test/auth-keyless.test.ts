/**
 * Without a key: every credential kind Google's libraries accept fetches the data, as a user runs
 * it (`run --once`, `check`), against the fake Google's metadata server, STS, IAM Credentials and
 * token endpoint. HOME, CLOUDSDK_CONFIG and GCE_METADATA_HOST are temporary values: nothing reads
 * the machine's own gcloud files or metadata server.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateReport } from '@ga-collector/fake-google';
import { runCli, testDb, writeJson, type TestDb } from './helpers.js';
import { keylessWorld, type KeylessWorld } from './keyless-helpers.js';

const API_SCOPES = ['https://www.googleapis.com/auth/analytics.readonly', 'https://www.googleapis.com/auth/webmasters.readonly'];
const daily = { metrics: ['sessions', 'totalUsers'], startDate: '3daysAgo', refreshDays: 1 };

function configFile(w: KeylessWorld, db: TestDb, properties: unknown[], google: Record<string, unknown> = {}): string {
  return writeJson(path.join(w.dir, `config-${crypto.randomBytes(3).toString('hex')}.json`), {
    database: { url: db.url, schema: db.schema },
    google: { apiRootUrl: w.fake.apiRootUrl, iamCredentialsRootUrl: `${w.fake.url}/`, ...google },
    reports: { daily },
    log: { level: 'info' },
    properties,
  });
}

describe('every credential kind, one property each', () => {
  let w: KeylessWorld;
  let db: TestDb;
  let config: string;
  before(async () => {
    w = await keylessWorld();
    db = await testDb('keyless');
    config = configFile(
      w,
      db,
      w.principals.map((p) => ({ id: p.property, ...p.config })),
    );
  });
  after(async () => {
    await w?.stop();
    await db?.drop();
  });

  it('run --once stores exactly what Google reports, each property read by its own principal with a token of both scopes', async () => {
    const r = await runCli(['run', '--once', '--config', config], { env: w.env, timeoutMs: 90_000 });
    assert.equal(r.code, 0, r.stderr + r.stdout.slice(-3000));
    for (const p of w.principals) {
      const rows = await db.query<{ date: string; sessions: string; total_users: string }>(
        `SELECT to_char(date, 'YYYY-MM-DD') AS date, sessions, total_users FROM "${db.schema}".daily WHERE property_id = $1 ORDER BY date`,
        [p.property],
      );
      assert.equal(rows.length, 3, `${p.name}: three dates`);
      for (const row of rows) {
        const want = generateReport({ propertyId: p.property, date: row.date, dimensions: [], metrics: daily.metrics, revision: 0 })[0]!.values;
        assert.deepEqual([Number(row.sessions), Number(row.total_users)], want, `${p.name} ${row.date}`);
      }
      const calls = w.fake.events.filter((e) => e.kind === 'runReport' && e.property === p.property);
      assert.ok(
        calls.length > 0 && calls.every((e) => e.status === 200 && e.account === p.grantee),
        `${p.name}: read as ${p.grantee}: ${JSON.stringify(calls.map((e) => [e.status, e.account]))}`,
      );
      // a person's token carries what they consented to at sign-in; every other kind asks for exactly these
      for (const e of calls) {
        if (p.kind === 'user')
          assert.ok(
            API_SCOPES.every((s) => e.scopes!.includes(s)),
            `${p.name}: the token's scopes ${e.scopes}`,
          );
        else assert.deepEqual([...e.scopes!].sort(), API_SCOPES, `${p.name}: the token's scopes`);
      }
    }
    // each step of each chain happened once: one token per principal for the whole run
    const count = (kind: string) => w.fake.events.filter((e) => e.kind === kind && e.status === 200).length;
    assert.equal(count('sts'), 4, 'file, URL, executable and AWS federations: one STS exchange each');
    assert.equal(count('generateAccessToken'), 7, 'three federations, two people, a key and the attached account impersonating');
    assert.equal(count('azureIdentity'), 1);
    assert.ok(count('gceMetadata') >= 2, 'the attached account: its email and a token');
  });

  it('check: a row per principal with its kind, who it is, where its token came from and its expiry', async () => {
    const r = await runCli(['check', '--config', config], { env: w.env, timeoutMs: 90_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const row = (kind: string, account: string) => {
      const line = r.stdout.split('\n').find((l) => new RegExp(`^ok\\s+${kind} ${account.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\s`).test(l));
      assert.ok(line, `a row for ${kind} ${account}:\n${r.stdout}`);
      assert.match(line, /, expires in (59|60) min \(\d{4}-\d\d-\d\dT/);
      return line;
    };
    const root = w.fake.url;
    assert.match(row('key', 'key-holder@keyless-project.iam.gserviceaccount.com'), new RegExp(`key \\w+ from .*key\\.json; token from ${root}/token`));
    assert.match(
      row('attached', 'vm-runner@keyless-project.iam.gserviceaccount.com'),
      new RegExp(`the service account attached to this machine, pod or service; token from the metadata server http://${new URL(root).host}`),
    );
    assert.match(
      row('federated', w.oidcAudience),
      new RegExp(
        `Workload Identity Federation from .*wif-file\\.json: subject token from file .*github-token\\.jwt, exchanged at STS ${root}/v1/token for ${w.oidcAudience.replace(/\//g, '\\/')}`,
      ),
    );
    assert.match(
      row('federated', 'azure-reader@keyless-project.iam.gserviceaccount.com'),
      /subject token from URL http:.*metadata\/identity\/oauth2\/token.*, then impersonating azure-reader@/,
    );
    assert.match(row('federated', 'onprem-reader@keyless-project.iam.gserviceaccount.com'), /subject token from executable .*subject-token\.sh/);
    assert.match(row('federated', 'aws-reader@keyless-project.iam.gserviceaccount.com'), /subject token from AWS, exchanged at STS/);
    assert.match(row('user', 'alice@example.com'), new RegExp(`a person's credentials from .*person-analytics\\.json; token from ${root}/token`));
    assert.match(
      row('impersonated', 'laptop-reader@keyless-project.iam.gserviceaccount.com'),
      /person-default\.json; token from .*; then impersonating laptop-reader@.* at .* \(google\.impersonate\)/,
    );
    assert.match(
      row('impersonated', 'file-target@keyless-project.iam.gserviceaccount.com'),
      /impersonated\.json; .*then impersonating file-target@.* \(.*impersonated\.json\)/,
    );
    assert.match(row('impersonated', 'quota-b@other-project.iam.gserviceaccount.com'), /key \w+ from .*key\.json; token from .*; then impersonating quota-b@/);
    assert.match(row('impersonated', 'gke-reader@keyless-project.iam.gserviceaccount.com'), /metadata server .*; then impersonating gke-reader@/);
    // a person's credentials: warned, not refused
    assert.match(r.stdout, /^warn\s+user alice@example\.com\s+credentials file .*person-analytics\.json holds a person's credentials/m);
    assert.match(r.stdout, /fix: fine for a trial on a laptop; on a server use a service account/);
    for (const p of w.principals) assert.match(r.stdout, new RegExp(`^ok\\s+property ${p.property}\\s+readable by `, 'm'), `${p.name}'s property`);
    for (const t of w.fake.issuedTokens()) assert.ok(!r.stdout.includes(t) && !r.stderr.includes(t), 'no token in the output');
  });
});
