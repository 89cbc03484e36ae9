/**
 * Everything Google does wrong: retryable failures are retried with backoff, quota is respected,
 * permanent errors fail fast with a fix, token trouble is survived or reported, malformed
 * responses never become data. Each against the fake Google's fault injection.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generateReport } from '@ga-collector/fake-google';
import type { Daemon } from '../src/daemon.js';
import { logLines, makeDaemon, metricSum, runCli, startFake, testDb, waitFor, writeConfig, type FakeSetup, type TestDb, SA_EMAIL } from './helpers.js';
import { parsePage } from '../src/ga4/responses.js';
import { RetryableError } from '../src/errors.js';
import { createLogger } from '../src/log.js';

const P = '700001';
const Q = '700002';
const daily = { metrics: ['sessions', 'screenPageViews'], startDate: '6daysAgo', refreshDays: 2 };

async function assertExact(db: TestDb, property: string, report = 'daily', metrics = daily.metrics) {
  const rows = await db.query<{ date: string; n: string; a: string; b: string }>(
    `SELECT to_char(date,'YYYY-MM-DD') AS date, count(*) AS n, sum(sessions)::text AS a, sum(screen_page_views)::text AS b FROM "${db.schema}"."${report}" WHERE property_id = $1 GROUP BY date ORDER BY date`,
    [property],
  );
  assert.ok(rows.length > 0, `${property}: data stored`);
  for (const r of rows) {
    const want = generateReport({ propertyId: property, date: r.date, dimensions: [], metrics });
    assert.equal(Number(r.n), 1, `${property} ${r.date}: one row, no duplicates`);
    assert.deepEqual([Number(r.a), Number(r.b)], [want[0]!.values[0], want[0]!.values[1]], `${property} ${r.date}`);
  }
  return rows.length;
}

describe('retryable failures', () => {
  let db: TestDb;
  let g: FakeSetup;
  let daemon: Daemon | undefined;
  before(async () => {
    db = await testDb('retry');
    g = await startFake([
      { id: P, timeZone: 'UTC' },
      { id: Q, timeZone: 'UTC' },
    ]);
  });
  after(async () => {
    await daemon?.stop(0);
    await g.stop();
    await db.drop();
  });

  for (const [name, fault] of [
    ['429 RESOURCE_EXHAUSTED (rate)', { kind: 'status', status: 429, message: 'Too many concurrent requests.' }],
    ['500 INTERNAL', { kind: 'status', status: 500 }],
    ['502 from the front end', { kind: 'status', status: 502 }],
    ['503 UNAVAILABLE', { kind: 'status', status: 503 }],
    ['504 DEADLINE_EXCEEDED', { kind: 'status', status: 504 }],
    ['a connection reset', { kind: 'reset' }],
    ['a truncated 200 body', { kind: 'truncate' }],
    ["a 200 body that is not JSON (a proxy's text)", { kind: 'garbage' }],
    ['a 200 HTML page (text/html) from a proxy', { kind: 'html' }],
    ['a request that hangs past the timeout', { kind: 'hang' }],
    ['headers and half a body, then a stall past the timeout', { kind: 'stall' }],
  ] as const) {
    it(`${name}: backs off, retries and stores exactly Google's data`, async () => {
      await db.pool.query(`DROP SCHEMA IF EXISTS "${db.schema}" CASCADE`);
      daemon = await makeDaemon(db, g, { properties: [{ id: P }], reports: { daily }, fetch: { timeoutSeconds: 1, maxAttempts: 4 } }, { backoffBaseMs: 20 });
      g.fake.clearFaults();
      g.fake.events.length = 0;
      g.fake.inject({ endpoint: 'runReport', property: P, times: 2, ...fault });
      const [r] = await daemon.scheduler.runOnce();
      assert.equal(r!.ok, true, r!.error);
      assert.equal(await assertExact(db, P), 6);
      const hit = g.fake.events.filter((e) => e.fault);
      assert.equal(hit.length, 2, 'both injected faults were met');
      const text = await daemon.metrics.text();
      const code = fault.kind === 'status' ? String(fault.status) : ['truncate', 'garbage', 'html'].includes(fault.kind) ? '200' : 'error';
      assert.ok(metricSum(text, 'ga_collector_api_requests_total', { property: P, code }) >= 2, `api_requests_total{code="${code}"}`);
      await daemon.stop(0);
      daemon = undefined;
    });
  }

  it('gives up after fetch.maxAttempts and fails the job with the last error; the other property carries on', async () => {
    await db.pool.query(`DROP SCHEMA IF EXISTS "${db.schema}" CASCADE`);
    daemon = await makeDaemon(db, g, { properties: [{ id: P }, { id: Q }], reports: { daily }, fetch: { maxAttempts: 3 } }, { backoffBaseMs: 10 });
    g.fake.clearFaults();
    g.fake.events.length = 0;
    g.fake.inject({ endpoint: 'runReport', property: P, kind: 'status', status: 503 });
    const results = await daemon.scheduler.runOnce();
    const bad = results.find((x) => !x.ok)!;
    assert.match(bad.error!, new RegExp(`property ${P}.*503`));
    assert.equal(g.fake.events.filter((e) => e.property === P && e.kind === 'runReport').length, 3, 'three attempts');
    await assertExact(db, Q);
    const text = await daemon.metrics.text();
    assert.equal(metricSum(text, 'ga_collector_fetch_runs_total', { property: P, outcome: 'failure' }), 1);
    assert.equal(metricSum(text, 'ga_collector_fetch_runs_total', { property: Q, outcome: 'success' }), 1);
    await daemon.stop(0);
    daemon = undefined;
  });
});

describe('a page that fails after its status line', () => {
  const dataPage = (r: { limit: number }) => r.limit !== 1;

  it('run --once: a data page answered 200 with half its JSON, then with an HTML page, and a rowCount that changes between pages, all end exact in one run (exit 0)', async () => {
    const db = await testDb('after200');
    const g = await startFake([{ id: P, timeZone: 'UTC' }], { maxPageSize: 2 });
    try {
      g.fake.inject({ endpoint: 'runReport', kind: 'truncate', times: 1, match: dataPage });
      g.fake.inject({ endpoint: 'runReport', kind: 'html', times: 1, match: dataPage });
      g.fake.inject({
        endpoint: 'runReport',
        kind: 'rewrite',
        times: 1,
        match: (r) => r.offset > 0,
        rewrite: (body) => ({ ...body, rowCount: Number(body['rowCount']) + 1 }),
      });
      const config = writeConfig(g.dir, db, g, { properties: [{ id: P }], reports: { daily } });
      const r = await runCli(['run', '--once', '--config', config]);
      assert.equal(r.code, 0, r.stderr + r.stdout.slice(-2000));
      assert.equal(await assertExact(db, P), 6);
      const events = logLines(r.stdout);
      const retries = events.filter((e) => e['event'] === 'api_retry').map((e) => String(e['err']));
      assert.ok(
        retries.some((m) => /response body is not JSON|response body ended inside its rows/.test(m)),
        'the half body was retried',
      );
      assert.ok(
        retries.some((m) => /answered 200 with text\/html instead of JSON/.test(m)),
        'the HTML page was retried',
      );
      assert.ok(
        events.some((e) => e['event'] === 'listing_restart' && /rowCount changed between pages/.test(String(e['err']))),
        'the changed listing was read again',
      );
      const starts = g.fake.events.filter((e) => e.kind === 'runReport' && e.limit !== 1 && e.offset === 0 && e.status === 200 && !e.fault);
      assert.equal(starts.length, 2, 'the listing was read from its first page twice');
    } finally {
      await g.stop();
      await db.drop();
    }
  });
});

describe('quota and server errors', () => {
  it('stops hammering a property that keeps answering 5xx; others carry on', async () => {
    const db = await testDb('budget');
    const g = await startFake([
      { id: P, timeZone: 'UTC' },
      { id: Q, timeZone: 'UTC' },
    ]);
    const daemon = await makeDaemon(
      db,
      g,
      { properties: [{ id: P }, { id: Q }], reports: { daily, other: daily }, fetch: { maxAttempts: 10, maxServerErrorsPerHour: 4 } },
      { backoffBaseMs: 5 },
    );
    try {
      g.fake.inject({ endpoint: 'runReport', property: P, kind: 'status', status: 500 });
      const results = await daemon.scheduler.runOnce();
      assert.equal(results.filter((r) => r.ok).length, 2, 'both reports of the healthy property');
      const failed = results.filter((r) => !r.ok);
      assert.equal(failed.length, 2);
      for (const f of failed) {
        assert.ok(f.deferUntil! > Date.now() + 50 * 60_000, 'deferred by about an hour');
      }
      assert.match(failed.map((f) => f.error).join(' '), /server errors in the last hour/);
      // the budget, plus at most the one request of the other report already in flight when it ran out
      const hits = g.fake.events.filter((e) => e.property === P && e.kind === 'runReport').length;
      assert.ok(hits >= 4 && hits <= 5, `no more than the budget of server errors (${hits})`);
      await assertExact(db, Q);
    } finally {
      await daemon.stop(0);
      await g.stop();
      await db.drop();
    }
  });

  it('defers the backlog when quota falls below the reserve, and exports the remaining tokens', async () => {
    const db = await testDb('quota');
    const g = await startFake([
      { id: P, timeZone: 'UTC' },
      { id: Q, timeZone: 'UTC' },
    ]);
    const daemon = await makeDaemon(db, g, {
      properties: [{ id: P }, { id: Q }],
      reports: { daily: { ...daily, startDate: '60daysAgo' } },
      fetch: { maxDaysPerRun: 10, quotaReserve: 0.1 },
    });
    try {
      g.fake.setQuota(P, { tokensPerHour: 4_002 }); // just above 10% of the standard 40,000 an hour
      const results = await daemon.scheduler.runOnce();
      const p = results[0]!;
      assert.equal(p.ok, true, p.error);
      assert.ok(p.deferUntil !== undefined && p.deferUntil > Date.now(), 'deferred to the next hour');
      assert.ok((p.remaining ?? 0) > 0, 'with a backlog left');
      assert.equal(results[1]!.ok, true);
      assert.equal(results[1]!.deferUntil, undefined, 'the other property has quota');
      const text = await daemon.metrics.text();
      const hour = metricSum(text, 'ga_collector_quota_tokens_remaining', { property: P, window: 'hour' });
      assert.ok(hour > 0 && hour < 4_000, `hourly tokens remaining exported (${hour})`);
      assert.ok(metricSum(text, 'ga_collector_quota_tokens_remaining', { property: Q, window: 'day' }) > 190_000);
      assert.ok(metricSum(text, 'ga_collector_dates_pending', { property: P, report: 'daily' }) > 0, 'the deferred backlog is visible');
    } finally {
      await daemon.stop(0);
      await g.stop();
      await db.drop();
    }
  });

  it('an exhausted hourly quota (429) defers the job to the next hour instead of retrying', async () => {
    const db = await testDb('quota429');
    const g = await startFake([{ id: P, timeZone: 'UTC' }]);
    const daemon = await makeDaemon(db, g, { properties: [{ id: P }], reports: { daily }, fetch: { quotaReserve: 0 } }, { backoffBaseMs: 5 });
    try {
      g.fake.setQuota(P, { tokensPerHour: 0 });
      const [r] = await daemon.scheduler.runOnce();
      assert.equal(r!.ok, false);
      assert.match(r!.error!, /hourly quota exhausted.*deferred to the next hour/);
      assert.equal(g.fake.counts().runReport, 1, 'not retried within the hour');
      const nextHour = Math.ceil(Date.now() / 3_600_000) * 3_600_000;
      assert.ok(Math.abs(r!.deferUntil! - nextHour) < 5_000);
    } finally {
      await daemon.stop(0);
      await g.stop();
      await db.drop();
    }
  });
});

describe('permanent errors', () => {
  it('an unknown metric fails that report at once, before any request, with how to fix it; the other report carries on', async () => {
    const db = await testDb('invalid');
    const g = await startFake([{ id: P, timeZone: 'UTC' }]);
    const daemon = await makeDaemon(
      db,
      g,
      { properties: [{ id: P }], reports: { daily, broken: { metrics: ['sesions'], startDate: '3daysAgo' } } },
      { backoffBaseMs: 5 },
    );
    try {
      const results = await daemon.scheduler.runOnce();
      const broken = results.find((r) => !r.ok)!;
      assert.equal(broken.permanent, true);
      assert.match(
        broken.error!,
        new RegExp(`report broken: unknown to property ${P}: metric sesions; fix reports\\.broken in the config \\(did you mean sesions -> sessions\\?\\)`),
      );
      assert.equal(results.filter((r) => r.ok).length, 1);
      await assertExact(db, P);
      // checked against the property's metadata: Google never had to refuse a request
      assert.equal(g.fake.events.filter((e) => e.status === 400).length, 0);
    } finally {
      await daemon.stop(0);
      await g.stop();
      await db.drop();
    }
  });
});

describe('token failures', () => {
  it('a token endpoint that is down at start-up is retried; fetches then succeed', async () => {
    const db = await testDb('tokdown');
    const g = await startFake([{ id: P, timeZone: 'UTC' }]);
    g.fake.inject({ endpoint: 'token', kind: 'status', status: 503, times: 2 });
    const daemon = await makeDaemon(db, g, { properties: [{ id: P }], reports: { daily } }, { backoffBaseMs: 20, minTokenExchangeIntervalMs: 100 });
    try {
      const [r] = await daemon.scheduler.runOnce();
      assert.equal(r!.ok, true, r!.error);
      await assertExact(db, P);
      const text = await daemon.metrics.text();
      assert.equal(metricSum(text, 'ga_collector_token_refreshes_total', { account: SA_EMAIL, outcome: 'failure' }), 2);
      assert.equal(metricSum(text, 'ga_collector_token_refreshes_total', { account: SA_EMAIL, outcome: 'success' }), 1);
    } finally {
      await daemon.stop(0);
      await g.stop();
      await db.drop();
    }
  });

  it('renewals keep failing: fetches work while the token lasts, then fail fast saying since when', async () => {
    const db = await testDb('tokexp');
    const g = await startFake([{ id: P, timeZone: 'UTC' }], { tokenLifetimeSeconds: 4 });
    const daemon = await makeDaemon(db, g, { properties: [{ id: P }], reports: { daily } }, { backoffBaseMs: 5, minTokenExchangeIntervalMs: 100 });
    try {
      g.fake.inject({ endpoint: 'token', kind: 'status', status: 503 }); // from now on
      const tokens = daemon.tokens.forKeyFile(g.keyFile);
      const [ok] = await daemon.scheduler.runOnce();
      assert.equal(ok!.ok, true, 'the current token still works');
      // past expiry, renewals failing meanwhile
      await waitFor(() => !tokens.status().valid && tokens.status().failingSince !== null, {
        timeoutMs: 20_000,
        what: 'the token expired while renewals fail',
      });
      const started = Date.now();
      const res = await daemon.runner.run({ propertyId: P, report: 'daily', tokens, lastFire: new Date() }, new AbortController().signal);
      assert.equal(res.ok, false);
      assert.match(res.error!, /token for .* expired; refresh failing since \d{4}-\d\d-\d\dT.*503/);
      assert.ok(Date.now() - started < 1_000, 'fails fast');
      const text = await daemon.metrics.text();
      assert.ok(metricSum(text, 'ga_collector_token_refreshes_total', { account: SA_EMAIL, outcome: 'failure' }) >= 1);
      assert.ok(metricSum(text, 'ga_collector_token_expiry_timestamp_seconds', { account: SA_EMAIL }) < Date.now() / 1000, 'the expiry gauge is in the past');
      const ready = await daemon.readiness();
      assert.equal(ready.ready, false);
      assert.match(ready.reasons.join(' '), /refresh failing/);
    } finally {
      await daemon.stop(0);
      await g.stop();
      await db.drop();
    }
  });

  it('a key revoked mid-run: the current token keeps working, renewal fails naming the key id', async () => {
    const db = await testDb('revoked');
    const g = await startFake([{ id: P, timeZone: 'UTC' }], { tokenLifetimeSeconds: 3 });
    const daemon = await makeDaemon(db, g, { properties: [{ id: P }], reports: { daily } }, { backoffBaseMs: 5, minTokenExchangeIntervalMs: 100 });
    try {
      g.fake.revokeKey(SA_EMAIL);
      const [r] = await daemon.scheduler.runOnce();
      assert.equal(r!.ok, true, 'the token issued before the revocation still works');
      const tokens = daemon.tokens.forKeyFile(g.keyFile);
      // the renewal (at three quarters of the 3 s lifetime) is refused
      const st = await waitFor(() => (tokens.status().lastError ? tokens.status() : null), { timeoutMs: 20_000, what: 'the renewal refused' });
      assert.match(st.lastError!, new RegExp(`key id ${st.keyId}.*invalid_grant: Invalid JWT Signature\\. The key was deleted or rotated`));
    } finally {
      await daemon.stop(0);
      await g.stop();
      await db.drop();
    }
  });

  it('a 401 from the API forces one token refresh and one retry', async () => {
    const db = await testDb('t401');
    const g = await startFake([{ id: P, timeZone: 'UTC' }]);
    const daemon = await makeDaemon(db, g, { properties: [{ id: P }], reports: { daily } }, { backoffBaseMs: 5, minTokenExchangeIntervalMs: 100 });
    try {
      g.fake.inject({ endpoint: 'runReport', kind: 'status', status: 401, times: 1 });
      const before = g.fake.counts().token;
      const [r] = await daemon.scheduler.runOnce();
      assert.equal(r!.ok, true, r!.error);
      assert.equal(g.fake.counts().token - before, 1, 'one refresh');
      await assertExact(db, P);
    } finally {
      await daemon.stop(0);
      await g.stop();
      await db.drop();
    }
  });
});

describe('bad responses are never data', () => {
  const def = { name: 'r', dimensions: ['country'], metrics: ['sessions'], startDate: '3daysAgo', refreshDays: 1 };
  const ctx = { propertyId: '1', tokens: {} as never, logger: createLogger('silent') };
  const ok = {
    dimensionHeaders: [{ name: 'date' }, { name: 'country' }],
    metricHeaders: [{ name: 'sessions', type: 'TYPE_INTEGER' }],
    rows: [{ dimensionValues: [{ value: '20240102' }, { value: 'France' }], metricValues: [{ value: '5' }] }],
    rowCount: 1,
  };
  const bad: Array<[string, unknown]> = [
    [
      'a date outside the requested range',
      { ...ok, rows: [{ dimensionValues: [{ value: '20231231' }, { value: 'France' }], metricValues: [{ value: '5' }] }] },
    ],
    [
      'an integer metric value that would break the row text',
      { ...ok, rows: [{ dimensionValues: [{ value: '20240102' }, { value: 'France' }], metricValues: [{ value: '5\t5' }] }] },
    ],
    ['a row of the wrong width', { ...ok, rows: [{ dimensionValues: [{ value: '20240102' }], metricValues: [{ value: '5' }] }] }],
    ['headers that do not match the request', { ...ok, dimensionHeaders: [{ name: 'date' }, { name: 'city' }] }],
    ['a malformed date value', { ...ok, rows: [{ dimensionValues: [{ value: '2024-01-02' }, { value: 'France' }], metricValues: [{ value: '5' }] }] }],
  ];
  for (const [what, res] of bad) {
    it(`refuses ${what}`, () => {
      assert.throws(() => parsePage(res as never, def, '2024-01-01', '2024-01-03', ctx), RetryableError);
    });
  }
});

describe('chaos', () => {
  it('with ~30% of API calls failing in mixed ways and the token endpoint failing half the time, the data ends exact and the counters match the faults', async () => {
    const db = await testDb('chaos');
    const props = ['800001', '800002', '800003'];
    const g = await startFake(
      props.map((id) => ({ id, timeZone: 'UTC' })),
      { tokenLifetimeSeconds: 3, maxPageSize: 3, faultSeed: 42 },
    );
    // every kind of bad 200 body surely, on a JSON request (each property's first, the time zone
    // probe) and on a data page read as bytes (its second); then the random mix
    const [a, b, c] = props as [string, string, string];
    const dataPage = (r: { limit: number }) => r.limit !== 1;
    for (const [property, kind] of [
      [a, 'truncate'],
      [b, 'garbage'],
      [c, 'html'],
    ] as const)
      g.fake.inject({ endpoint: 'runReport', property, kind, times: 1 });
    for (const [property, kind] of [
      [a, 'html'],
      [b, 'truncate'],
      [c, 'garbage'],
    ] as const)
      g.fake.inject({ endpoint: 'runReport', property, kind, times: 1, match: dataPage });
    for (const [kind, status, rate] of [
      ['status', 429, 0.06],
      ['status', 500, 0.06],
      ['status', 503, 0.06],
      ['reset', undefined, 0.06],
      ['truncate', undefined, 0.06],
      ['garbage', undefined, 0.04],
      ['html', undefined, 0.04],
    ] as const) {
      g.fake.inject({
        endpoint: 'runReport',
        kind,
        rate,
        ...(status ? { status, message: status === 429 ? 'Too many requests, slow down.' : undefined } : {}),
      } as never);
    }
    g.fake.inject({ endpoint: 'token', kind: 'status', status: 503, rate: 0.5 });
    const daemon = await makeDaemon(
      db,
      g,
      {
        properties: props.map((id) => ({ id })),
        reports: { daily: { ...daily, startDate: '15daysAgo' } },
        fetch: { maxAttempts: 30, maxServerErrorsPerHour: 10_000 },
      },
      { backoffBaseMs: 2 },
    );
    try {
      const results = await daemon.scheduler.runOnce();
      assert.deepEqual(
        results.map((r) => r.error ?? 'ok'),
        props.map(() => 'ok'),
      );
      for (const p of props) assert.equal(await assertExact(db, p), 15);
      const ev = g.fake.events;
      const injected = ev.filter((e) => e.kind === 'runReport' && e.fault).length;
      const calls = ev.filter((e) => e.kind === 'runReport').length;
      assert.ok(injected / calls > 0.15, `a real share of calls failed (${injected}/${calls})`);
      const text = await daemon.metrics.text();
      for (const code of ['429', '500', '503']) {
        const faked = ev.filter((e) => e.kind === 'runReport' && e.fault === `status:${code}`).length;
        assert.equal(metricSum(text, 'ga_collector_api_requests_total', { code }), faked, `code ${code}`);
      }
      for (const kind of ['truncate', 'garbage', 'html']) {
        assert.ok(
          ev.some((e) => e.fault === kind && e.limit !== 1),
          `${kind} bodies were served for data pages`,
        );
        assert.ok(
          ev.some((e) => e.fault === kind && e.limit === 1),
          `${kind} bodies were served for JSON requests`,
        );
      }
      assert.equal(
        metricSum(text, 'ga_collector_api_requests_total', { code: 'error' }),
        ev.filter((e) => e.kind === 'runReport' && e.fault === 'reset').length,
        'resets',
      );
      assert.equal(
        metricSum(text, 'ga_collector_api_requests_total', { code: '200' }),
        ev.filter((e) => e.kind !== 'token' && e.status === 200).length,
        '200s (reports and metadata), truncated, non-JSON and HTML ones included',
      );
      const tokenFaults = ev.filter((e) => e.kind === 'token' && e.fault).length;
      assert.equal(metricSum(text, 'ga_collector_token_refreshes_total', { outcome: 'failure' }), tokenFaults);
      assert.equal(
        metricSum(text, 'ga_collector_token_refreshes_total', { outcome: 'success' }),
        ev.filter((e) => e.kind === 'token' && e.status === 200).length,
      );
    } finally {
      await daemon.stop(0);
      await g.stop();
      await db.drop();
    }
  });
});
