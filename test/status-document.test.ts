/**
 * The status document and page at scale and in order: 2,000 properties with 30 reports each, a
 * ledger made by SQL, served by the HTTP server from a constant number of queries; properties
 * that need attention come first and the rest are paged; `/api/status` still returns everything
 * (its fields as before) or a page; the chart is GA's per-date total, not a sum over rows.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { loadConfig, type Config } from '../src/config/index.js';
import { HttpServer } from '../src/http/server.js';
import { createLogger } from '../src/log.js';
import { Metrics } from '../src/metrics.js';
import { JobBoard } from '../src/schedule/jobBoard.js';
import { StatusView, type StatusDocument } from '../src/status.js';
import { migrate } from '../src/store/migrations.js';
import { ensureReportTables } from '../src/store/reportTables.js';
import { testDb, tmpDir, writeJson, type TestDb } from './helpers.js';

const PROPERTIES = 2_000;
const REPORTS = 30;
const DAYS = 30;
const id = (i: number) => String(100_000 + i);
const logger = createLogger('silent');

/** A config of `properties` x `reports`; the first report is by date alone, the others by device. */
function config(db: TestDb, properties: number, reports: number, extra: Record<string, unknown> = {}): Config {
  const dir = tmpDir('statusdoc');
  const defs: Record<string, unknown> = { daily: { metrics: ['sessions', 'totalUsers'], startDate: `${DAYS}daysAgo` } };
  for (let r = 1; r < reports; r++)
    defs[`r${String(r).padStart(2, '0')}`] = { dimensions: ['deviceCategory'], metrics: ['sessions'], startDate: `${DAYS}daysAgo` };
  const file = writeJson(path.join(dir, 'config.json'), {
    database: { url: db.url, schema: db.schema },
    properties: Array.from({ length: properties }, (_, i) => ({ id: id(i) })),
    reports: defs,
    ...extra,
  });
  try {
    return loadConfig({ file, env: {}, requireCredentials: false });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function serve(cfg: Config, pool: pg.Pool, board: JobBoard) {
  const view = new StatusView({ pool, board, config: () => cfg, tokens: () => [], now: Date.now, logger });
  const http = new HttpServer({
    host: '127.0.0.1',
    port: 0,
    metrics: new Metrics({ defaultMetrics: false }),
    source: { statusDocument: (q) => view.document(q), readiness: async () => ({ ready: true, reasons: [] }) },
    logger,
  });
  await http.start();
  return { view, http };
}

async function timed<T>(what: string, f: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const v = await f();
  const ms = performance.now() - t0;
  process.stderr.write(`status at ${PROPERTIES} properties x ${REPORTS} reports: ${what} took ${ms.toFixed(0)} ms\n`);
  return [v, ms];
}

describe(`the status page at ${PROPERTIES} properties x ${REPORTS} reports`, () => {
  let db: TestDb;
  let cfg: Config;
  const board = new JobBoard();
  let server: Awaited<ReturnType<typeof serve>>;
  const failingProperty = id(1990);
  const gapProperties = [id(1500), id(1501), id(1502)];

  before(async () => {
    db = await testDb('statusdoc');
    cfg = config(db, PROPERTIES, REPORTS);
    await migrate(db.pool, db.schema, logger);
    await ensureReportTables(db.pool, db.schema, Object.values(cfg.reports), logger);
    const s = `"${db.schema}"`;
    await db.query(`INSERT INTO ${s}.properties (property_id, time_zone) SELECT (100000 + p)::text, 'UTC' FROM generate_series(0, $1 - 1) p`, [PROPERTIES]);
    // every report of every property stored for the last DAYS days, in the server's (UTC) calendar
    await db.query(
      `INSERT INTO ${s}.fetch_days (property_id, report, date, fetched_at, row_count, settled)
       SELECT (100000 + p)::text, r, (now() AT TIME ZONE 'UTC')::date - g, now() - interval '1 hour', 3, true
         FROM generate_series(0, $1 - 1) p, unnest($2::text[]) r, generate_series(1, $3) g`,
      [PROPERTIES, Object.keys(cfg.reports), DAYS],
    );
    await db.query(
      `INSERT INTO ${s}.daily (property_id, date, sessions, total_users)
       SELECT (100000 + p)::text, (now() AT TIME ZONE 'UTC')::date - g, 100 + p % 50, 80 + p % 40
         FROM generate_series(0, $1 - 1) p, generate_series(1, $2) g`,
      [PROPERTIES, DAYS],
    );
    await db.query(`ANALYZE ${s}.fetch_days`);
    // three properties miss days of their second report; one property's last run failed
    await db.query(`DELETE FROM ${s}.fetch_days WHERE property_id = ANY($1) AND report = 'r01' AND date > (now() AT TIME ZONE 'UTC')::date - 5`, [
      gapProperties,
    ]);
    board.job(failingProperty, 'r07').lastSuccessAt = Date.now() - 86_400_000;
    board.recordFailure(failingProperty, 'r07', 'runReport for property 101990: 403 no access', Date.now());
    server = await serve(cfg, db.pool, board);
  });

  after(async () => {
    await server?.http.stop();
    await db?.drop();
  });

  it('serves /api/status with every report, its fields as before, within a loose bound', async () => {
    const [res, ms] = await timed('GET /api/status (everything, first request)', () => fetch(`${server.http.url}/api/status`));
    assert.equal(res.status, 200);
    const doc = (await res.json()) as StatusDocument;
    assert.equal(doc.reports.length, PROPERTIES * REPORTS);
    for (const key of ['generatedAt', 'version', 'database', 'tokens', 'reports', 'recentFailures', 'series']) assert.ok(key in doc, key);
    const r = doc.reports.find((x) => x.property === id(7) && x.report === 'r03')!;
    assert.deepEqual(Object.keys(r).slice(0, 14), [
      'property',
      'report',
      'timeZone',
      'running',
      'lastSuccess',
      'lastRun',
      'dataThrough',
      'firstDate',
      'storedDays',
      'gaps',
      'datesPending',
      'nextRun',
      'lastError',
      'lastErrorAt',
    ]);
    assert.equal(r.storedDays, DAYS);
    assert.equal(r.gaps, 0);
    assert.equal(doc.reports[0]!.property, id(0), 'everything comes in configuration order');
    assert.equal(doc.series.length, PROPERTIES, 'a chart per property');
    assert.equal(doc.page, null);
    assert.equal(doc.reports.find((x) => x.property === gapProperties[0] && x.report === 'r01')!.gaps, 4);
    // 60,000 reports are 31 MB of JSON: a looser bound than the page's
    assert.ok(ms < 10_000, `${ms} ms`);
  });

  it('serves the page within a generous bound, those that need attention first, the rest on later pages', async () => {
    // a server of its own: nothing read yet, the ledger is read for this request
    const cold = await serve(cfg, db.pool, board);
    const [res, ms] = await timed('GET / (page 1, first request)', () => fetch(`${cold.http.url}/`)).finally(() => cold.http.stop());
    await timed('GET / (page 1, again)', () => fetch(`${server.http.url}/`).then((r) => r.text()));
    assert.equal(res.status, 200);
    const html = await res.text();
    const shown = [...html.matchAll(/data-property="(\d+)"/g)].map((m) => m[1]);
    assert.equal(shown.length, 50, 'a page of 50 properties');
    assert.deepEqual(shown.slice(0, 4), [failingProperty, ...gapProperties], 'failing first, then those with gaps');
    assert.deepEqual(shown.slice(4, 8), [id(0), id(1), id(2), id(3)], 'then the rest in configuration order');
    assert.match(html, /properties 1–50 of 2000; the 4 that need attention come first/);
    assert.match(html, /<a href="\?page=2" rel="next">/);
    assert.ok(ms < 5_000, `${ms} ms`);

    const [second] = await timed('GET /?page=2', () => fetch(`${server.http.url}/?page=2`));
    const html2 = await second.text();
    const shown2 = [...html2.matchAll(/data-property="(\d+)"/g)].map((m) => m[1]);
    assert.deepEqual(shown2.slice(0, 2), [id(46), id(47)]);
    assert.match(html2, /rel="prev"/);
    assert.equal((await fetch(`${server.http.url}/?page=zwei`)).status, 400);
  });

  it('pages /api/status when asked, attention first, with the totals of every report', async () => {
    const [res] = await timed('GET /api/status?page=1&perPage=10', () => fetch(`${server.http.url}/api/status?page=1&perPage=10`));
    const doc = (await res.json()) as StatusDocument;
    assert.deepEqual(doc.page, { page: 1, perPage: 10, pages: 200, properties: PROPERTIES });
    assert.equal(doc.reports.length, 10 * REPORTS);
    assert.equal(doc.reports[0]!.property, failingProperty);
    assert.equal(doc.reports.find((r) => r.property === failingProperty && r.report === 'r07')!.attention, 'failing');
    assert.deepEqual(doc.summary, {
      properties: PROPERTIES,
      sites: 0,
      needAttention: 4,
      reports: PROPERTIES * REPORTS,
      failing: 1,
      stale: 0,
      withGaps: 3,
      running: 0,
    });
    assert.deepEqual(new Set(doc.series.map((s) => s.property)).size, 10, 'charts of the page only');
  });

  it('reads the ledger once for concurrent requests', async () => {
    const [docs, ms] = await timed('5 concurrent GET /', () =>
      Promise.all(Array.from({ length: 5 }, () => fetch(`${server.http.url}/`).then((r) => r.status))),
    );
    assert.deepEqual(docs, [200, 200, 200, 200, 200]);
    assert.ok(ms < 10_000, `${ms} ms`);
  });
});

describe("the status page's chart", () => {
  let db: TestDb;

  before(async () => {
    db = await testDb('statuschart');
  });
  after(async () => db?.drop());

  it("shows GA's per-date total, not the sum of the report's rows", async () => {
    const cfg = config(db, 1, 1, {});
    const devices = {
      ...cfg,
      reports: { devices: { name: 'devices', dimensions: ['deviceCategory'], metrics: ['totalUsers', 'bounceRate'], startDate: '5daysAgo', refreshDays: 3 } },
    };
    devices.properties = [{ ...cfg.properties[0]!, reports: ['devices'] }];
    await migrate(db.pool, db.schema, logger);
    await ensureReportTables(db.pool, db.schema, Object.values(devices.reports), logger);
    const s = `"${db.schema}"`;
    const day = new Date(Date.now() - 2 * 86_400_000).toISOString().slice(0, 10);
    // two device rows of 10 users each; GA's total is 15 users (a user on two devices is one)
    await db.query(
      `INSERT INTO ${s}.devices (property_id, date, device_category, total_users, bounce_rate) VALUES ($1, $2, 'desktop', 10, 0.5), ($1, $2, 'mobile', 10, 0.3)`,
      [id(0), day],
    );
    await db.query(`INSERT INTO ${s}.devices_totals (property_id, date, total_users, bounce_rate) VALUES ($1, $2, 15, 0.4)`, [id(0), day]);
    const view = new StatusView({ pool: db.pool, board: new JobBoard(), config: () => devices, tokens: () => [], now: Date.now, logger });
    const doc = await view.document();
    assert.deepEqual(doc.series, [
      { kind: 'ga4', property: id(0), report: 'devices', metric: 'totalUsers', source: 'totals', points: [{ date: day, value: 15 }] },
    ]);
  });
});
