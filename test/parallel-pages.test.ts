/**
 * fetch.perPropertyConcurrency: a long range's pages are asked for several at once (ga4/pageWindow.ts),
 * within the global `concurrency`, and what is stored is exactly what one page at a time stores:
 * every date whole, once, whatever a page meets (a 503, a truncated body, a reset, a short page)
 * and when the job is aborted half-way. Against a real PostgreSQL and the fake Google, with a delay
 * per request so that requests overlap the way they would at Google's latency.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generateReport, type FakeEvent } from '@ga-collector/fake-google';
import { loadConfig } from '../src/config/index.js';
import { Daemon } from '../src/daemon.js';
import { createLogger } from '../src/log.js';
import { addDays, dateRange, localDate } from '../src/time.js';
import { startFake, testDb, waitFor, writeConfig, type FakeSetup, type TestDb } from './helpers.js';

const P = '900001';
const DIMENSIONS = ['deviceCategory', 'country', 'browser'];
const METRICS = ['sessions', 'screenPageViews'];
const report = { dimensions: DIMENSIONS, metrics: METRICS, startDate: '400daysAgo', refreshDays: 2 };
/** about 150 rows a day: a 365-day range is some 37 pages of 1500 rows */
const PAGE_SIZE = 1500;
const DELAY_MS = 40;

/** the report's pages (the per-date totals ask for one row, and are left without a delay: they are not what is measured) */
/** a page of the report's rows, not its per-date totals (the same metrics by date alone) */
const dataPage = (r: { limit: number; dimensions: string[] }) => r.limit === PAGE_SIZE && r.dimensions.length > 1;

const TO = addDays(localDate(Date.now(), 'UTC'), -1);
const FROM = addDays(TO, -364);

/** The most runReport requests of `property` the fake had in flight at once (an answer ends before a request at the same ms). */
function maxInFlight(events: FakeEvent[], property = P): number {
  const edges: Array<[number, number]> = [];
  for (const e of events) {
    if (e.kind !== 'runReport' || e.property !== property) continue;
    edges.push([e.receivedAt, 1], [e.respondedAt || Number.MAX_SAFE_INTEGER, -1]);
  }
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let most = 0;
  for (const [, step] of edges) most = Math.max(most, (now += step));
  return most;
}

async function backfill(
  db: TestDb,
  g: FakeSetup,
  fetch: Record<string, unknown>,
  opts: { concurrency?: number; whileRunning?: (d: Daemon) => Promise<void> } = {},
) {
  await db.pool.query(`DROP SCHEMA IF EXISTS "${db.schema}" CASCADE`);
  const file = writeConfig(g.dir, db, g, {
    properties: [{ id: P }],
    reports: { r: report },
    concurrency: opts.concurrency ?? 4,
    fetch: { pageSize: PAGE_SIZE, maxAttempts: 4, ...fetch },
  });
  const config = loadConfig({ file, env: {} });
  const daemon = new Daemon({ config, logger: createLogger(process.env['TEST_LOG_LEVEL'] ?? 'silent'), backoffBaseMs: 10 });
  await daemon.start({ upTo: 'services' });
  try {
    g.fake.events.length = 0;
    const job = daemon.scheduler.backfill(config.properties[0]!, 'r', FROM, TO);
    await opts.whileRunning?.(daemon);
    return { result: await job, events: [...g.fake.events], metrics: await daemon.metrics.text() };
  } finally {
    await daemon.stop(0);
  }
}

/** Every stored date is whole (the generator's rows, each once) and agrees with the ledger; returns the dates and a digest of every value. */
async function storedWhole(db: TestDb): Promise<{ dates: string[]; digest: string }> {
  const days = await db.query<{ date: string; n: string; distinct_rows: string; sessions: string; views: string; ledger: string | null }>(
    `SELECT to_char(r.date,'YYYY-MM-DD') AS date, count(*) AS n,
            count(DISTINCT (r.device_category, r.country, r.browser)) AS distinct_rows,
            sum(r.sessions)::text AS sessions, sum(r.screen_page_views)::text AS views,
            (SELECT f.row_count::text FROM "${db.schema}".fetch_days f WHERE f.property_id = $1 AND f.report = 'r' AND f.date = r.date) AS ledger
       FROM "${db.schema}".r r WHERE r.property_id = $1 GROUP BY r.date ORDER BY r.date`,
    [P],
  );
  for (const d of days) {
    const want = generateReport({ propertyId: P, date: d.date, dimensions: DIMENSIONS, metrics: METRICS });
    assert.equal(Number(d.n), want.length, `${d.date}: every row of the date`);
    assert.equal(Number(d.distinct_rows), want.length, `${d.date}: no row twice`);
    assert.deepEqual(
      [Number(d.sessions), Number(d.views)],
      [0, 1].map((i) => want.reduce((s, row) => s + row.values[i]!, 0)),
      `${d.date}: the generator's values`,
    );
    assert.equal(d.ledger, d.n, `${d.date}: the ledger's row count`);
  }
  // a date in the ledger without its rows would be a date written in part
  const ledgerOnly = await db.query(
    `SELECT f.date FROM "${db.schema}".fetch_days f WHERE f.property_id = $1 AND f.report = 'r' AND f.row_count > 0
        AND NOT EXISTS (SELECT 1 FROM "${db.schema}".r r WHERE r.property_id = f.property_id AND r.date = f.date)`,
    [P],
  );
  assert.equal(ledgerOnly.length, 0, 'no date in the ledger without its rows');
  const [digest] = await db.query<{ md5: string }>(
    `SELECT md5(string_agg(concat_ws(',', date, device_category, country, browser, sessions, screen_page_views), ';' ORDER BY date, device_category, country, browser)) AS md5
       FROM "${db.schema}".r WHERE property_id = $1`,
    [P],
  );
  return { dates: days.map((d) => d.date), digest: digest!.md5 };
}

describe('parallel pages of one property (fetch.perPropertyConcurrency)', () => {
  let db: TestDb;
  let g: FakeSetup;
  /** what one page at a time stores */
  let serial: { dates: string[]; digest: string };

  before(async () => {
    db = await testDb('parallel');
    g = await startFake([{ id: P, timeZone: 'UTC' }]);
  });
  after(async () => {
    await g?.stop();
    await db?.drop();
  });

  it('perPropertyConcurrency 1: one page in flight at a time (the next asked for while the current is stored)', async () => {
    g.fake.clearFaults();
    g.fake.inject({ endpoint: 'runReport', kind: 'delay', delayMs: DELAY_MS, match: dataPage });
    const { result, events } = await backfill(db, g, { perPropertyConcurrency: 1 });
    assert.equal(result.ok, true, result.error);
    assert.equal(maxInFlight(events), 1);
    serial = await storedWhole(db);
    assert.deepEqual(serial.dates, dateRange(FROM, TO), 'all 365 dates');
    const pages = events.filter((e) => e.kind === 'runReport' && e.limit === PAGE_SIZE && (e.dimensions?.length ?? 0) > 1);
    assert.ok(pages.length >= 30, `a range of many pages (${pages.length})`);
  });

  it('perPropertyConcurrency 4: up to 4 requests of the property in flight, never more, and the same data stored', async () => {
    g.fake.clearFaults();
    g.fake.inject({ endpoint: 'runReport', kind: 'delay', delayMs: DELAY_MS, match: dataPage });
    const { result, events } = await backfill(db, g, { perPropertyConcurrency: 4 });
    assert.equal(result.ok, true, result.error);
    assert.equal(maxInFlight(events), 4);
    const parallel = await storedWhole(db);
    assert.deepEqual(parallel, serial, 'exactly what one page at a time stores');
    // no page asked for twice: the window asks each offset once when nothing goes wrong
    const offsets = events.filter((e) => e.kind === 'runReport' && e.limit === PAGE_SIZE && (e.dimensions?.length ?? 0) > 1).map((e) => e.offset ?? 0);
    assert.equal(new Set(offsets).size, offsets.length, 'each page asked for once');
  });

  it('the global concurrency still caps it: concurrency 2 with perPropertyConcurrency 4 has at most 2 in flight', async () => {
    g.fake.clearFaults();
    g.fake.inject({ endpoint: 'runReport', kind: 'delay', delayMs: DELAY_MS, match: dataPage });
    const { result, events } = await backfill(db, g, { perPropertyConcurrency: 4 }, { concurrency: 2 });
    assert.equal(result.ok, true, result.error);
    assert.equal(maxInFlight(events), 2);
    assert.deepEqual(await storedWhole(db), serial);
  });

  it('a 503, a truncated body and a reset on pages read ahead, and a page shorter than the others, still end exact', async () => {
    g.fake.clearFaults();
    const page = (n: number) => (r: { offset: number; limit: number; dimensions: string[] }) => dataPage(r) && r.offset === n * PAGE_SIZE;
    g.fake.inject({ endpoint: 'runReport', kind: 'status', status: 503, times: 1, match: page(3) });
    g.fake.inject({ endpoint: 'runReport', kind: 'truncate', times: 1, match: page(6) });
    g.fake.inject({ endpoint: 'runReport', kind: 'reset', times: 1, match: page(9) });
    // a page that comes back short (its rowCount unchanged): the pages asked for after it no longer
    // line up, and are asked for again from where it ended
    g.fake.inject({
      endpoint: 'runReport',
      kind: 'rewrite',
      times: 1,
      match: page(12),
      rewrite: (body) => ({ ...body, rows: (body['rows'] as unknown[]).slice(0, -7) }),
    });
    g.fake.inject({ endpoint: 'runReport', kind: 'delay', delayMs: DELAY_MS, match: dataPage });
    const { result, events, metrics } = await backfill(db, g, { perPropertyConcurrency: 4 });
    assert.equal(result.ok, true, result.error);
    assert.deepEqual(
      events.filter((e) => e.fault && e.fault !== 'delay').map((e) => e.fault),
      ['status:503', 'truncate', 'reset', 'rewrite'],
      'every fault was met',
    );
    assert.ok(maxInFlight(events) <= 4);
    assert.deepEqual(await storedWhole(db), serial, 'exactly what one page at a time stores');
    const realigned = events.some((e) => e.kind === 'runReport' && e.offset === 13 * PAGE_SIZE - 7);
    assert.ok(realigned, 'the page after the short one was asked for at the offset where it ended');
    assert.match(metrics, /ga_collector_api_retries_total \d/);
  });

  it('an abort in the middle of the backfill leaves only whole dates, oldest first', async () => {
    g.fake.clearFaults();
    g.fake.inject({ endpoint: 'runReport', kind: 'delay', delayMs: 100, match: dataPage });
    const { result } = await backfill(
      db,
      g,
      { perPropertyConcurrency: 4 },
      {
        whileRunning: async (daemon) => {
          await waitFor(
            async () => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM "${db.schema}".fetch_days`).catch(() => [{ n: '0' }]))[0]!.n) > 20,
            {
              intervalMs: 5,
              what: 'some dates stored',
            },
          );
          daemon.scheduler.abort();
        },
      },
    );
    assert.equal(result.ok, false, 'aborted');
    const stored = await storedWhole(db);
    assert.ok(stored.dates.length > 0 && stored.dates.length < 365, `stopped part-way (${stored.dates.length} dates)`);
    // dates are stored oldest first: what was stored is the start of the range, without a gap
    assert.deepEqual(stored.dates, dateRange(FROM, stored.dates[stored.dates.length - 1]!));
  });
});
