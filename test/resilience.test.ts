/**
 * Everything Google does wrong: retryable failures are retried with backoff, quota is respected,
 * permanent errors fail fast with a fix, token trouble is survived or reported, malformed
 * responses never become data. Each against the fake Google's fault injection.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generateReport } from '../src/fake-google/index.js';
import type { Daemon } from '../src/daemon.js';
import { makeDaemon, metricSum, startFake, testDb, type FakeSetup, type TestDb, SA_EMAIL } from './helpers.js';
import { parsePage, fetchRange } from '../src/ga4/report.js';
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
    g = await startFake([{ id: P, timeZone: 'UTC' }, { id: Q, timeZone: 'UTC' }]);
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
    ['a request that hangs past the timeout', { kind: 'hang' }],
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
      const code = fault.kind === 'status' ? String(fault.status) : fault.kind === 'truncate' ? '200' : 'error';
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

describe('quota and server errors', () => {
  it('stops hammering a property that keeps answering 5xx; others carry on', async () => {
    const db = await testDb('budget');
    const g = await startFake([{ id: P, timeZone: 'UTC' }, { id: Q, timeZone: 'UTC' }]);
    const daemon = await makeDaemon(db, g, { properties: [{ id: P }, { id: Q }], reports: { daily, other: daily }, fetch: { maxAttempts: 10, maxServerErrorsPerHour: 4 } }, { backoffBaseMs: 5 });
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
    const g = await startFake([{ id: P, timeZone: 'UTC' }, { id: Q, timeZone: 'UTC' }]);
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
    const daemon = await makeDaemon(db, g, { properties: [{ id: P }], reports: { daily, broken: { metrics: ['sesions'], startDate: '3daysAgo' } } }, { backoffBaseMs: 5 });
    try {
      const results = await daemon.scheduler.runOnce();
      const broken = results.find((r) => !r.ok)!;
      assert.equal(broken.permanent, true);
      assert.match(broken.error!, new RegExp(`report broken: unknown to property ${P}: metric sesions; fix reports\\.broken in the config \\(did you mean sesions -> sessions\\?\\)`));
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
      await new Promise((r) => setTimeout(r, 3_500)); // past expiry; renewals failing meanwhile
      assert.equal(tokens.status().valid, false);
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
      await new Promise((res) => setTimeout(res, 3_000));
      const st = tokens.status();
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
    ['a date outside the requested range', { ...ok, rows: [{ dimensionValues: [{ value: '20231231' }, { value: 'France' }], metricValues: [{ value: '5' }] }] }],
    ['a non-numeric integer metric', { ...ok, rows: [{ dimensionValues: [{ value: '20240102' }, { value: 'France' }], metricValues: [{ value: '5.5x' }] }] }],
    ['a row of the wrong width', { ...ok, rows: [{ dimensionValues: [{ value: '20240102' }], metricValues: [{ value: '5' }] }] }],
    ['headers that do not match the request', { ...ok, dimensionHeaders: [{ name: 'date' }, { name: 'city' }] }],
    ['a malformed date value', { ...ok, rows: [{ dimensionValues: [{ value: '2024-01-02' }, { value: 'France' }], metricValues: [{ value: '5' }] }] }],
  ];
  for (const [what, res] of bad) {
    it(`refuses ${what}`, () => {
      assert.throws(() => parsePage(res as never, def, '2024-01-01', '2024-01-03', ctx), RetryableError);
    });
  }

  // the page loop reads response bodies as bytes (ga4/pageRows.ts)
  const body = (res: unknown) => Buffer.from(JSON.stringify(res));
  const drain = async (pages: AsyncIterable<unknown>) => {
    for await (const _ of pages) void _;
  };
  it('refuses pages that end before rowCount rows arrived', async () => {
    let call = 0;
    const client = { runReportBytes: async () => body(call++ === 0 ? { ...ok, rowCount: 5 } : { ...ok, rows: undefined, rowCount: 5 }) } as never;
    await assert.rejects(drain(fetchRange(client, ctx, def, '2024-01-01', '2024-01-03', { pageSize: 1 })), /empty but rowCount is 5/);
  });
  it('refuses a rowCount that changes between pages', async () => {
    let call = 0;
    const client = { runReportBytes: async () => body({ ...ok, rowCount: call++ === 0 ? 5 : 6 }) } as never;
    await assert.rejects(drain(fetchRange(client, ctx, def, '2024-01-01', '2024-01-03', { pageSize: 1 })), /rowCount changed between pages/);
  });
  it('refuses the same row twice across pages', async () => {
    const client = { runReportBytes: async () => body({ ...ok, rowCount: 3 }) } as never;
    await assert.rejects(drain(fetchRange(client, ctx, def, '2024-01-01', '2024-01-03', { pageSize: 1 })), /same row twice/);
  });
});

describe('chaos', () => {
  it('with ~30% of API calls failing in mixed ways and the token endpoint failing half the time, the data ends exact and the counters match the faults', async () => {
    const db = await testDb('chaos');
    const props = ['800001', '800002', '800003'];
    const g = await startFake(props.map((id) => ({ id, timeZone: 'UTC' })), { tokenLifetimeSeconds: 3, maxPageSize: 3, faultSeed: 42 });
    for (const [kind, status, rate] of [
      ['status', 429, 0.06],
      ['status', 500, 0.06],
      ['status', 503, 0.06],
      ['reset', undefined, 0.06],
      ['truncate', undefined, 0.06],
    ] as const) {
      g.fake.inject({ endpoint: 'runReport', kind, rate, ...(status ? { status, message: status === 429 ? 'Too many requests, slow down.' : undefined } : {}) } as never);
    }
    g.fake.inject({ endpoint: 'token', kind: 'status', status: 503, rate: 0.5 });
    const daemon = await makeDaemon(
      db,
      g,
      { properties: props.map((id) => ({ id })), reports: { daily: { ...daily, startDate: '15daysAgo' } }, fetch: { maxAttempts: 30, maxServerErrorsPerHour: 10_000 } },
      { backoffBaseMs: 2 },
    );
    try {
      const results = await daemon.scheduler.runOnce();
      assert.deepEqual(results.map((r) => r.error ?? 'ok'), props.map(() => 'ok'));
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
      assert.equal(metricSum(text, 'ga_collector_api_requests_total', { code: 'error' }), ev.filter((e) => e.kind === 'runReport' && e.fault === 'reset').length, 'resets');
      assert.equal(metricSum(text, 'ga_collector_api_requests_total', { code: '200' }), ev.filter((e) => e.kind !== 'token' && e.status === 200).length, '200s (reports and metadata), truncated ones included');
      const tokenFaults = ev.filter((e) => e.kind === 'token' && e.fault).length;
      assert.equal(metricSum(text, 'ga_collector_token_refreshes_total', { outcome: 'failure' }), tokenFaults);
      assert.equal(metricSum(text, 'ga_collector_token_refreshes_total', { outcome: 'success' }), ev.filter((e) => e.kind === 'token' && e.status === 200).length);
    } finally {
      await daemon.stop(0);
      await g.stop();
      await db.drop();
    }
  });
});

describe('an endpoint that ignores orderBys', () => {
  it('is read whole before storing, so no date is cut short', async () => {
    const def = { name: 'r', dimensions: ['country'], metrics: ['sessions'], startDate: '3daysAgo', refreshDays: 1 };
    const ctx = { propertyId: '1', tokens: {} as never, logger: createLogger('silent') };
    // rows by sessions descending, as Google orders them without orderBys
    const all = [
      ['20240102', 'France', '9'],
      ['20240101', 'Spain', '8'],
      ['20240102', 'Spain', '7'],
      ['20240103', 'France', '6'],
      ['20240101', 'France', '5'],
    ];
    const page = (offset: number, limit: number) => ({
      dimensionHeaders: [{ name: 'date' }, { name: 'country' }],
      metricHeaders: [{ name: 'sessions', type: 'TYPE_INTEGER' }],
      rows: all.slice(offset, offset + limit).map(([d, c, v]) => ({ dimensionValues: [{ value: d }, { value: c }], metricValues: [{ value: v }] })),
      rowCount: all.length,
    });
    const client = {
      runReportBytes: async (_: unknown, body: { offset: number; limit: number }) => Buffer.from(JSON.stringify(page(Number(body.offset), 2))),
      runReport: async (_: unknown, body: { offset: number; limit: number }) => page(Number(body.offset), 2),
    } as never;
    const days: Array<[string, number, string]> = [];
    for await (const d of fetchRange(client, ctx, def, '2024-01-01', '2024-01-03', { pageSize: 2 })) {
      days.push([d.date, d.rowCount, Buffer.concat(d.text).toString()]);
    }
    const last = new Map(days.map((d) => [d[0], d]));
    assert.deepEqual([...last.keys()].sort(), ['2024-01-01', '2024-01-02', '2024-01-03']);
    assert.equal(last.get('2024-01-01')![1], 2);
    assert.equal(last.get('2024-01-02')![1], 2);
    assert.equal(last.get('2024-01-03')![1], 1);
    assert.match(last.get('2024-01-01')![2], /Spain\t8\n.*France\t5\n/s);
  });
});
