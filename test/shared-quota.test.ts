/**
 * One quota budget per property for every daemon on a database (schedule/sharedQuota.ts,
 * store/quotaState.ts): daemons together answer no more server errors per property and hour than
 * the budget, a restarted `run --once` leaves a property alone until its recorded reset, a
 * quota-low deferral holds for every daemon, and the quota gauge comes back after a restart.
 * Real PostgreSQL and the fake Google.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import type { Daemon } from '../src/daemon.js';
import { DeferError, RetryableError } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import { SharedQuota } from '../src/schedule/sharedQuota.js';
import { migrate } from '../src/store/migrations.js';
import { makeDaemon, metricSum, runCli, startFake, testDb, writeConfig, type FakeSetup, type TestDb } from './helpers.js';

const A = '720001';
const B = '720002';
const daily = { metrics: ['sessions'], startDate: '4daysAgo', refreshDays: 1 };
const HOUR = 3_600_000;

/** A logger whose JSON lines are kept in `lines`. */
function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger('info', sink), lines };
}

function sharedQuota(db: TestDb, budget: number, schema = db.schema, logger = createLogger('silent')) {
  return new SharedQuota({ pool: db.pool, schema, maxServerErrorsPerHour: budget, requestDeadlineMs: 30_000, logger });
}

/** Server errors the fake answered for `property`. */
function serverErrors(g: FakeSetup, property: string): number {
  return g.fake.events.filter((e) => e.property === property && e.status >= 500).length;
}

/** Requests of any kind the fake received for `property`. */
function requests(g: FakeSetup, property: string): number {
  return g.fake.events.filter((e) => e.property === property).length;
}

async function storedDates(db: TestDb, property: string): Promise<number> {
  const [r] = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${db.schema}".fetch_days WHERE property_id = $1`, [property]);
  return r!.n;
}

describe('the shared server-error budget (SharedQuota on PostgreSQL)', () => {
  it('three daemons claim no more than the budget between them, and a fresh one finds it spent', async () => {
    const db = await testDb('sq_claims');
    try {
      await migrate(db.pool, db.schema, createLogger('silent'));
      const daemons = [sharedQuota(db, 4), sharedQuota(db, 4), sharedQuota(db, 4)];
      // two server errors, through two of the daemons
      for (const d of daemons.slice(0, 2)) await (await d.admit(A)).settle(503);
      // nine requests at once: two claims are left of the budget of four
      const outcomes = await Promise.allSettled(daemons.flatMap((d) => [d.admit(A), d.admit(A), d.admit(A)]));
      const admitted = outcomes.filter((o) => o.status === 'fulfilled');
      assert.equal(admitted.length, 2, 'two requests claimed the rest of the budget');
      for (const o of outcomes) if (o.status === 'rejected') assert.ok(o.reason instanceof RetryableError && !(o.reason instanceof DeferError));
      // another property is not affected
      await (await daemons[2]!.admit(B)).settle(200);
      // both claimed requests fail: the budget is spent, for every daemon and for one started afresh
      const first = (await db.query<{ e: Date }>(`SELECT server_errors[1] AS e FROM "${db.schema}".quota_state WHERE property = $1`, [A]))[0]!.e;
      for (const o of admitted) await (o as PromiseFulfilledResult<{ settle(s: number): Promise<void> }>).value.settle(500);
      for (const d of [...daemons, sharedQuota(db, 4)]) {
        await assert.rejects(
          d.admit(A),
          (err: unknown) =>
            err instanceof DeferError && err.code === 'server_errors' && err.resetAt === first.getTime() + HOUR && /4 server errors/.test(err.message),
        );
      }
      const [row] = await db.query<{ n: number; claims: number; kind: string }>(
        `SELECT cardinality(server_errors) AS n, cardinality(claims) AS claims, deferral_kind AS kind FROM "${db.schema}".quota_state WHERE property = $1`,
        [A],
      );
      assert.deepEqual(row, { n: 4, claims: 0, kind: 'server_errors' });
    } finally {
      await db.drop();
    }
  });

  it('an exhausted quota window (429) met by one daemon keeps every daemon from asking until it resets', async () => {
    const db = await testDb('sq_429');
    try {
      await migrate(db.pool, db.schema, createLogger('silent'));
      const [one, other] = [sharedQuota(db, 4), sharedQuota(db, 4)];
      const resetAt = Math.ceil(Date.now() / HOUR) * HOUR;
      const message = `runReport for property ${A}: hourly quota exhausted (x); deferred to the next hour`;
      await (await one.admit(A)).settle(429, new DeferError(message, 'quota_hour', resetAt));
      await assert.rejects(
        other.admit(A),
        (err: unknown) => err instanceof DeferError && err.code === 'quota_hour' && err.resetAt === resetAt && err.message === message,
      );
      // not a server error: nothing counted against the budget
      const [row] = await db.query<{ n: number }>(`SELECT cardinality(server_errors) AS n FROM "${db.schema}".quota_state WHERE property = $1`, [A]);
      assert.equal(row!.n, 0);
    } finally {
      await db.drop();
    }
  });

  it('prunes errors older than an hour and expired deferrals', async () => {
    const db = await testDb('sq_prune');
    try {
      await migrate(db.pool, db.schema, createLogger('silent'));
      const t = `"${db.schema}".quota_state`;
      await db.query(
        `INSERT INTO ${t} (property, server_errors, deferred_until, deferral_kind, deferral_reason) VALUES
           ('old', ARRAY[now() - interval '2 hours'], now() - interval '1 minute', 'quota_hour', 'x'),
           ('recent', ARRAY[now() - interval '2 hours', now() - interval '1 minute'], now() - interval '1 minute', 'quota_hour', 'x'),
           ('deferred', '{}', now() + interval '1 hour', 'quota_day', 'y')`,
      );
      await db.query(
        `INSERT INTO "${db.schema}".quota_seen (property, quota, seen_at) VALUES ('stale', '{}', now() - interval '3 days'), ('fresh', '{}', now())`,
      );
      await sharedQuota(db, 4).prune();
      const rows = await db.query<{ property: string; kind: string | null }>(`SELECT property, deferral_kind AS kind FROM ${t} ORDER BY property`);
      assert.deepEqual(rows, [
        { property: 'deferred', kind: 'quota_day' },
        { property: 'recent', kind: null },
      ]);
      const seen = await db.query<{ property: string }>(`SELECT property FROM "${db.schema}".quota_seen`);
      assert.deepEqual(
        seen.map((r) => r.property),
        ['fresh'],
      );
    } finally {
      await db.drop();
    }
  });

  it('counts in memory, and says so once, while the database cannot be asked', async () => {
    const db = await testDb('sq_down');
    try {
      // a schema never migrated: every statement on the quota tables fails
      const { logger, lines } = capturingLogger();
      const quota = sharedQuota(db, 2, db.schema, logger);
      for (let i = 0; i < 2; i++) await (await quota.admit(A)).settle(503);
      await assert.rejects(quota.admit(A), (err: unknown) => err instanceof DeferError && err.code === 'server_errors');
      await (await quota.admit(B)).settle(200);
      assert.equal(lines.filter((l) => l['event'] === 'quota_state_unavailable').length, 1, 'logged once');
    } finally {
      await db.drop();
    }
  });
});

/**
 * A database of its own and the fake Google serving properties A and B, for `body`; the daemons
 * it adds to `daemons` are stopped, the fake and the database gone, after it.
 */
async function withTwoProperties(label: string, body: (db: TestDb, g: FakeSetup, daemons: Daemon[]) => Promise<void>): Promise<void> {
  const db = await testDb(label);
  const g = await startFake([
    { id: A, timeZone: 'UTC' },
    { id: B, timeZone: 'UTC' },
  ]);
  const daemons: Daemon[] = [];
  try {
    await body(db, g, daemons);
  } finally {
    for (const d of daemons) await d.stop(0);
    await g.stop();
    await db.drop();
  }
}

describe('daemons sharing a database', () => {
  it('three daemons answer no more server errors for a failing property than one budget; the other property is fetched', () =>
    withTwoProperties('sq_three', async (db, g, daemons) => {
      g.fake.inject({ endpoint: 'runReport', property: A, kind: 'status', status: 503 });
      const config = { properties: [{ id: A }, { id: B }], reports: { daily }, fetch: { maxAttempts: 10, maxServerErrorsPerHour: 4 } };
      for (let i = 0; i < 3; i++) daemons.push(await makeDaemon(db, g, config, { backoffBaseMs: 5, lockPollMs: 20 }));
      const results = (await Promise.all(daemons.map((d) => d.scheduler.runOnce()))).flat();
      assert.equal(serverErrors(g, A), 4, 'the budget of 4, not 4 for each daemon');
      const forA = results.filter((r) => !r.ok);
      assert.equal(forA.length, 3, 'each daemon gave the failing property up');
      for (const r of forA) {
        assert.match(r.error!, /answered 4 server errors in the last hour/);
        assert.ok(r.deferUntil! > Date.now() + 50 * 60_000, 'deferred by about an hour');
      }
      assert.ok((await storedDates(db, B)) >= 4, 'the healthy property was fetched');
    }));

  it('with several reports of the failing property running at once, only the requests in flight at its first error go past the budget', () =>
    withTwoProperties('sq_many', async (db, g, daemons) => {
      g.fake.inject({ endpoint: 'runReport', property: A, kind: 'status', status: 503 });
      const reports = { daily, second: daily, third: daily };
      const config = { properties: [{ id: A }, { id: B }], reports, fetch: { maxAttempts: 20, maxServerErrorsPerHour: 5 } };
      for (let i = 0; i < 3; i++) daemons.push(await makeDaemon(db, g, config, { backoffBaseMs: 5, lockPollMs: 20 }));
      await Promise.all(daemons.map((d) => d.scheduler.runOnce()));
      // three jobs of A run at once (one per report); each may have had one request out before any error was known
      const errors = serverErrors(g, A);
      assert.ok(errors >= 5 && errors <= 5 + 2, `the budget of 5, plus at most the two other requests in flight (${errors}); without sharing: up to 45`);
      assert.ok((await storedDates(db, B)) >= 3 * 4, 'every report of the healthy property was fetched');
    }));

  it('a restarted run --once does not ask Google for a property whose budget ran out until the recorded reset', () =>
    withTwoProperties('sq_once', async (db, g) => {
      g.fake.inject({ endpoint: 'runReport', property: A, kind: 'status', status: 503 });
      const config = writeConfig(g.dir, db, g, {
        properties: [{ id: A }, { id: B }],
        reports: { daily },
        fetch: { maxAttempts: 10, maxServerErrorsPerHour: 3 },
      });
      const first = await runCli(['run', '--once', '--config', config], { timeoutMs: 90_000 });
      assert.equal(first.code, 1, first.stderr);
      assert.match(first.stderr, new RegExp(`property ${A} answered 3 server errors in the last hour`));
      assert.equal(serverErrors(g, A), 3);
      const asked = requests(g, A);
      const [deferral] = await db.query<{ until: Date; kind: string }>(
        `SELECT deferred_until AS until, deferral_kind AS kind FROM "${db.schema}".quota_state WHERE property = $1`,
        [A],
      );
      assert.equal(deferral!.kind, 'server_errors');

      const again = await runCli(['run', '--once', '--config', config], { timeoutMs: 90_000 });
      assert.equal(again.code, 1, 'still a failed job, as when the budget runs out within one run');
      assert.match(
        again.stderr,
        new RegExp(`property ${A} answered 3 server errors in the last hour; leaving it alone until ${deferral!.until.toISOString()}`),
      );
      assert.equal(requests(g, A), asked, 'Google was not asked for the property at all');
      assert.ok((await storedDates(db, B)) >= 4, 'the healthy property was fetched');
    }));

  it('a quota-low deferral of one daemon holds for another, and the quota gauge is seeded from the stored quota after a restart', () =>
    withTwoProperties('sq_low', async (db, g, daemons) => {
      const config = {
        properties: [{ id: A }, { id: B }],
        reports: { daily: { ...daily, startDate: '60daysAgo' } },
        fetch: { maxDaysPerRun: 10, quotaReserve: 0.1 },
      };
      g.fake.setQuota(A, { tokensPerHour: 4_002 }); // just above 10% of the standard 40,000 an hour
      const started = Date.now();
      const first = await makeDaemon(db, g, config);
      const [low] = await first.scheduler.runOnce();
      const seenText = await first.metrics.text();
      await first.stop(0);
      assert.equal(low!.ok, true, low!.error);
      assert.ok(low!.deferUntil !== undefined && (low!.remaining ?? 0) > 0, 'the first daemon deferred the backlog');
      const hour = metricSum(seenText, 'ga_collector_quota_tokens_remaining', { property: A, window: 'hour' });
      const day = metricSum(seenText, 'ga_collector_quota_tokens_remaining', { property: A, window: 'day' });
      assert.ok(hour > 0 && hour < 4_000);
      // an hour that ended meanwhile has reset both the window and the deferral: nothing left to test
      if (Math.floor(started / HOUR) !== Math.floor(Date.now() / HOUR)) return;

      const second = await makeDaemon(db, g, config);
      daemons.push(second);
      const text = await second.metrics.text();
      assert.equal(metricSum(text, 'ga_collector_quota_tokens_remaining', { property: A, window: 'hour' }), hour, 'hourly tokens from the stored quota');
      assert.equal(metricSum(text, 'ga_collector_quota_tokens_remaining', { property: A, window: 'day' }), day, 'daily tokens from the stored quota');
      assert.ok(metricSum(text, 'ga_collector_quota_tokens_remaining', { property: B, window: 'day' }) > 190_000, 'every property seen');

      const asked = requests(g, A);
      const [again] = await second.scheduler.runOnce();
      assert.equal(again!.ok, true, again!.error);
      assert.equal(again!.deferUntil, low!.deferUntil, 'deferred to the same reset');
      assert.equal(again!.dates, 0);
      assert.ok((again!.remaining ?? 0) > 0, 'the backlog is still there');
      assert.equal(requests(g, A), asked, 'the second daemon did not ask Google for the property');
    }));
});
