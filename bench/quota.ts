/**
 * Quota accounting: requests and quota tokens per stored property-day, counted from the fake
 * Google's runReport events (each says the tokens it was charged: the fake's model is in
 * packages/fake-google/src/report-endpoint.ts tokenCost), for ga-collector and for the "one
 * request per day" client (peer.ts with `perDay`: one runReport per date, paged, a common default
 * of GA4 scripts and connectors), on the same property and rows:
 *
 *  (a) a 365-day backfill through yesterday;
 *  (b) the scheduled run that follows (`run --once`, the refresh window due again): the peer asks
 *      for the same dates, one request each.
 *
 * Also: how many requests the per-date totals add per fetched range (target: at most one).
 */
import type { FakeEvent, FakeGoogle } from '@ga-collector/fake-google';
import type { ReportDefinition } from '../src/config/index.js';
import { ident, qualified } from '../src/store/identifiers.js';
import { migrate } from '../src/store/migrations.js';
import { ensureReportTables, reportColumns } from '../src/store/reportTables.js';
import { silentLogger, writeConfig, type BenchContext } from './context.js';
import { isoDate, logLines, runCli, runPeer, sleep } from './lib.js';
import { lines, notes, progress } from './table.js';

const PROPERTY = '300001';
const DAYS = 365;
const ROWS_PER_DAY = 300;
const DEF: ReportDefinition = {
  name: 'quota',
  dimensions: ['city', 'deviceCategory', 'browser'],
  metrics: ['sessions', 'totalUsers', 'screenPageViews'],
  startDate: `${DAYS}daysAgo`,
  refreshDays: 3,
};
/** The target: ga-collector's requests per stored property-day over the one-per-day client's, for the backfill. */
const REQUESTS_RATIO_TARGET = 1 / 5;

interface Tally {
  requests: number;
  tokens: number;
  /** companion requests for per-date totals: metricAggregations TOTAL, or only the `date` dimension (not the time-zone probe) */
  totals: number;
  /** data listings: first pages of a request with more dimensions than `date` */
  ranges: number;
  probes: number;
}

/** The time-zone probe (src/ga4/requests.ts timeZoneProbeRequest): `date` only, one row, yesterday. */
function isProbe(e: FakeEvent): boolean {
  return e.limit === 1 && e.startDate === e.endDate && e.dimensions?.length === 1 && !e.aggregations?.length;
}

function tally(events: FakeEvent[]): Tally {
  const t: Tally = { requests: 0, tokens: 0, totals: 0, ranges: 0, probes: 0 };
  for (const e of events) {
    if (e.kind !== 'runReport' || e.property !== PROPERTY) continue;
    t.requests++;
    t.tokens += e.tokens ?? 0;
    const dims = e.dimensions ?? [];
    if (isProbe(e)) t.probes++;
    else if (e.aggregations?.includes('TOTAL') || (dims.length === 1 && dims[0] === 'date')) t.totals++;
    else if (e.offset === 0) t.ranges++;
  }
  return t;
}

/** The fake's events from index `from` on. */
function since(fake: FakeGoogle, from: number): FakeEvent[] {
  return fake.events.slice(from);
}

const per = (n: number, days: number) => (n / days).toFixed(3);

export async function quota(ctx: BenchContext): Promise<void> {
  const { db, fake, keyFile } = ctx;
  fake.addProperty({ id: PROPERTY, timeZone: 'UTC', rowsPerDay: ROWS_PER_DAY });
  fake.grant(ctx.account, PROPERTY);
  fake.setQuota(PROPERTY, { tokensPerDay: 1e9, tokensPerHour: 1e9, tokensPerProjectPerHour: 1e9 });
  const yesterday = isoDate(Date.now() - 86_400_000);
  const first = isoDate(Date.parse(yesterday) - (DAYS - 1) * 86_400_000);

  const schema = db.schema('quota');
  const cfg = writeConfig(ctx, 'quota', {
    database: { url: db.url, schema },
    google: { credentials: keyFile, tokenUrl: fake.tokenUrl, apiRootUrl: fake.apiRootUrl },
    schedule: '* * * * * *',
    reports: { [DEF.name]: { dimensions: DEF.dimensions, metrics: DEF.metrics, startDate: DEF.startDate, refreshDays: DEF.refreshDays } },
    properties: [{ id: PROPERTY }],
  });

  progress(`quota (a): ${DAYS}-day backfill through the collector`);
  let mark = fake.events.length;
  const backfill = await runCli(['backfill', '--config', cfg, '--property', PROPERTY, '--from', first, '--to', yesterday]);
  if (backfill.code !== 0) throw new Error(`quota backfill exited ${backfill.code}: ${backfill.stderr.trim()}`);
  const a = tally(since(fake, mark));
  const aDays = Number((await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${qualified(schema, 'fetch_days')}`))[0]!.n);
  if (aDays !== DAYS) notes.push(`The quota backfill stored ${aDays} property-days, not ${DAYS}.`);

  const peerSchema = db.schema('quotapeer');
  await migrate(db.pool, peerSchema, silentLogger);
  await ensureReportTables(db.pool, peerSchema, [DEF], silentLogger);
  const cols = reportColumns(DEF);
  const peerArgs = (from: string, to: string) => ({
    keyFile,
    api: fake.apiRootUrl,
    property: PROPERTY,
    from,
    to,
    dimensions: DEF.dimensions,
    metrics: DEF.metrics,
    perDay: true,
    pageSize: 100_000,
    database: db.url,
    table: qualified(peerSchema, DEF.name),
    columns: ['property_id', 'date', ...cols.dims, ...cols.metrics].map(ident),
  });
  progress(`quota (a): the same ${DAYS} days, one request per date`);
  mark = fake.events.length;
  const aPeerRun = await runPeer(peerArgs(first, yesterday));
  const aPeer = tally(since(fake, mark));

  // (b) the window is due again once the schedule (every second) has fired after the backfill
  await sleep(1100);
  progress('quota (b): scheduled run (refresh window) through the collector');
  mark = fake.events.length;
  const run = await runCli(['run', '--once', '--config', cfg]);
  if (run.code !== 0) throw new Error(`quota run --once exited ${run.code}: ${run.stderr.trim().split('\n')[0]}`);
  const b = tally(since(fake, mark));
  const bDays = Number(logLines(run.stdout).find((l) => l['event'] === 'job_succeeded')?.['dates'] ?? 0);
  if (bDays === 0) throw new Error('the scheduled run stored no date');
  progress(`quota (b): the same ${bDays} dates, one request per date`);
  mark = fake.events.length;
  await runPeer(peerArgs(isoDate(Date.parse(yesterday) - (bDays - 1) * 86_400_000), yesterday));
  const bPeer = tally(since(fake, mark));

  const aRatio = a.requests / DAYS / (aPeer.requests / DAYS);
  lines.push({
    name: `(a) ${DAYS}-day backfill, 3 dimensions, ${ROWS_PER_DAY} rows a day: requests per stored property-day (collector: ${a.requests} = ${a.requests - a.totals - a.probes} report pages in ${a.ranges} listing(s), ${a.totals} totals, ${a.probes} time-zone probe)`,
    result: per(a.requests, DAYS),
    reference: `one request per day: ${per(aPeer.requests, DAYS)} (${aPeer.requests}, ${aPeerRun.rows.toLocaleString('en-US')} rows)`,
    ratio: aRatio.toFixed(3),
    target: '<= 0.2',
    ok: aRatio <= REQUESTS_RATIO_TARGET,
  });
  lines.push({
    name: `(a) the same: quota tokens per stored property-day`,
    result: per(a.tokens, DAYS),
    reference: `one request per day: ${per(aPeer.tokens, DAYS)}`,
    ratio: (a.tokens / aPeer.tokens).toFixed(3),
  });
  lines.push({
    name: `(b) scheduled run, refresh window of ${bDays} dates: requests per stored property-day (collector: ${b.requests}, ${b.totals} of them totals)`,
    result: per(b.requests, bDays),
    reference: `one request per day: ${per(bPeer.requests, bDays)}`,
    ratio: (b.requests / bPeer.requests).toFixed(3),
  });
  lines.push({
    name: '(b) the same: quota tokens per stored property-day',
    result: per(b.tokens, bDays),
    reference: `one request per day: ${per(bPeer.tokens, bDays)}`,
    ratio: (b.tokens / bPeer.tokens).toFixed(3),
  });
  const ranges = a.ranges + b.ranges;
  const totals = a.totals + b.totals;
  lines.push({
    name: `Per-date totals in (a) and (b): requests per fetched range (${totals} totals requests, ${ranges} ranges)`,
    result: (totals / ranges).toFixed(2),
    target: '<= 1',
    ok: totals <= ranges,
  });
}
