/**
 * One property's backfill fetched in parallel: 365 days, 3 dimensions, every request answered
 * after 300 ms (a `delay` fault at the fake), `fetch.perPropertyConcurrency` 4 and `concurrency`
 * 10, so parallelism = min(4, 10); pages of 500 rows (PAGE_SIZE). Target: wall time <= 1.3 x (requests x 0.3 s / parallelism),
 * the requests counted from the fake's events (time-zone probe, listings and their pages, totals).
 *
 * A build whose config does not know `fetch.perPropertyConcurrency` refuses the config (unknown
 * keys are errors): the scenario is then reported as pending, not run.
 */
import type { ReportDefinition } from '../src/config/index.js';
import { writeConfig, type BenchContext } from './context.js';
import { isoDate, runCli } from './lib.js';
import { fmtS, lines, progress } from './table.js';

const PROPERTY = '300002';
const DAYS = 365;
const ROWS_PER_DAY = 300;
/**
 * Small pages, so the 109,500 rows take some 220 requests: the process's start and what must come
 * one after another (the time-zone probe, the totals listing, a listing's first page, the last
 * write) are then a small part of the ideal, as in a backfill large enough for parallel pages to
 * matter, and the fake (in the benchmark's process) builds few rows per request. Latency, not
 * rows, is what this scenario measures.
 */
const PAGE_SIZE = 500;
const LATENCY_MS = 300;
const PER_PROPERTY = 4;
const CONCURRENCY = 10;
const TARGET = 1.3;
const DEF: ReportDefinition = {
  name: 'parallel',
  dimensions: ['city', 'deviceCategory', 'browser'],
  metrics: ['sessions', 'totalUsers', 'screenPageViews'],
  startDate: `${DAYS}daysAgo`,
  refreshDays: 3,
};

export async function parallel(ctx: BenchContext): Promise<void> {
  const { db, fake, keyFile } = ctx;
  const parallelism = Math.min(PER_PROPERTY, CONCURRENCY);
  const name = `Backfill of one property, ${DAYS} days of ${ROWS_PER_DAY} rows, 3 dimensions, pages of ${PAGE_SIZE} rows, ${LATENCY_MS} ms a request, fetch.perPropertyConcurrency ${PER_PROPERTY}, concurrency ${CONCURRENCY}: CLI wall time`;
  const cfg = writeConfig(ctx, 'parallel', {
    database: { url: db.url, schema: db.schema('parallel') },
    google: { credentials: keyFile, tokenUrl: fake.tokenUrl, apiRootUrl: fake.apiRootUrl },
    concurrency: CONCURRENCY,
    fetch: { perPropertyConcurrency: PER_PROPERTY, pageSize: PAGE_SIZE },
    reports: { [DEF.name]: { dimensions: DEF.dimensions, metrics: DEF.metrics, startDate: DEF.startDate, refreshDays: DEF.refreshDays } },
    properties: [{ id: PROPERTY }],
  });
  // `config` reads and checks the configuration, asking Google nothing
  const known = await runCli(['config', '--config', cfg]);
  if (known.code !== 0) {
    if (!/perPropertyConcurrency/.test(known.stderr)) throw new Error(`config exited ${known.code}: ${known.stderr.trim()}`);
    lines.push({ name, result: 'not run: this build refuses fetch.perPropertyConcurrency (unknown key)', target: `<= ${TARGET} x ideal`, ok: 'pending' });
    return;
  }

  fake.addProperty({ id: PROPERTY, timeZone: 'UTC', rowsPerDay: ROWS_PER_DAY });
  fake.grant(ctx.account, PROPERTY);
  fake.setQuota(PROPERTY, { tokensPerDay: 1e9, tokensPerHour: 1e9, tokensPerProjectPerHour: 1e9 });
  const yesterday = isoDate(Date.now() - 86_400_000);
  const first = isoDate(Date.parse(yesterday) - (DAYS - 1) * 86_400_000);
  progress(`parallel backfill of ${DAYS} days, ${LATENCY_MS} ms a request`);
  fake.inject({ endpoint: 'runReport', property: PROPERTY, kind: 'delay', delayMs: LATENCY_MS });
  const mark = fake.events.length;
  try {
    const r = await runCli(['backfill', '--config', cfg, '--property', PROPERTY, '--from', first, '--to', yesterday]);
    if (r.code !== 0) throw new Error(`parallel backfill exited ${r.code}: ${r.stderr.trim().split('\n')[0]}`);
    const requests = fake.events.slice(mark).filter((e) => e.kind === 'runReport' && e.property === PROPERTY).length;
    const ideal = (requests * LATENCY_MS) / parallelism;
    lines.push({
      name: `${name} (${requests} requests)`,
      result: fmtS(r.wallMs),
      reference: `ideal ${requests} x ${LATENCY_MS / 1000} s / ${parallelism} = ${fmtS(ideal)}`,
      ratio: (r.wallMs / ideal).toFixed(2),
      target: `<= ${TARGET}`,
      ok: r.wallMs / ideal <= TARGET,
    });
  } finally {
    fake.clearFaults();
  }
}
