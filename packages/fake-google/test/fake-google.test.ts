/**
 * The fake Google must accept what Google accepts and refuse what Google
 * refuses, in Google's words, so the collector cannot pass its tests with a
 * request real Google would reject.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSign, generateKeyPairSync } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { FakeGoogle, generateReport, isKnownDimension, metricType, type FakeGoogleOptions, type ServiceAccountKeyJson } from '../src/index.js';

const SCOPE = 'https://www.googleapis.com/auth/analytics.readonly';
const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';
const EMAIL = 'collector@test-project.iam.gserviceaccount.com';
const LA = '111111';
const NZ = '222222';

// answers are read loosely, field by field, as a client of Google's JSON would
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

/** A mutable clock shared with the fake: 2024-03-10T11:30Z is 04:30 in Los Angeles and 00:30 the next day in Auckland. */
function clock(startIso = '2024-03-10T11:30:00Z'): { now: () => number; set: (ms: number) => void; advance: (ms: number) => void } {
  let t = Date.parse(startIso);
  return {
    now: () => t,
    set: (ms) => {
      t = ms;
    },
    advance: (ms) => {
      t += ms;
    },
  };
}

function sign(privateKeyPem: string, claims: Json, header: Json = { alg: 'RS256', typ: 'JWT' }): string {
  const enc = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${enc(header)}.${enc(claims)}`;
  return `${input}.${createSign('RSA-SHA256').update(input).sign(privateKeyPem).toString('base64url')}`;
}

function claimsFor(key: ServiceAccountKeyJson, nowMs: number, overrides: Json = {}): Json {
  const iat = Math.floor(nowMs / 1000);
  return { iss: key.client_email, scope: SCOPE, aud: GOOGLE_TOKEN_URL, iat, exp: iat + 3600, ...overrides };
}

async function exchange(
  fake: FakeGoogle,
  assertion: string,
  grantType = 'urn:ietf:params:oauth:grant-type:jwt-bearer',
): Promise<{ status: number; body: Json }> {
  const res = await fetch(fake.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: grantType, assertion }),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

async function accessToken(fake: FakeGoogle, key: ServiceAccountKeyJson, nowMs: number): Promise<string> {
  const { status, body } = await exchange(fake, sign(key.private_key, claimsFor(key, nowMs), { alg: 'RS256', typ: 'JWT', kid: key.private_key_id }));
  assert.equal(status, 200, JSON.stringify(body));
  return body.access_token as string;
}

async function report(fake: FakeGoogle, token: string | undefined, property: string, body: unknown): Promise<{ status: number; body: Json; headers: Headers }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${fake.apiRootUrl}v1beta/properties/${property}:runReport`, {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Json, headers: res.headers };
}

const daily = (start: string, end: string, extra: Json = {}): Json => ({
  dateRanges: [{ startDate: start, endDate: end }],
  dimensions: [{ name: 'date' }],
  metrics: [{ name: 'sessions' }, { name: 'totalUsers' }],
  ...extra,
});

interface World {
  fake: FakeGoogle;
  key: ServiceAccountKeyJson;
  token: string;
  time: ReturnType<typeof clock>;
}

async function world(opts: FakeGoogleOptions = {}, time = clock()): Promise<World> {
  const fake = new FakeGoogle({ now: time.now, ...opts });
  await fake.start();
  const key = fake.createAccount(EMAIL);
  fake.addProperty({ id: LA, timeZone: 'America/Los_Angeles', dataFrom: '2023-01-01' });
  fake.addProperty({ id: NZ, timeZone: 'Pacific/Auckland', currencyCode: 'NZD', dataFrom: '2023-01-01' });
  fake.grant(EMAIL, LA);
  fake.grant(EMAIL, NZ);
  return { fake, key, token: await accessToken(fake, key, time.now()), time };
}

describe('token endpoint', () => {
  let w: World;
  before(async () => {
    w = await world();
  });
  after(() => w.fake.stop());

  test('exchanges a correctly signed JWT for a Bearer token that lives 3599 s', async () => {
    const { status, body } = await exchange(w.fake, sign(w.key.private_key, claimsFor(w.key, w.time.now())));
    assert.equal(status, 200);
    assert.deepEqual(Object.keys(body).sort(), ['access_token', 'expires_in', 'token_type']);
    assert.match(body.access_token, /^ya29\./);
    assert.equal(body.expires_in, 3599);
    assert.equal(body.token_type, 'Bearer');
  });

  test('the key file looks like the one the Cloud console downloads', () => {
    assert.equal(w.key.type, 'service_account');
    assert.equal(w.key.token_uri, w.fake.tokenUrl);
    assert.equal(w.key.project_id, 'test-project');
    assert.match(w.key.private_key, /^-----BEGIN PRIVATE KEY-----\n[\s\S]+-----END PRIVATE KEY-----\n$/);
    assert.match(w.key.private_key_id, /^[0-9a-f]{40}$/);
    assert.equal(w.key.universe_domain, 'googleapis.com');
  });

  test('accepts its own token URL as audience', async () => {
    const { status } = await exchange(w.fake, sign(w.key.private_key, claimsFor(w.key, w.time.now(), { aud: w.fake.tokenUrl })));
    assert.equal(status, 200);
  });

  test('refuses a signature made with another key', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const { status, body } = await exchange(w.fake, sign(other, claimsFor(w.key, w.time.now())));
    assert.equal(status, 400);
    assert.deepEqual(body, { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' });
  });

  test('refuses expired, over-long and future assertions', async () => {
    const now = Math.floor(w.time.now() / 1000);
    const timeframe =
      'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.';
    for (const [iat, exp] of [
      [now - 7200, now - 3600],
      [now, now + 7200],
      [now + 3600, now + 3700],
    ]) {
      const { status, body } = await exchange(w.fake, sign(w.key.private_key, claimsFor(w.key, w.time.now(), { iat, exp })));
      assert.equal(status, 400);
      assert.deepEqual(body, { error: 'invalid_grant', error_description: timeframe });
    }
  });

  test('refuses a wrong audience, an unknown issuer, a missing scope and a wrong grant type', async () => {
    const now = w.time.now();
    let r = await exchange(w.fake, sign(w.key.private_key, claimsFor(w.key, now, { aud: 'https://example.com/token' })));
    assert.deepEqual([r.status, r.body], [400, { error: 'invalid_grant', error_description: 'Invalid JWT: Failed audience check.' }]);
    r = await exchange(w.fake, sign(w.key.private_key, claimsFor(w.key, now, { iss: 'nobody@test-project.iam.gserviceaccount.com' })));
    assert.deepEqual([r.status, r.body], [400, { error: 'invalid_grant', error_description: 'Invalid grant: account not found' }]);
    r = await exchange(w.fake, sign(w.key.private_key, claimsFor(w.key, now, { scope: undefined })));
    assert.deepEqual([r.status, r.body.error], [400, 'invalid_scope']);
    r = await exchange(w.fake, sign(w.key.private_key, claimsFor(w.key, now)), 'client_credentials');
    assert.deepEqual([r.status, r.body], [400, { error: 'unsupported_grant_type', error_description: 'Invalid grant_type: client_credentials' }]);
    r = await exchange(w.fake, 'not-a-jwt');
    assert.deepEqual([r.status, r.body.error], [400, 'invalid_request']);
  });

  test('a token without an Analytics scope is refused by the API', async () => {
    const { body } = await exchange(
      w.fake,
      sign(w.key.private_key, claimsFor(w.key, w.time.now(), { scope: 'https://www.googleapis.com/auth/cloud-platform' })),
    );
    const r = await report(w.fake, body.access_token, LA, daily('yesterday', 'yesterday'));
    assert.equal(r.status, 403);
    assert.equal(r.body.error.message, 'Request had insufficient authentication scopes.');
  });

  test('a revoked key stops signing, but tokens it already got stay valid until they expire', async () => {
    const email = 'rotating@test-project.iam.gserviceaccount.com';
    const old = w.fake.createAccount(email);
    const fresh = w.fake.createAccount(email);
    w.fake.grant(email, LA);
    const before = await accessToken(w.fake, old, w.time.now());
    w.fake.revokeKey(email, old.private_key_id);
    const refused = await exchange(w.fake, sign(old.private_key, claimsFor(old, w.time.now())));
    assert.deepEqual([refused.status, refused.body.error_description], [400, 'Invalid JWT Signature.']);
    assert.equal((await report(w.fake, before, LA, daily('yesterday', 'yesterday'))).status, 200);
    await accessToken(w.fake, fresh, w.time.now());
  });
});

describe('report endpoint: authentication, access and validation', () => {
  let w: World;
  before(async () => {
    w = await world({ tokenLifetimeSeconds: 600 });
  });
  after(() => w.fake.stop());

  test('401 without a token, with an unknown one, and once the token has expired', async () => {
    let r = await report(w.fake, undefined, LA, daily('yesterday', 'yesterday'));
    assert.equal(r.status, 401);
    assert.equal(r.body.error.status, 'UNAUTHENTICATED');
    assert.match(r.body.error.message, /^Request is missing required authentication credential\./);
    assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer realm=/);
    r = await report(w.fake, 'ya29.made-up', LA, daily('yesterday', 'yesterday'));
    assert.equal(r.status, 401);
    assert.match(r.body.error.message, /^Request had invalid authentication credentials\. Expected OAuth 2 access token/);
    const token = await accessToken(w.fake, w.key, w.time.now());
    assert.equal((await report(w.fake, token, LA, daily('yesterday', 'yesterday'))).status, 200);
    w.time.advance(600_000);
    r = await report(w.fake, token, LA, daily('yesterday', 'yesterday'));
    assert.deepEqual([r.status, r.body.error.code], [401, 401]);
    assert.equal(r.headers.get('content-type'), 'application/json; charset=UTF-8');
  });

  test('a JWT the service account signed itself is a bearer token, with a scope or the API as audience, no token exchange', async () => {
    const now = w.time.now();
    const iat = Math.floor(now / 1000);
    const self = (claims: Json, kid = w.key.private_key_id) =>
      sign(w.key.private_key, { iss: w.key.client_email, sub: w.key.client_email, iat, exp: iat + 3600, ...claims }, { alg: 'RS256', typ: 'JWT', kid });
    const tokens = w.fake.counts().token;
    const status = async (bearer: string) => (await report(w.fake, bearer, LA, daily('yesterday', 'yesterday'))).status;
    assert.equal(await status(self({ scope: SCOPE })), 200);
    assert.equal(await status(self({ aud: 'https://analyticsdata.googleapis.com/' })), 200);
    assert.equal(w.fake.counts().token, tokens);
    // neither scope nor this API as audience; another account's key; expired; more than an hour long
    assert.equal(await status(self({ aud: 'https://analyticsadmin.googleapis.com/' })), 401);
    assert.equal(await status(self({ scope: SCOPE }, 'another-key-id')), 401);
    assert.equal(await status(self({ scope: SCOPE, iat: iat - 7200, exp: iat - 3600 })), 401);
    assert.equal(await status(self({ scope: SCOPE, exp: iat + 7200 })), 401);
    assert.equal(await status(self({ scope: 'https://www.googleapis.com/auth/webmasters.readonly' })), 403);
  });

  test('403 on a property the account was not granted, or that does not exist; 400 on a non-numeric id', async () => {
    const token = await accessToken(w.fake, w.key, w.time.now());
    w.fake.addProperty({ id: '333333', timeZone: 'UTC' });
    for (const id of ['333333', '999999']) {
      const r = await report(w.fake, token, id, daily('yesterday', 'yesterday'));
      assert.equal(r.status, 403);
      assert.equal(r.body.error.status, 'PERMISSION_DENIED');
      assert.match(r.body.error.message, /^User does not have sufficient permissions for this property\./);
    }
    w.fake.grant(EMAIL, '333333');
    assert.equal((await report(w.fake, token, '333333', daily('yesterday', 'yesterday'))).status, 200);
    w.fake.revoke(EMAIL, '333333');
    assert.equal((await report(w.fake, token, '333333', daily('yesterday', 'yesterday'))).status, 403);
    const r = await report(w.fake, token, 'abc', daily('yesterday', 'yesterday'));
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /^Invalid property ID: abc\./);
  });

  test("400 INVALID_ARGUMENT in Google's words", async () => {
    const token = await accessToken(w.fake, w.key, w.time.now());
    const cases: Array<[unknown, string | RegExp]> = [
      [
        daily('yesterday', 'yesterday', { metrics: [{ name: 'fooBar' }] }),
        'Field fooBar is not a valid metric.  For a list of valid dimensions and metrics, see https://developers.google.com/analytics/devguides/reporting/data/v1/api-schema ',
      ],
      [daily('yesterday', 'yesterday', { dimensions: [{ name: 'date' }, { name: 'nope' }] }), /^Field nope is not a valid dimension\. /],
      [daily('yesterday', 'yesterday', { bogus: 1 }), 'Invalid JSON payload received. Unknown name "bogus": Cannot find field.'],
      [{ metrics: [{ name: 'sessions' }] }, 'A dateRange is required.'],
      [daily('2024-03-05', '2024-03-01'), 'start_date must be less than or equal to end_date. start_date = 2024-03-05 and end_date = 2024-03-01'],
      [daily('last week', 'today'), /^Invalid startDate : last week\./],
      [daily('yesterday', 'yesterday', { limit: -5 }), 'limit must be positive. The API received limit = -5'],
      [daily('yesterday', 'yesterday', { limit: 'ten' }), /^Invalid value at 'limit' \(TYPE_INT64\)/],
      [
        daily('yesterday', 'yesterday', { dimensions: Array.from({ length: 10 }, (_, i) => ({ name: `customEvent:p${i}` })) }),
        /^Requests are limited to 9 dimensions/,
      ],
      [daily('yesterday', 'yesterday', { orderBys: [{ metric: { metricName: 'eventCount' } }] }), /^Field eventCount exists in OrderBy but is not defined/],
      ['{"dateRanges": [', /^Invalid JSON payload received\./],
    ];
    for (const [body, message] of cases) {
      const r = await report(w.fake, token, LA, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.error.status, 'INVALID_ARGUMENT');
      if (typeof message === 'string') assert.equal(r.body.error.message, message);
      else assert.match(r.body.error.message, message);
    }
  });

  test('int64 fields as strings or numbers, snake_case names, and a limit above the cap', async () => {
    const token = await accessToken(w.fake, w.key, w.time.now());
    const asString = await report(w.fake, token, LA, daily('7daysAgo', 'yesterday', { limit: '3', offset: '1' }));
    const asNumber = await report(w.fake, token, LA, {
      date_ranges: [{ start_date: '7daysAgo', end_date: 'yesterday' }],
      dimensions: [{ name: 'date' }],
      metrics: [{ name: 'sessions' }, { name: 'totalUsers' }],
      limit: 3,
      offset: 1,
    });
    assert.equal(asString.status, 200);
    assert.deepEqual(asString.body.rows, asNumber.body.rows);
    assert.equal(asString.body.rows.length, 3);
    assert.equal((await report(w.fake, token, LA, daily('7daysAgo', 'yesterday', { limit: 1_000_000 }))).status, 200);
  });

  test("unknown paths and wrong verbs get Google's HTML 404", async () => {
    for (const [method, path] of [
      ['GET', 'v1beta/nothing'],
      ['GET', `v1beta/properties/${LA}:runReport`],
      ['POST', `v1beta/properties/${LA}:runPivotReport`],
    ] as const) {
      const res = await fetch(`${w.fake.apiRootUrl}${path}`, { method });
      assert.equal(res.status, 404);
      assert.equal(res.headers.get('content-type'), 'text/html; charset=UTF-8');
      assert.match(await res.text(), /Error 404 \(Not Found\)!!1/);
    }
  });

  test('getMetadata lists dimensions and metrics with their types', async () => {
    const token = await accessToken(w.fake, w.key, w.time.now());
    const res = await fetch(`${w.fake.apiRootUrl}v1beta/properties/${LA}/metadata`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    const body = (await res.json()) as Json;
    assert.equal(body.name, `properties/${LA}/metadata`);
    assert.ok(body.dimensions.some((d: Json) => d.apiName === 'date' && d.uiName === 'Date'));
    assert.ok(body.metrics.some((m: Json) => m.apiName === 'sessions' && m.type === 'TYPE_INTEGER'));
    assert.equal(w.fake.events.at(-1)?.kind, 'metadata');
  });
});

describe('report endpoint: data', () => {
  let w: World;
  before(async () => {
    w = await world({ maxPageSize: 7 });
  });
  after(() => w.fake.stop());

  test("all pages together are exactly the generator's rows, in one order, with the right rowCount", async () => {
    const dims = ['country', 'deviceCategory'];
    const metrics = ['sessions', 'bounceRate', 'averageSessionDuration', 'totalRevenue'];
    const request = {
      dateRanges: [{ startDate: '2024-03-01', endDate: '2024-03-02' }],
      dimensions: [{ name: 'date' }, ...dims.map((name) => ({ name }))],
      metrics: metrics.map((name) => ({ name })),
      limit: 100,
    };
    const got: Array<{ dims: string[]; values: number[] }> = [];
    let rowCount = -1;
    for (let offset = 0; rowCount < 0 || offset < rowCount;) {
      const r = await report(w.fake, w.token, LA, { ...request, offset });
      assert.equal(r.status, 200);
      rowCount = r.body.rowCount;
      assert.ok(r.body.rows.length <= 7);
      for (const row of r.body.rows)
        got.push({ dims: row.dimensionValues.map((v: Json) => v.value), values: row.metricValues.map((v: Json) => Number(v.value)) });
      offset += r.body.rows.length;
    }
    const expected = ['2024-03-01', '2024-03-02'].flatMap((date) =>
      generateReport({ propertyId: LA, date, dimensions: dims, metrics }).map((row) => ({ dims: [date.replaceAll('-', ''), ...row.dims], values: row.values })),
    );
    assert.equal(rowCount, expected.length);
    assert.ok(expected.length > 20, `${expected.length} rows`);
    const key = (r: { dims: string[]; values: number[] }): string => JSON.stringify(r);
    assert.deepEqual(got.map(key).sort(), expected.map(key).sort());
    for (let i = 1; i < got.length; i++) assert.ok((got[i - 1]?.values[0] ?? 0) >= (got[i]?.values[0] ?? 0), 'sorted by sessions, descending');
  });

  test("yesterday is each property's own yesterday", async () => {
    const la = await report(w.fake, w.token, LA, daily('yesterday', 'yesterday'));
    const nz = await report(w.fake, w.token, NZ, daily('yesterday', 'yesterday'));
    assert.equal(la.body.rows[0].dimensionValues[0].value, '20240309');
    assert.equal(nz.body.rows[0].dimensionValues[0].value, '20240310');
    assert.deepEqual(la.body.metadata, { currencyCode: 'USD', timeZone: 'America/Los_Angeles' });
    assert.deepEqual(nz.body.metadata, { currencyCode: 'NZD', timeZone: 'Pacific/Auckland' });
    // Today in Los Angeles is the 10th: nothing after it exists yet.
    const future = await report(w.fake, w.token, LA, daily('2024-03-09', '2024-03-20'));
    assert.deepEqual(future.body.rows.map((r: Json) => r.dimensionValues[0].value).sort(), ['20240309', '20240310']);
  });

  test('an empty report omits rows and rowCount, as proto3 JSON does', async () => {
    const r = await report(w.fake, w.token, LA, daily('2022-06-01', '2022-06-30'));
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.body), ['dimensionHeaders', 'metricHeaders', 'metadata', 'kind']);
    assert.equal(r.body.kind, 'analyticsData#runReport');
    assert.deepEqual(r.body.metricHeaders, [
      { name: 'sessions', type: 'TYPE_INTEGER' },
      { name: 'totalUsers', type: 'TYPE_INTEGER' },
    ]);
  });

  test('totals add up sessions but count a user once, so totalUsers is below the sum of rows', async () => {
    const r = await report(w.fake, w.token, LA, {
      dateRanges: [{ startDate: '2024-03-01', endDate: '2024-03-03' }],
      dimensions: [{ name: 'date' }],
      metrics: [{ name: 'sessions' }, { name: 'totalUsers' }],
      metricAggregations: ['TOTAL'],
    });
    const sum = (i: number): number => r.body.rows.reduce((s: number, row: Json) => s + Number(row.metricValues[i].value), 0);
    const [total] = r.body.totals;
    assert.deepEqual(total.dimensionValues, [{ value: 'RESERVED_TOTAL' }]);
    assert.equal(Number(total.metricValues[0].value), sum(0));
    assert.ok(Number(total.metricValues[1].value) < sum(1));
  });

  test("users overlap across a day's rows: the day's total is below their sum, the same for every report and the row by date alone", async () => {
    const metrics = ['sessions', 'totalUsers', 'activeUsers', 'newUsers', 'screenPageViews', 'eventCount'];
    const day = '2024-03-02';
    const ask = (dimensions: string[], start = day, end = day) =>
      report(w.fake, w.token, LA, {
        dateRanges: [{ startDate: start, endDate: end }],
        dimensions: ['date', ...dimensions].map((name) => ({ name })),
        metrics: metrics.map((name) => ({ name })),
        metricAggregations: ['TOTAL'],
      });
    const values = (row: Json): number[] => row.metricValues.map((v: Json) => Number(v.value));
    const byDateAlone = await ask([]);
    const dayRow = values(byDateAlone.body.rows[0]);
    assert.deepEqual(values(byDateAlone.body.totals[0]), dayRow, 'the TOTAL of one date by date alone is its row');
    for (const dimensions of [['country'], ['deviceCategory'], ['country', 'deviceCategory']]) {
      const r = await ask(dimensions);
      assert.deepEqual(values(r.body.totals[0]), dayRow, `the TOTAL by ${dimensions} is the row by date alone`);
      const rows = generateReport({ propertyId: LA, date: day, dimensions, metrics });
      assert.equal(r.body.rowCount, rows.length);
      const sums = metrics.map((_, i) => rows.reduce((n, row) => n + row.values[i]!, 0));
      for (const m of ['sessions', 'screenPageViews', 'eventCount']) assert.equal(sums[metrics.indexOf(m)], dayRow[metrics.indexOf(m)], `${m} add up`);
      for (const m of ['totalUsers', 'activeUsers', 'newUsers'])
        assert.ok(sums[metrics.indexOf(m)]! > dayRow[metrics.indexOf(m)]!, `${m}: rows count a user on each`);
      for (const row of rows) {
        const [s, users, active, fresh] = row.values as [number, number, number, number];
        assert.ok(users >= 1 && users <= s && active >= 1 && active <= users && fresh >= 0 && fresh <= users, JSON.stringify(row));
      }
    }
    // a range's total is its days' totals merged, whatever the dimensions: users counted once
    const week = await ask([], '2024-03-01', '2024-03-07');
    const byCountry = await ask(['country'], '2024-03-01', '2024-03-07');
    assert.deepEqual(values(byCountry.body.totals[0]), values(week.body.totals[0]));
    const dayRows = week.body.rows.map(values);
    assert.equal(
      values(week.body.totals[0])[0],
      dayRows.reduce((n: number, v: number[]) => n + v[0]!, 0),
    );
    assert.ok(values(week.body.totals[0])[1]! < dayRows.reduce((n: number, v: number[]) => n + v[1]!, 0));
  });

  test('several date ranges add a dateRange dimension; orderBys are honoured', async () => {
    const r = await report(w.fake, w.token, LA, {
      dateRanges: [
        { startDate: '2024-03-01', endDate: '2024-03-01' },
        { startDate: '2024-03-02', endDate: '2024-03-02', name: 'second' },
      ],
      dimensions: [{ name: 'deviceCategory' }],
      metrics: [{ name: 'sessions' }],
      orderBys: [{ dimension: { dimensionName: 'deviceCategory' } }, { metric: { metricName: 'sessions' }, desc: true }],
      limit: 50,
    });
    assert.deepEqual(r.body.dimensionHeaders, [{ name: 'deviceCategory' }, { name: 'dateRange' }]);
    const rows = r.body.rows.map((row: Json) => row.dimensionValues.map((v: Json) => v.value));
    assert.ok(rows.every((d: string[]) => d[1] === 'date_range_0' || d[1] === 'second'));
    assert.deepEqual(
      rows.map((d: string[]) => d[0]),
      [...rows.map((d: string[]) => d[0])].sort(),
    );
  });
});

describe('quota', () => {
  let w: World;
  before(async () => {
    w = await world();
  });
  after(() => w.fake.stop());

  test('each request consumes tokens, and an empty bucket answers 429 RESOURCE_EXHAUSTED', async () => {
    const first = await report(w.fake, w.token, LA, daily('yesterday', 'yesterday', { returnPropertyQuota: true }));
    const second = await report(w.fake, w.token, LA, daily('yesterday', 'yesterday', { returnPropertyQuota: true }));
    const q1 = first.body.propertyQuota;
    const q2 = second.body.propertyQuota;
    assert.deepEqual(Object.keys(q1).sort(), [
      'concurrentRequests',
      'potentiallyThresholdedRequestsPerHour',
      'serverErrorsPerProjectPerHour',
      'tokensPerDay',
      'tokensPerHour',
      'tokensPerProjectPerHour',
    ]);
    assert.ok(q1.tokensPerHour.consumed >= 1);
    assert.equal(q2.tokensPerDay.remaining, q1.tokensPerDay.remaining - q2.tokensPerDay.consumed);
    assert.ok(q2.tokensPerHour.remaining < q1.tokensPerHour.remaining);
    assert.equal(first.body.propertyQuota.tokensPerDay.remaining < 200_000, true);

    w.fake.setQuota(LA, { tokensPerHour: 1 });
    assert.equal((await report(w.fake, w.token, LA, daily('yesterday', 'yesterday'))).status, 200);
    const refused = await report(w.fake, w.token, LA, daily('yesterday', 'yesterday'));
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error.status, 'RESOURCE_EXHAUSTED');
    assert.match(refused.body.error.message, /^Exhausted property tokens per hour\./);
    // The next hour brings a fresh bucket.
    w.time.advance(3_600_000);
    const token = await accessToken(w.fake, w.key, w.time.now());
    assert.equal((await report(w.fake, token, LA, daily('yesterday', 'yesterday'))).status, 200);
  });

  test('a request costs more tokens for more columns, more days and more rows returned; its event says what it cost', async () => {
    const token = await accessToken(w.fake, w.key, w.time.now());
    const cost = async (body: Json): Promise<number> => {
      const r = await report(w.fake, token, NZ, { returnPropertyQuota: true, ...body });
      assert.equal(r.status, 200);
      const event = w.fake.events.filter((e) => e.kind === 'runReport').at(-1)!;
      assert.equal(event.tokens, r.body.propertyQuota.tokensPerDay.consumed);
      return event.tokens!;
    };
    // 1 + floor((columns - 1) / 6) + floor(days / 60) + floor(rowsReturned / 10,000)
    assert.equal(await cost(daily('2024-01-01', '2024-01-01')), 1);
    assert.equal(
      await cost(
        daily('2024-01-01', '2024-01-01', {
          metrics: ['sessions', 'totalUsers', 'screenPageViews', 'eventCount', 'newUsers', 'bounceRate'].map((name) => ({ name })),
        }),
      ),
      2,
    );
    assert.equal(await cost(daily('2023-01-01', '2023-12-31', { limit: 10 })), 1 + 6);
    const wide = { dimensions: ['date', 'city', 'pagePath'].map((name) => ({ name })), dateRanges: [{ startDate: '2024-01-01', endDate: '2024-02-28' }] };
    const rows = (await report(w.fake, token, NZ, { ...daily('x', 'x'), ...wide, limit: 1 })).body.rowCount as number;
    assert.ok(rows >= 10_000, `the fixture has ${rows} rows`);
    assert.equal(await cost({ ...daily('x', 'x'), ...wide, limit: 10_000 }), 1 + 1);
    assert.equal(await cost({ ...daily('x', 'x'), ...wide, limit: 10 }), 1);
    const last = w.fake.events.filter((e) => e.kind === 'runReport').at(-1)!;
    assert.deepEqual([last.dimensions, last.aggregations], [['date', 'city', 'pagePath'], []]);
  });

  test('more concurrent requests than the property allows get 429', async () => {
    const token = await accessToken(w.fake, w.key, w.time.now());
    w.fake.setQuota(NZ, { concurrentRequests: 2 });
    w.fake.inject({ endpoint: 'runReport', property: NZ, kind: 'delay', delayMs: 300 });
    const results = await Promise.all([1, 2, 3].map(() => report(w.fake, token, NZ, daily('yesterday', 'yesterday'))));
    w.fake.clearFaults();
    assert.deepEqual(results.map((r) => r.status).sort(), [200, 200, 429]);
    assert.equal(results.find((r) => r.status === 429)?.body.error.message, 'Exhausted concurrent requests quota.');
  });
});

describe('faults', () => {
  let w: World;
  before(async () => {
    w = await world();
  });
  after(() => w.fake.stop());

  test("status faults answer with Google's bodies, hit `times` requests, and are recorded", async () => {
    w.fake.inject({ endpoint: 'runReport', kind: 'status', status: 503, times: 1 });
    w.fake.inject({ endpoint: 'runReport', kind: 'status', status: 429, times: 1 });
    w.fake.inject({ endpoint: 'runReport', kind: 'status', status: 502, times: 1 });
    const a = await report(w.fake, w.token, LA, daily('yesterday', 'yesterday'));
    assert.deepEqual([a.status, a.body.error.status], [503, 'UNAVAILABLE']);
    const b = await report(w.fake, w.token, LA, daily('yesterday', 'yesterday'));
    assert.deepEqual([b.status, b.body.error.status], [429, 'RESOURCE_EXHAUSTED']);
    const res = await fetch(`${w.fake.apiRootUrl}v1beta/properties/${LA}:runReport`, {
      method: 'POST',
      headers: { authorization: `Bearer ${w.token}` },
      body: JSON.stringify(daily('yesterday', 'yesterday')),
    });
    assert.equal(res.status, 502);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    await res.text();
    assert.equal((await report(w.fake, w.token, LA, daily('yesterday', 'yesterday'))).status, 200);
    assert.deepEqual(
      w.fake.events.slice(-4).map((e) => [e.status, e.fault]),
      [
        [503, 'status:503'],
        [429, 'status:429'],
        [502, 'status:502'],
        [200, undefined],
      ],
    );
  });

  test('delay, reset and truncate', async () => {
    w.fake.inject({ endpoint: 'token', kind: 'delay', delayMs: 200, times: 1 });
    const t0 = performance.now();
    await accessToken(w.fake, w.key, w.time.now());
    assert.ok(performance.now() - t0 >= 190);

    w.fake.inject({ endpoint: 'runReport', kind: 'reset', times: 1 });
    await assert.rejects(report(w.fake, w.token, LA, daily('yesterday', 'yesterday')));
    assert.deepEqual([w.fake.events.at(-1)?.status, w.fake.events.at(-1)?.fault], [0, 'reset']);

    w.fake.inject({ endpoint: 'any', property: LA, kind: 'truncate', times: 1 });
    const res = await fetch(`${w.fake.apiRootUrl}v1beta/properties/${LA}:runReport`, {
      method: 'POST',
      headers: { authorization: `Bearer ${w.token}` },
      body: JSON.stringify(daily('yesterday', 'yesterday')),
    });
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.throws(() => JSON.parse(text));
    assert.equal(w.fake.events.at(-1)?.fault, 'truncate');
  });

  test('hang never answers, and stop() still returns promptly', async () => {
    const x = await world();
    x.fake.inject({ endpoint: 'runReport', kind: 'hang' });
    const pending = report(x.fake, x.token, LA, daily('yesterday', 'yesterday'));
    pending.catch(() => undefined);
    const outcome = await Promise.race([
      pending.then(
        () => 'answered',
        () => 'failed',
      ),
      new Promise((r) => setTimeout(() => r('still waiting'), 300)),
    ]);
    assert.equal(outcome, 'still waiting');
    assert.equal(x.fake.events.at(-1)?.fault, 'hang');
    const t0 = performance.now();
    await x.fake.stop();
    await x.fake.stop();
    assert.ok(performance.now() - t0 < 1000);
    assert.equal(
      await pending.then(
        () => 'answered',
        () => 'failed',
      ),
      'failed',
    );
  });

  test('rate-limited faults are reproducible from the seed', async () => {
    const statuses: number[][] = [];
    for (let run = 0; run < 2; run++) {
      const x = await world({ faultSeed: 7 });
      x.fake.inject({ endpoint: 'runReport', kind: 'status', status: 500, rate: 0.5 });
      const seen: number[] = [];
      for (let i = 0; i < 16; i++) seen.push((await report(x.fake, x.token, LA, daily('yesterday', 'yesterday'))).status);
      await x.fake.stop();
      statuses.push(seen);
    }
    assert.deepEqual(statuses[0], statuses[1]);
    const failures = statuses[0]?.filter((s) => s === 500).length ?? 0;
    assert.ok(failures > 0 && failures < 16, `${failures} failures`);
    const counts = w.fake.counts();
    assert.ok(counts.runReport > counts.runReportOk);
    assert.ok(counts.tokenOk >= 1);
  });
});

describe('revisions of recent days', () => {
  test('values of the last days change between calls, older days and later pages do not', async () => {
    const w = await world({ revision: { days: 2 } });
    try {
      const recent = daily('yesterday', 'yesterday');
      const a = await report(w.fake, w.token, LA, recent);
      const b = await report(w.fake, w.token, LA, recent);
      assert.notDeepEqual(a.body.rows, b.body.rows);
      assert.equal(w.fake.revisionOf(LA, '2024-03-09'), 2);
      const [expected] = generateReport({ propertyId: LA, date: '2024-03-09', dimensions: [], metrics: ['sessions', 'totalUsers'], revision: 2 });
      assert.deepEqual(
        b.body.rows[0].metricValues.map((v: Json) => Number(v.value)),
        expected?.values,
      );
      // A later page of the same listing keeps the revision of its first page.
      const later = await report(w.fake, w.token, LA, { ...recent, offset: 1 });
      assert.equal(later.body.rowCount, 1);
      assert.equal(w.fake.revisionOf(LA, '2024-03-09'), 2);
      const old = daily('2024-02-01', '2024-02-01');
      assert.deepEqual((await report(w.fake, w.token, LA, old)).body.rows, (await report(w.fake, w.token, LA, old)).body.rows);
    } finally {
      await w.fake.stop();
    }
  });
});

describe('revisions and totals', () => {
  test("a revised day's total is the row by date alone of the same revision", async () => {
    const w = await world({ revision: { days: 2 } });
    try {
      const body = {
        dateRanges: [{ startDate: 'yesterday', endDate: 'yesterday' }],
        dimensions: [{ name: 'date' }, { name: 'deviceCategory' }],
        metrics: [{ name: 'sessions' }, { name: 'totalUsers' }],
        metricAggregations: ['TOTAL'],
        orderBys: [{ dimension: { dimensionName: 'deviceCategory' } }],
      };
      await report(w.fake, w.token, LA, body);
      const r = await report(w.fake, w.token, LA, body);
      assert.equal(w.fake.revisionOf(LA, '2024-03-09'), 2);
      const [expected] = generateReport({ propertyId: LA, date: '2024-03-09', dimensions: [], metrics: ['sessions', 'totalUsers'], revision: 2 });
      assert.deepEqual(
        r.body.totals[0].metricValues.map((v: Json) => Number(v.value)),
        expected?.values,
      );
      const rows = generateReport({ propertyId: LA, date: '2024-03-09', dimensions: ['deviceCategory'], metrics: ['sessions', 'totalUsers'], revision: 2 });
      assert.deepEqual(
        r.body.rows.map((row: Json) => row.metricValues.map((v: Json) => Number(v.value))),
        rows.map((row) => row.values),
      );
    } finally {
      await w.fake.stop();
    }
  });
});

describe('generator', () => {
  test('is a pure function with varying row counts and consistent types', () => {
    const args = { propertyId: LA, date: '2024-03-01', dimensions: ['country', 'pagePath'], metrics: ['sessions', 'engagementRate'] };
    assert.deepEqual(generateReport(args), generateReport(args));
    const counts = ['2024-03-01', '2024-03-02', '2024-03-03', '2024-03-04'].map((date) => generateReport({ ...args, date }).length);
    assert.ok(new Set(counts).size > 1, `row counts ${counts.join(',')}`);
    assert.ok(Math.max(...counts) > 100);
    for (const row of generateReport(args)) {
      assert.ok(Number.isInteger(row.values[0]));
      assert.ok((row.values[1] ?? -1) >= 0 && (row.values[1] ?? 2) <= 1);
    }
    assert.equal(metricType('sessions'), 'TYPE_INTEGER');
    assert.equal(metricType('averageSessionDuration'), 'TYPE_SECONDS');
    assert.equal(metricType('totalRevenue'), 'TYPE_CURRENCY');
    assert.equal(metricType('fooBar'), undefined);
    assert.ok(isKnownDimension('customEvent:plan'));
    assert.ok(!isKnownDimension('fooBar'));
  });
});
