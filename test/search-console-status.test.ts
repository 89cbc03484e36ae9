/**
 * Search Console sites in `ga-collector status`, the status document and the metrics, against the
 * fake Google and a real PostgreSQL: before anything is stored every Pacific date of a site's
 * window is a gap; after a run, data through the newest date due for each report's dataState
 * (today-3 final, today-1 all), the refresh window listed as still revising, no flags; a missing
 * date is a gap; a site without access is a recorded failure; exit 1 on either. The metrics carry
 * the site's URL in the `property` label.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { StatusDocument } from '../src/status.js';
import { addDays } from '../src/time.js';
import { SA_EMAIL, makeDaemon, metricSum, runCli, startFake, testDb, writeConfig, type FakeSetup, type TestDb } from './helpers.js';

const SITE = 'sc-domain:example.com';
const DENIED = 'sc-domain:denied.example';
const reports = {
  performance: { dimensions: ['date', 'query', 'country'], startDate: '9daysAgo', refreshDays: 2 },
  appearance: { dimensions: ['date', 'searchAppearance'], dataState: 'all', startDate: '5daysAgo', refreshDays: 1 },
};

interface Line {
  kind: string;
  property: string;
  report: string;
  timeZone: string;
  window: { from: string; through: string };
  dataThrough: string | null;
  storedDays: number;
  lastFetch: string | null;
  gaps: { days: number; runs: Array<{ from: string; to: string }> };
  revising: { days: number; runs: Array<{ from: string; to: string }> };
  flagged: Record<string, { days: number }>;
  failure: { error: string; permanent: boolean } | null;
}

describe('Search Console sites in status, the status document and the metrics', () => {
  let db: TestDb;
  let g: FakeSetup;
  let gsc: string;
  let file: string;
  let today: string;
  const extra = () => ({
    google: { credentials: g.keyFile, tokenUrl: g.fake.tokenUrl, apiRootUrl: g.fake.apiRootUrl, searchConsoleRootUrl: g.fake.searchConsoleRootUrl },
    properties: [],
    searchConsole: { schema: gsc, sites: [SITE, { url: DENIED, reports: ['performance'] }], reports },
  });
  const status = async () => {
    const r = await runCli(['status', '--json', '--config', file]);
    const doc = JSON.parse(r.stdout) as { reports: Line[]; searchConsole: { schema: string; migrations: { current: number } }; ok: boolean };
    return { code: r.code, doc, line: (site: string, report: string) => doc.reports.find((l) => l.property === site && l.report === report)! };
  };

  before(async () => {
    db = await testDb('scstatus');
    gsc = `${db.schema}_gsc`;
    g = await startFake([]);
    g.fake.addSite({ url: SITE, queries: 6, pages: 3 });
    g.fake.addSite({ url: DENIED });
    g.fake.grantSite(SA_EMAIL, SITE);
    today = g.fake.searchConsoleToday();
    file = writeConfig(g.dir, db, g, extra());
  });
  after(async () => {
    await g?.stop();
    await db?.query(`DROP SCHEMA IF EXISTS "${gsc}" CASCADE`).catch(() => undefined);
    await db?.drop();
  });

  it('before anything is stored: every date of each window is a gap, through today-3 (final) or today-1 (all); exit 1', async () => {
    const { code, doc, line } = await status();
    assert.equal(code, 1);
    assert.equal(doc.searchConsole.schema, gsc);
    assert.equal(doc.searchConsole.migrations.current, 0);
    const perf = line(SITE, 'performance');
    assert.equal(perf.kind, 'searchConsole');
    assert.equal(perf.timeZone, 'America/Los_Angeles');
    assert.deepEqual(perf.window, { from: addDays(today, -9), through: addDays(today, -3) });
    assert.deepEqual(perf.gaps, { days: 7, runs: [{ from: addDays(today, -9), to: addDays(today, -3) }] });
    assert.deepEqual(line(SITE, 'appearance').window, { from: addDays(today, -5), through: addDays(today, -1) });
    assert.equal(line(SITE, 'appearance').gaps.days, 5);
    assert.equal(doc.reports.length, 3);
  });

  it('after a run: data through the newest date due, no gaps, the refresh window still revising; the site without access failing; exit 1', async () => {
    const run = await runCli(['run', '--once', '--config', file]);
    assert.equal(run.code, 1, 'the denied site fails');
    const { code, doc, line } = await status();
    assert.equal(code, 1);
    const perf = line(SITE, 'performance');
    assert.equal(perf.dataThrough, addDays(today, -3));
    assert.equal(perf.storedDays, 7);
    assert.deepEqual(perf.gaps, { days: 0, runs: [] });
    assert.deepEqual(perf.revising.runs, [{ from: addDays(today, -4), to: addDays(today, -3) }]);
    assert.ok(
      Object.values(perf.flagged).every((f) => f.days === 0),
      'Google flags no Search Console date',
    );
    assert.equal(perf.failure, null);
    assert.equal(line(SITE, 'appearance').dataThrough, addDays(today, -1));
    assert.equal(line(SITE, 'appearance').gaps.days, 0);
    const denied = line(DENIED, 'performance');
    assert.equal(denied.storedDays, 0);
    assert.equal(denied.failure?.permanent, true);
    assert.match(denied.failure!.error, /is not a user of Search Console site sc-domain:denied\.example/);
    assert.equal(doc.ok, false);

    const text = await runCli(['status', '--config', file]);
    assert.equal(text.code, 1);
    assert.match(text.stdout, new RegExp(`Search Console sites, schema ${gsc}; Pacific days`));
    assert.match(text.stdout, /^site\s+report\s+data through\s+gaps\s+last fetch$/m);
    assert.match(text.stdout, new RegExp(`^sc-domain:example\\.com\\s+performance\\s+${addDays(today, -3)}\\s+0\\s+\\d{4}-`, 'm'));
    assert.match(text.stdout, /^\s+failing \(at .*, will not heal by itself\): .*is not a user of Search Console site/m);
  });

  it('a date missing from the ledger is a gap of its site and report alone', async () => {
    const missing = addDays(today, -6);
    await db.query(`DELETE FROM "${gsc}".fetch_days WHERE site_url = $1 AND report = 'performance' AND date = $2`, [SITE, missing]);
    const { line } = await status();
    assert.deepEqual(line(SITE, 'performance').gaps, { days: 1, runs: [{ from: missing, to: missing }] });
    assert.equal(line(SITE, 'appearance').gaps.days, 0);
  });

  it('the status document: a site card per site, its clicks summed per date; metrics labelled with the site URL', async () => {
    const daemon = await makeDaemon(db, g, extra());
    try {
      // the seeded series exist before any run, the last success from the ledger
      const seeded = await daemon.metrics.text();
      assert.match(seeded, /ga_collector_fetch_runs_total\{property="sc-domain:example\.com",report="performance",outcome="failure"\} 0/);
      assert.ok(metricSum(seeded, 'ga_collector_last_success_timestamp_seconds', { property: SITE, report: 'performance' }) > 0);
      await daemon.scheduler.runOnce();
      const text = await daemon.metrics.text();
      assert.equal(metricSum(text, 'ga_collector_fetch_runs_total', { property: SITE, report: 'performance', outcome: 'success' }), 1);
      assert.equal(metricSum(text, 'ga_collector_fetch_runs_total', { property: DENIED, report: 'performance', outcome: 'failure' }), 1);
      assert.ok(metricSum(text, 'ga_collector_rows_written_total', { property: SITE, report: 'performance' }) > 0, 'the missing date was fetched again');
      assert.equal(metricSum(text, 'ga_collector_dates_pending', { property: SITE, report: 'performance' }), 0);
      assert.ok(metricSum(text, 'ga_collector_api_requests_total', { property: SITE, code: '200' }) > 0);
      assert.ok(metricSum(text, 'ga_collector_api_requests_total', { property: DENIED, code: '403' }) > 0);
      assert.ok(metricSum(text, 'ga_collector_last_success_timestamp_seconds', { property: SITE, report: 'appearance' }) > 0);

      const doc: StatusDocument = await daemon.statusDocument();
      const site = doc.reports.filter((r) => r.property === SITE);
      assert.deepEqual(
        site.map((r) => [r.kind, r.report, r.timeZone, r.gaps, r.dataThrough]),
        [
          ['searchConsole', 'performance', 'America/Los_Angeles', 0, addDays(today, -3)],
          ['searchConsole', 'appearance', 'America/Los_Angeles', 0, addDays(today, -1)],
        ],
      );
      assert.equal(doc.reports.find((r) => r.property === DENIED)!.attention, 'failing');
      assert.deepEqual([doc.summary.properties, doc.summary.sites], [0, 2]);
      // the chart: clicks per date summed over the rows of the report with the fewest dimensions (appearance)
      const chart = doc.series.find((s) => s.property === SITE)!;
      assert.deepEqual([chart.kind, chart.report, chart.metric, chart.source], ['searchConsole', 'appearance', 'clicks', 'rowSum']);
      // and what it groups by, for the caption (statusPage.ts rowSumBasis)
      assert.deepEqual([chart.dimensions, chart.aggregationType], [['searchAppearance'], 'auto']);
      const sums = await db.query<{ date: string; clicks: number }>(
        `SELECT to_char(date, 'YYYY-MM-DD') AS date, sum(clicks)::int AS clicks FROM "${gsc}".appearance WHERE site_url = $1 GROUP BY date ORDER BY date`,
        [SITE],
      );
      assert.ok(sums.length > 0);
      assert.deepEqual(
        chart.points,
        sums.map((r) => ({ date: r.date, value: r.clicks })),
      );
    } finally {
      await daemon.stop(0);
    }
  });
});
