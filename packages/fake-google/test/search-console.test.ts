/**
 * The fake Search Console API must answer as Google's does: scopes and site permissions in
 * Google's words, both spellings of a site URL in the path, paging by startRow/rowLimit, rows
 * sorted and aggregated consistently, anonymized queries left out of query groupings, final
 * data three Pacific days behind, fresh days that keep changing, and the refusals Google gives.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSign } from 'node:crypto';
import { FakeGoogle, type ServiceAccountKeyJson } from '../src/index.js';

const WEBMASTERS = 'https://www.googleapis.com/auth/webmasters.readonly';
const ANALYTICS = 'https://www.googleapis.com/auth/analytics.readonly';
const EMAIL = 'collector@test-project.iam.gserviceaccount.com';
const OTHER = 'stranger@test-project.iam.gserviceaccount.com';
const DOMAIN = 'sc-domain:example.com';
const PREFIX = 'https://www.example.org/';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

/** 2024-03-10T11:30Z is 04:30 (PDT) on 2024-03-10 in Los Angeles, Search Console's calendar. */
function clock(startIso = '2024-03-10T11:30:00Z'): { now: () => number; advance: (ms: number) => void } {
  let t = Date.parse(startIso);
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
  };
}

async function tokenFor(fake: FakeGoogle, key: ServiceAccountKeyJson, nowMs: number, scope: string): Promise<string> {
  const enc = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  const iat = Math.floor(nowMs / 1000);
  const input = `${enc({ alg: 'RS256', typ: 'JWT', kid: key.private_key_id })}.${enc({ iss: key.client_email, scope, aud: fake.tokenUrl, iat, exp: iat + 3600 })}`;
  const assertion = `${input}.${createSign('RSA-SHA256').update(input).sign(key.private_key).toString('base64url')}`;
  const res = await fetch(fake.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }),
  });
  const body = (await res.json()) as Json;
  assert.equal(res.status, 200, JSON.stringify(body));
  return body.access_token as string;
}

interface World {
  fake: FakeGoogle;
  token: string;
  otherToken: string;
  time: ReturnType<typeof clock>;
}

async function world(): Promise<World> {
  const time = clock();
  const fake = new FakeGoogle({ now: time.now });
  await fake.start();
  const key = fake.createAccount(EMAIL);
  const other = fake.createAccount(OTHER);
  fake.addSite({ url: DOMAIN });
  fake.addSite({ url: PREFIX, queries: 60, pages: 20, anonymizedShare: 0.3 });
  fake.grantSite(EMAIL, DOMAIN);
  fake.grantSite(EMAIL, PREFIX, 'siteOwner');
  return {
    fake,
    time,
    token: await tokenFor(fake, key, time.now(), `${ANALYTICS} ${WEBMASTERS}`),
    otherToken: await tokenFor(fake, other, time.now(), WEBMASTERS),
  };
}

async function query(w: World, site: string, body: unknown, token = w.token): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${w.fake.searchConsoleRootUrl}webmasters/v3/sites/${encodeURIComponent(site)}/searchAnalytics/query`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

async function get(w: World, path: string, token = w.token): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${w.fake.searchConsoleRootUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as Json };
}

/** Every row of a query, paged as the collector pages (rowLimit, startRow until a page has no rows). */
async function allPages(w: World, site: string, body: Json, rowLimit: number): Promise<Json[]> {
  const rows: Json[] = [];
  for (let startRow = 0; ; startRow += rowLimit) {
    const page = await query(w, site, { ...body, rowLimit, startRow });
    assert.equal(page.status, 200, JSON.stringify(page.body));
    if (!page.body.rows) return rows;
    rows.push(...(page.body.rows as Json[]));
  }
}

const sum = (rows: Array<{ clicks: number }>): number => rows.reduce((n, r) => n + r.clicks, 0);

describe('Search Console: access', () => {
  let w: World;
  before(async () => {
    w = await world();
  });
  after(() => w.fake.stop());

  test('a token without a webmasters scope gets 403 insufficient scopes; none at all 401', async () => {
    const key = w.fake.createAccount('analytics-only@test-project.iam.gserviceaccount.com');
    w.fake.grantSite(key.client_email, DOMAIN);
    const token = await tokenFor(w.fake, key, w.time.now(), ANALYTICS);
    const refused = await query(w, DOMAIN, { startDate: '2024-03-01', endDate: '2024-03-01' }, token);
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.status, 'PERMISSION_DENIED');
    assert.equal(refused.body.error.message, 'Request had insufficient authentication scopes.');
    assert.equal(refused.body.error.details[0].reason, 'ACCESS_TOKEN_SCOPE_INSUFFICIENT');
    const res = await fetch(`${w.fake.searchConsoleRootUrl}webmasters/v3/sites`);
    assert.equal(res.status, 401);
  });

  test("a stranger, an unknown site and an unverified user get Google's 403 for the site", async () => {
    const expect = (site: string): string =>
      `User does not have sufficient permission for site '${site}'. See also: https://support.google.com/webmasters/answer/2451999.`;
    const body = { startDate: '2024-03-01', endDate: '2024-03-01' };
    const stranger = await query(w, DOMAIN, body, w.otherToken);
    assert.equal(stranger.status, 403);
    assert.deepEqual(stranger.body.error.errors, [{ message: expect(DOMAIN), domain: 'global', reason: 'forbidden' }]);
    assert.equal(stranger.body.error.status, 'PERMISSION_DENIED');
    const unknown = await query(w, 'sc-domain:nowhere.example', body);
    assert.equal(unknown.status, 403);
    assert.equal(unknown.body.error.message, expect('sc-domain:nowhere.example'));
    // a URL-prefix property is spelled with its trailing slash; without it, it is another (unknown) site
    assert.equal((await query(w, PREFIX.slice(0, -1), body)).status, 403);

    w.fake.grantSite(OTHER, DOMAIN, 'siteUnverifiedUser');
    const seen = await get(w, `webmasters/v3/sites/${encodeURIComponent(DOMAIN)}`, w.otherToken);
    assert.deepEqual(seen.body, { siteUrl: DOMAIN, permissionLevel: 'siteUnverifiedUser' });
    assert.equal((await query(w, DOMAIN, body, w.otherToken)).status, 403);
    w.fake.grantSite(OTHER, DOMAIN, 'siteRestrictedUser');
    assert.equal((await query(w, DOMAIN, body, w.otherToken)).status, 200);
    w.fake.revokeSite(OTHER, DOMAIN);
    assert.equal((await query(w, DOMAIN, body, w.otherToken)).status, 403);
    assert.equal((await get(w, `webmasters/v3/sites/${encodeURIComponent(DOMAIN)}`, w.otherToken)).status, 403);
  });

  test('sites.list and sites.get, with both spellings of a site URL percent-encoded in the path', async () => {
    const list = await get(w, 'webmasters/v3/sites');
    assert.equal(list.status, 200);
    assert.deepEqual(list.body, {
      siteEntry: [
        { siteUrl: PREFIX, permissionLevel: 'siteOwner' },
        { siteUrl: DOMAIN, permissionLevel: 'siteFullUser' },
      ],
    });
    assert.deepEqual((await get(w, 'webmasters/v3/sites/sc-domain%3Aexample.com')).body, { siteUrl: DOMAIN, permissionLevel: 'siteFullUser' });
    assert.deepEqual((await get(w, 'webmasters/v3/sites/https%3A%2F%2Fwww.example.org%2F')).body, { siteUrl: PREFIX, permissionLevel: 'siteOwner' });
    const domainRows = await query(w, DOMAIN, { startDate: '2024-03-01', endDate: '2024-03-01', dimensions: ['page'] });
    assert.ok(domainRows.body.rows.every((r: Json) => r.keys[0].startsWith('https://www.example.com/')));
    const prefixRows = await query(w, PREFIX, { startDate: '2024-03-01', endDate: '2024-03-01', dimensions: ['page'] });
    assert.ok(prefixRows.body.rows.every((r: Json) => r.keys[0].startsWith(PREFIX)));
    assert.deepEqual((await get(w, 'webmasters/v3/sites', w.otherToken)).body, {});
  });
});

describe('Search Console: data', () => {
  let w: World;
  before(async () => {
    w = await world();
  });
  after(() => w.fake.stop());

  test("all pages together are exactly searchAnalyticsRows, in Google's order; a page past the end has no rows", async () => {
    const q = { startDate: '2024-02-01', endDate: '2024-02-07', dimensions: ['date', 'query', 'page', 'country', 'device'] };
    const expected = w.fake.searchAnalyticsRows(PREFIX, q);
    assert.ok(expected.length > 100, `${expected.length} rows`);
    const rows = await allPages(w, PREFIX, q, 97);
    assert.deepEqual(rows, expected);
    // date ascending, then clicks descending
    for (let i = 1; i < rows.length; i++) {
      const [a, b] = [rows[i - 1]!, rows[i]!];
      assert.ok(a.keys[0] < b.keys[0] || (a.keys[0] === b.keys[0] && a.clicks >= b.clicks), `row ${i}`);
    }
    for (const r of rows) {
      assert.equal(r.ctr, r.clicks / r.impressions);
      assert.ok(r.position >= 1 && r.clicks <= r.impressions && Number.isInteger(r.clicks));
      assert.match(r.keys[3], /^[a-z]{3}$/);
      assert.ok(['DESKTOP', 'MOBILE', 'TABLET'].includes(r.keys[4]));
    }
    const past = await query(w, PREFIX, { ...q, startRow: expected.length, rowLimit: 10 });
    assert.deepEqual(past.body, { responseAggregationType: 'byPage' });
    const byClicks = await query(w, PREFIX, { startDate: '2024-02-01', endDate: '2024-02-07', dimensions: ['query'] });
    const clicks = (byClicks.body.rows as Json[]).map((r) => r.clicks);
    assert.deepEqual(
      clicks,
      [...clicks].sort((a, b) => b - a),
    );
    assert.equal(byClicks.body.responseAggregationType, 'byProperty');
    assert.equal(byClicks.body.rows.length, 60, 'every query, default rowLimit 1000');
  });

  test('groupings add up; anonymized queries are left out of query groupings only', async () => {
    const range = { startDate: '2024-01-01', endDate: '2024-01-31' };
    const byDate = w.fake.searchAnalyticsRows(PREFIX, { ...range, dimensions: ['date'] });
    assert.equal(byDate.length, 31);
    const total = sum(byDate);
    const impressions = (rows: Array<{ impressions: number }>): number => rows.reduce((n, r) => n + r.impressions, 0);
    for (const dims of [['country'], ['device'], ['date', 'country', 'device'], []]) {
      const rows = w.fake.searchAnalyticsRows(PREFIX, { ...range, dimensions: dims });
      assert.equal(sum(rows), total, dims.join(','));
      assert.equal(impressions(rows), impressions(byDate), dims.join(','));
    }
    // by page, a search that showed two pages is an impression of each; clicks are the same
    for (const q of [{ dimensions: ['page'] }, { dimensions: ['date', 'country', 'device', 'page'] }, { dimensions: ['date'], aggregationType: 'byPage' }]) {
      const rows = w.fake.searchAnalyticsRows(PREFIX, { ...range, ...q });
      assert.equal(sum(rows), total);
      assert.ok(impressions(rows) > impressions(byDate), JSON.stringify(q));
    }
    const withQuery = sum(w.fake.searchAnalyticsRows(PREFIX, { ...range, dimensions: ['query'] }));
    assert.equal(sum(w.fake.searchAnalyticsRows(PREFIX, { ...range, dimensions: ['query', 'page'] })), withQuery);
    const anonymized = (total - withQuery) / total;
    assert.ok(anonymized > 0.2 && anonymized < 0.4, `anonymized share ${anonymized} (site asks 0.3)`);
    // impression-weighted position: the day's position is between its rows' extremes
    const day = w.fake.searchAnalyticsRows(PREFIX, { startDate: '2024-01-05', endDate: '2024-01-05', dimensions: ['device'] });
    const whole = w.fake.searchAnalyticsRows(PREFIX, { startDate: '2024-01-05', endDate: '2024-01-05', dimensions: [] })[0]!;
    const weighted = day.reduce((n, r) => n + r.position * r.impressions, 0) / whole.impressions;
    assert.ok(Math.abs(weighted - whole.position) < 1e-9);
    // other search types have their own, smaller data
    const images = sum(w.fake.searchAnalyticsRows(PREFIX, { ...range, dimensions: ['date'], type: 'image' }));
    assert.ok(images > 0 && images < total);
    const legacy = await query(w, PREFIX, { ...range, dimensions: ['date'], searchType: 'image' });
    assert.equal(sum(legacy.body.rows), images);
  });

  test('final data ends at Pacific today-3, all reaches today; older than 16 months has none', async () => {
    assert.equal(w.fake.searchConsoleToday(), '2024-03-10');
    const range = { startDate: '2024-03-01', endDate: '2024-03-10', dimensions: ['date'] };
    const final = await query(w, DOMAIN, range);
    assert.equal(final.body.rows.at(-1).keys[0], '2024-03-07');
    assert.equal(final.body.metadata, undefined);
    const fresh = await query(w, DOMAIN, { ...range, dataState: 'all' });
    assert.deepEqual(
      (fresh.body.rows as Json[]).slice(-3).map((r) => r.keys[0]),
      ['2024-03-08', '2024-03-09', '2024-03-10'],
    );
    assert.deepEqual(fresh.body.metadata, { firstIncompleteDate: '2024-03-08' });
    const old = await query(w, DOMAIN, { startDate: '2022-10-01', endDate: '2022-11-30', dimensions: ['date'] });
    assert.equal(old.body.rows.at(0).keys[0], '2022-11-10');
    assert.equal((await query(w, DOMAIN, { startDate: '2022-10-01', endDate: '2022-10-31' })).body.rows, undefined);
  });

  test('fresh days change with the hours, final days never', async () => {
    const range = { startDate: '2024-03-05', endDate: '2024-03-09', dimensions: ['date'], dataState: 'all' as const };
    const before = w.fake.searchAnalyticsRows(DOMAIN, range);
    w.time.advance(3_600_000);
    const after = w.fake.searchAnalyticsRows(DOMAIN, range);
    const at = (rows: Json[], date: string): Json | undefined => rows.find((r) => r.keys[0] === date);
    assert.deepEqual(at(after, '2024-03-06'), at(before, '2024-03-06'));
    assert.deepEqual(at(after, '2024-03-07'), at(before, '2024-03-07'));
    assert.ok(at(after, '2024-03-09')!.impressions > at(before, '2024-03-09')!.impressions);
    // once the day is final, it has its final values
    const finalLater = w.fake.searchAnalyticsRows(DOMAIN, { ...range, dataState: 'final' });
    w.time.advance(2 * 86_400_000);
    assert.ok(at(w.fake.searchAnalyticsRows(DOMAIN, { ...range, dataState: 'final' }), '2024-03-09'));
    assert.deepEqual(at(w.fake.searchAnalyticsRows(DOMAIN, { ...range, dataState: 'final' }), '2024-03-07'), at(finalLater, '2024-03-07'));
  });
});

describe('Search Console: refusals, quota and faults', () => {
  let w: World;
  before(async () => {
    w = await world();
  });
  after(() => w.fake.stop());

  test("refuses searchAppearance with another dimension, byProperty with page, and bad fields, in Google's words", async () => {
    const base = { startDate: '2024-03-01', endDate: '2024-03-01' };
    const mixed = await query(w, DOMAIN, { ...base, dimensions: ['date', 'searchAppearance'] });
    assert.equal(mixed.status, 400);
    assert.equal(mixed.body.error.status, 'INVALID_ARGUMENT');
    assert.equal(mixed.body.error.message, 'Cannot group by search appearance dimension together with another dimension.');
    const alone = await query(w, DOMAIN, { ...base, dimensions: ['SEARCH_APPEARANCE'] });
    assert.equal(alone.status, 200);
    assert.ok(alone.body.rows.length > 0 && sum(alone.body.rows) < sum((await query(w, DOMAIN, base)).body.rows));
    assert.equal((await query(w, DOMAIN, { ...base, dimensions: ['page'], aggregationType: 'byProperty' })).status, 400);
    assert.equal((await query(w, DOMAIN, { ...base, dimensions: ['page'], aggregationType: 'byPage' })).body.responseAggregationType, 'byPage');
    assert.equal((await query(w, DOMAIN, { ...base, dimensions: ['query'], aggregationType: 'BY_PAGE' })).body.responseAggregationType, 'byPage');
    for (const bad of [
      { ...base, dimensions: ['sessions'] },
      { ...base, rowLimit: 25_001 },
      { ...base, startRow: -1 },
      { ...base, type: 'shopping' },
      { ...base, dataState: 'fresh' },
      { startDate: '2024-03-01' },
      { ...base, startDate: '2024-3-1' },
      { ...base, nope: 1 },
      '{"startDate":',
    ]) {
      const r = await query(w, DOMAIN, bad);
      assert.equal(r.status, 400, JSON.stringify(bad));
      assert.equal(r.body.error.status, 'INVALID_ARGUMENT');
    }
    assert.equal((await query(w, DOMAIN, { ...base, rowLimit: '25000', startRow: '0', dimensionFilterGroups: [] })).status, 200);
    const pageFilter = { groupType: 'and', filters: [{ dimension: 'page', operator: 'contains', expression: '/BLOG/' }] };
    assert.equal((await query(w, DOMAIN, { ...base, dimensionFilterGroups: [pageFilter], aggregationType: 'byProperty' })).status, 400);
    const badRegex = { filters: [{ dimension: 'query', operator: 'includingRegex', expression: '(' }] };
    assert.equal((await query(w, DOMAIN, { ...base, dimensionFilterGroups: [badRegex] })).status, 400);
  });

  test('dimension filters keep the rows that pass them all; filtering by page aggregates by page', async () => {
    const range = { startDate: '2024-02-01', endDate: '2024-02-10' };
    const all = w.fake.searchAnalyticsRows(PREFIX, { ...range, dimensions: ['query', 'device'] });
    const filters = [
      { dimension: 'device', expression: 'MOBILE' },
      { dimension: 'query', operator: 'contains' as const, expression: 'BEST' },
    ];
    const kept = await query(w, PREFIX, { ...range, dimensions: ['query', 'device'], rowLimit: 25_000, dimensionFilterGroups: [{ filters }] });
    const expected = all.filter((r) => r.keys[1] === 'MOBILE' && r.keys[0]!.includes('best'));
    assert.ok(expected.length > 0);
    assert.deepEqual(kept.body.rows, expected);
    assert.equal(kept.body.responseAggregationType, 'byProperty');
    const onPage = await query(w, PREFIX, {
      ...range,
      dimensions: ['country'],
      dimensionFilterGroups: [{ filters: [{ dimension: 'page', operator: 'includingRegex', expression: '^https://www\\.example\\.org/blog/' }] }],
    });
    assert.equal(onPage.body.responseAggregationType, 'byPage');
    const blog = w.fake.searchAnalyticsRows(PREFIX, { ...range, dimensions: ['page'] }).filter((r) => r.keys[0]!.includes('/blog/'));
    assert.equal(sum(onPage.body.rows), sum(blog));
  });

  test('more queries per minute than the site allows get 429 RESOURCE_EXHAUSTED; the next minute passes', async () => {
    w.time.advance(61_000); // a minute without earlier tests' queries
    w.fake.setSearchConsoleQuota(PREFIX, { queriesPerMinute: 2 });
    const body = { startDate: '2024-03-01', endDate: '2024-03-01' };
    assert.equal((await query(w, PREFIX, body)).status, 200);
    assert.equal((await query(w, PREFIX, body)).status, 200);
    const refused = await query(w, PREFIX, body);
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error.status, 'RESOURCE_EXHAUSTED');
    assert.equal(refused.body.error.errors[0].reason, 'rateLimitExceeded');
    assert.equal((await query(w, DOMAIN, body)).status, 200, 'the quota is per site');
    w.time.advance(61_000);
    assert.equal((await query(w, PREFIX, body)).status, 200);
    w.fake.setSearchConsoleQuota(PREFIX, { queriesPerMinute: 1_200 });
  });

  test('faults hit searchAnalytics by site and are recorded in events', async () => {
    const seen = w.fake.events.length;
    w.fake.inject({ endpoint: 'searchAnalytics', site: DOMAIN, kind: 'status', status: 503, times: 1 });
    w.fake.inject({ endpoint: 'searchAnalytics', site: DOMAIN, kind: 'truncate', times: 1, match: (r) => r.offset > 0 });
    const body = { startDate: '2024-03-01', endDate: '2024-03-01', dimensions: ['query'], rowLimit: 5 };
    assert.equal((await query(w, PREFIX, body)).status, 200, 'another site is not hit');
    assert.equal((await query(w, DOMAIN, body)).status, 503);
    assert.equal((await query(w, DOMAIN, body)).status, 200);
    const res = await fetch(`${w.fake.searchConsoleRootUrl}webmasters/v3/sites/${encodeURIComponent(DOMAIN)}/searchAnalytics/query`, {
      method: 'POST',
      headers: { authorization: `Bearer ${w.token}` },
      body: JSON.stringify({ ...body, startRow: 5 }),
    });
    await assert.rejects(async () => JSON.parse(await res.text()) as unknown);
    const events = w.fake.events.slice(seen).filter((e) => e.kind === 'searchAnalytics');
    assert.deepEqual(
      events.map((e) => [e.site, e.status, e.fault, e.startRow, e.rowLimit, e.rows, e.dataState, e.startDate, e.endDate]),
      [
        [PREFIX, 200, undefined, 0, 5, 5, 'final', '2024-03-01', '2024-03-01'],
        [DOMAIN, 503, 'status:503', undefined, undefined, undefined, undefined, undefined, undefined],
        [DOMAIN, 200, undefined, 0, 5, 5, 'final', '2024-03-01', '2024-03-01'],
        [DOMAIN, 200, 'truncate', 5, 5, 5, 'final', '2024-03-01', '2024-03-01'],
      ],
    );
  });

  test('reset, html, hang and delay hit searchAnalytics and sites like runReport', async () => {
    const url = `${w.fake.searchConsoleRootUrl}webmasters/v3/sites/${encodeURIComponent(PREFIX)}/searchAnalytics/query`;
    const post = (signal?: AbortSignal): Promise<Response> =>
      fetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${w.token}` },
        body: JSON.stringify({ startDate: '2024-03-01', endDate: '2024-03-01' }),
        ...(signal ? { signal } : {}),
      });
    w.fake.inject({ endpoint: 'searchAnalytics', site: PREFIX, kind: 'reset', times: 1 });
    await assert.rejects(post());
    w.fake.inject({ endpoint: 'searchAnalytics', site: PREFIX, kind: 'html', times: 1 });
    const html = await post();
    assert.equal(html.status, 200);
    assert.match(html.headers.get('content-type') ?? '', /^text\/html/);
    w.fake.inject({ endpoint: 'searchAnalytics', site: PREFIX, kind: 'hang', times: 1 });
    await assert.rejects(post(AbortSignal.timeout(200)));
    w.fake.inject({ endpoint: 'sites', site: PREFIX, kind: 'delay', delayMs: 150, times: 1 });
    const started = Date.now();
    const got = await get(w, `webmasters/v3/sites/${encodeURIComponent(PREFIX)}`);
    assert.equal(got.status, 200);
    assert.ok(Date.now() - started >= 140);
    assert.equal((await post()).status, 200);
  });
});
