/**
 * `npm run bench`: the collector against the limits of this machine, all measured in one run and
 * printed as a Markdown table; exits 1 when a target is missed.
 *
 *  1. Ingest: a 1,000,080-row backfill (180 days of 5,556 rows, 4 dimensions, 5 metrics) through
 *     the real CLI, fake Google answering at zero latency, against `psql \copy` of the same rows
 *     from a CSV file into the same table (the physical limit) and against a loop of one INSERT
 *     per row. Peak RSS of that backfill, as installed (dist/main.js's launch flags) and, for
 *     reference, without them. The write paths alone: COPY versus the `unnest`
 *     statement the day writer used before.
 *     The peer on the same rows: the script a Node.js user writes with Google's official client
 *     `@google-analytics/data` (peer.ts), paging into COPY; its answers are replayed as well.
 *  2. Quota (quota.ts): requests and quota tokens per stored property-day, against a client that
 *     asks one date per request, for a 365-day backfill and a scheduled run.
 *  3. Parallel (parallel.ts): one property's 365-day backfill with 300 ms a request and
 *     `fetch.perPropertyConcurrency` 4, against requests x 0.3 s / parallelism.
 *  4. Scale: 1,000 properties, 100 ms API latency, concurrency 10: a scheduled run's wall time
 *     over the ideal (1,000 requests x 0.1 s / 10); the daemon with 1,000 properties scheduled:
 *     time to /readyz 200, idle RSS and CPU.
 *
 * The fake Google runs in this process. For the ingest runs its Data API answers are recorded
 * once and replayed (replay.ts), so the timed runs measure the collector and PostgreSQL, not the
 * fake's report generator. Everything lives in a database of its own (BENCH_DATABASE_URL,
 * DATABASE_URL or the local `test` database is only used to create and drop it).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ReportDefinition } from '../src/config/index.js';
import { FakeGoogle } from '@ga-collector/fake-google';
import { segmentsOf } from '../src/ga4/rowText.js';
import type { DayData, ReportRow } from '../src/ga4/types.js';
import { metricType } from '@ga-collector/fake-google';
import { replaceDays } from '../src/store/dayWriter.js';
import { ident, qualified } from '../src/store/identifiers.js';
import { migrate } from '../src/store/migrations.js';
import { ensureReportTables, reportColumns } from '../src/store/reportTables.js';
import { silentLogger as silent, writeConfig, type BenchContext } from './context.js';
import { BenchDb, benchRows, freePort, isoDate, killChildren, launchFlags, logLines, psql, runCli, runPeer, sample, sleep, startCli, writeCsv } from './lib.js';
import { parallel } from './parallel.js';
import type { PeerResult } from './peer.js';
import { quota } from './quota.js';
import { ReplayProxy } from './replay.js';
import { fmtMb, fmtRate, fmtS, lines, missed, notes, print, progress, rate } from './table.js';
import { naiveInserts, unnestReplace, type PlainRow } from './writers.js';

const ADMIN_URL = process.env['BENCH_DATABASE_URL'] ?? process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const ACCOUNT = 'bench@bench-project.iam.gserviceaccount.com';

// 1. ingest
const INGEST_PROPERTY = '100001';
const DAYS = 180;
const ROWS_PER_DAY = 5556;
const LAST_DAY = '2025-06-29';
const BENCH_REPORT: ReportDefinition = {
  name: 'bench',
  dimensions: ['pagePath', 'city', 'deviceCategory', 'browser'],
  metrics: ['sessions', 'totalUsers', 'screenPageViews', 'eventCount', 'bounceRate'],
  startDate: '2020-01-01',
  refreshDays: 3,
};
const INGEST_TARGET = 0.6;
const RSS_TARGET_MB = 150;
/** the peer's page: Google's default is 10,000 rows, its maximum 250,000 */
const PEER_PAGE = 100_000;
const PEER_TARGET = 4;
const NAIVE_MAX_ROWS = 20_000;
const NAIVE_BUDGET_MS = 15_000;
const WRITER_DAYS = 36;

// 2. scale
const PROPERTIES = 1000;
const LATENCY_MS = 100;
const CONCURRENCY = 10;
const IDLE_MS = 10_000;
const ZONES = ['America/Los_Angeles', 'Europe/Berlin', 'Asia/Tokyo', 'Pacific/Auckland', 'UTC'];

async function main(): Promise<number> {
  const db = await BenchDb.create(ADMIN_URL);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gac-bench-'));
  const fake = new FakeGoogle();
  await fake.start();
  const proxy = new ReplayProxy(fake.url);
  const proxyUrl = await proxy.start();
  const keyFile = path.join(tmp, 'key.json');
  fs.writeFileSync(keyFile, JSON.stringify(fake.createAccount(ACCOUNT)), { mode: 0o600 });
  const ctx: BenchContext = { db, fake, keyFile, account: ACCOUNT, tmp };
  try {
    pgVersion = (await db.query<{ v: string }>(`SELECT current_setting('server_version') AS v`))[0]!.v;
    // BENCH_ONLY=ingest,quota (any of ingest, quota, parallel, scale) runs those parts, while working on them
    const only = process.env['BENCH_ONLY']?.split(',');
    const runs = (part: string) => !only || only.includes(part);
    if (runs('ingest')) await ingest(ctx, proxy, proxyUrl);
    if (runs('quota')) await quota(ctx);
    if (runs('parallel')) await parallel(ctx);
    if (runs('scale')) await scale(ctx);
  } finally {
    killChildren();
    await proxy.stop();
    await fake.stop();
    await db.drop().catch((err: unknown) => process.stderr.write(`bench: cleanup: ${String(err)}\n`));
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  print(pgVersion);
  return missed() ? 1 : 0;
}

async function checkpoint(db: BenchDb): Promise<void> {
  // every timed write starts from a clean checkpoint, so none pays for another's dirty pages
  await db.query('CHECKPOINT').catch(() => undefined);
}

async function ingest(ctx: BenchContext, proxy: ReplayProxy, proxyUrl: string): Promise<void> {
  const { db, fake, keyFile, tmp } = ctx;
  const def = BENCH_REPORT;
  const dates = Array.from({ length: DAYS }, (_, i) => isoDate(Date.parse(LAST_DAY) - (DAYS - 1 - i) * 86_400_000));
  fake.addProperty({ id: INGEST_PROPERTY, timeZone: 'UTC', rowsPerDay: ROWS_PER_DAY });
  fake.grant(ACCOUNT, INGEST_PROPERTY);
  // the recording run pays the fake's quota; the replayed ones do not reach it
  fake.setQuota(INGEST_PROPERTY, { tokensPerDay: 1e9, tokensPerHour: 1e9, tokensPerProjectPerHour: 1e9 });

  progress('writing the rows as CSV');
  const csv = path.join(tmp, 'rows.csv');
  const total = await writeCsv(csv, INGEST_PROPERTY, benchRows(INGEST_PROPERTY, def, dates, ROWS_PER_DAY));

  const raw = db.schema('raw');
  const pipe = db.schema('pipe');
  await migrate(db.pool, raw, silent);
  await ensureReportTables(db.pool, raw, [def], silent);
  const cols = reportColumns(def);
  const columnList = ['property_id', 'date', ...cols.dims, ...cols.metrics].map(ident).join(', ');
  const rawCopy = async () => {
    await db.query(`TRUNCATE ${qualified(raw, def.name)}`);
    await checkpoint(db);
    return psql(db.url, `\\copy ${qualified(raw, def.name)} (${columnList}) FROM '${csv}' WITH (FORMAT csv)`);
  };

  const cfg = writeConfig(ctx, 'ingest', {
    database: { url: db.url, schema: pipe },
    google: { credentials: keyFile, tokenUrl: fake.tokenUrl, apiRootUrl: `${proxyUrl}/` },
    reports: { [def.name]: { dimensions: def.dimensions, metrics: def.metrics, startDate: def.startDate, refreshDays: def.refreshDays } },
    properties: [{ id: INGEST_PROPERTY }],
  });
  const backfill = ['backfill', '--config', cfg, '--property', INGEST_PROPERTY, '--from', dates[0]!, '--to', dates.at(-1)!];
  const pipeline = async (opts: { bare?: boolean } = {}) => {
    await db.query(`TRUNCATE ${qualified(pipe, def.name)}, ${qualified(pipe, 'fetch_days')}`);
    await checkpoint(db);
    const r = await runCli(backfill, {}, opts);
    if (r.code !== 0) throw new Error(`backfill exited ${r.code}: ${r.stderr.trim()}`);
    const done = logLines(r.stdout).find((l) => l['event'] === 'job_succeeded');
    if (done?.['rows'] !== total) throw new Error(`backfill stored ${String(done?.['rows'])} rows, expected ${total}`);
    return r;
  };

  progress("recording the fake's answers (an unmeasured backfill)");
  const warm = await runCli(backfill);
  if (warm.code !== 0) throw new Error(`recording backfill exited ${warm.code}: ${warm.stderr.trim()}`);
  const recorded = proxy.misses;

  // alternate, best of two each: this machine is shared and noisy
  const rawMs: number[] = [];
  const runs: Array<Awaited<ReturnType<typeof pipeline>>> = [];
  for (let i = 0; i < 2; i++) {
    progress(`psql \\copy of ${total} rows (${i + 1}/2)`);
    rawMs.push(await rawCopy());
    progress(`backfill of ${total} rows through the collector (${i + 1}/2)`);
    runs.push(await pipeline());
  }
  if (proxy.misses !== recorded) notes.push(`${proxy.misses - recorded} Data API requests of the timed runs were not replayed and went to the fake.`);
  await sameData(db, raw, pipe, def);
  const rawRate = rate(total, Math.min(...rawMs));
  const bestPipe = runs.reduce((a, b) => (a.wallMs <= b.wallMs ? a : b));
  const pipeRate = rate(total, bestPipe.wallMs);
  lines.push({
    name: `Backfill of ${total.toLocaleString('en-US')} rows, fake Google at zero latency -> PostgreSQL (CLI wall time, best of 2)`,
    result: fmtRate(pipeRate),
    reference: `psql \\copy from CSV: ${fmtRate(rawRate)}`,
    ratio: (pipeRate / rawRate).toFixed(2),
    target: `>= ${INGEST_TARGET}`,
    ok: pipeRate / rawRate >= INGEST_TARGET,
  });

  const peerRate = await peer(ctx, proxy, proxyUrl, dates, total, raw);
  lines.push({
    name: `Same backfill against the peer: Google's official client \`@google-analytics/data\` (REST), pages of ${PEER_PAGE.toLocaleString('en-US')} rows, each written with COPY (peer's own timer)`,
    result: fmtRate(pipeRate),
    reference: `peer: ${fmtRate(peerRate)}`,
    ratio: (pipeRate / peerRate).toFixed(2),
    target: `>= ${PEER_TARGET}`,
    ok: pipeRate / peerRate >= PEER_TARGET,
  });

  progress('naive loop: one INSERT per row');
  const naive = db.schema('naive');
  await migrate(db.pool, naive, silent);
  await ensureReportTables(db.pool, naive, [def], silent);
  await checkpoint(db);
  const client = await db.pool.connect();
  let naiveRate: number;
  try {
    const r = await naiveInserts(client, naive, def, INGEST_PROPERTY, benchRows(INGEST_PROPERTY, def, dates, ROWS_PER_DAY), NAIVE_MAX_ROWS, NAIVE_BUDGET_MS);
    naiveRate = rate(r.rows, r.ms);
    lines.push({
      name: 'Same backfill against a loop of one INSERT per row, autocommit',
      result: fmtRate(pipeRate),
      reference: `INSERT loop: ${fmtRate(naiveRate)} (first ${r.rows.toLocaleString('en-US')} rows)`,
      ratio: (pipeRate / naiveRate).toFixed(1),
      target: '>= 20',
      ok: pipeRate / naiveRate >= 20,
    });
  } finally {
    client.release();
  }

  const peak = Math.max(...runs.map((r) => r.peakRss));
  progress('the same backfill once more without the launch flags, for reference');
  const bare = await pipeline({ bare: true });
  lines.push({
    name: `Peak RSS of that backfill (\`ga-collector backfill\` as installed: \`node ${launchFlags().join(' ')} dist/main.js\`, VmHWM, worst of 2)`,
    result: fmtMb(peak),
    reference: `\`node dist/main.js\` without the flags: ${fmtMb(bare.peakRss)}`,
    target: `< ${RSS_TARGET_MB} MB`,
    ok: peak < RSS_TARGET_MB * 2 ** 20,
  });

  progress('write paths alone: COPY and unnest');
  await writers(db, def, dates.slice(0, WRITER_DAYS));
}

/**
 * The peer (peer.ts) on the same rows, through the same replay proxy: one unmeasured run records
 * its requests' answers, then a timed run into the emptied table; returns its rows/s (its own
 * timer: from its first request to its last commit, without loading modules).
 */
async function peer(ctx: BenchContext, proxy: ReplayProxy, proxyUrl: string, dates: string[], total: number, raw: string): Promise<number> {
  const { db, keyFile } = ctx;
  const def = BENCH_REPORT;
  const schema = db.schema('peer');
  await migrate(db.pool, schema, silent);
  await ensureReportTables(db.pool, schema, [def], silent);
  const cols = reportColumns(def);
  const table = qualified(schema, def.name);
  const args = {
    keyFile,
    api: proxyUrl,
    property: INGEST_PROPERTY,
    from: dates[0]!,
    to: dates.at(-1)!,
    dimensions: def.dimensions,
    metrics: def.metrics,
    perDay: false,
    pageSize: PEER_PAGE,
    database: db.url,
    table,
    columns: ['property_id', 'date', ...cols.dims, ...cols.metrics].map(ident),
  };
  const once = async (): Promise<PeerResult> => {
    await db.query(`TRUNCATE ${table}`);
    await checkpoint(db);
    const r = await runPeer(args);
    if (r.rows !== total) throw new Error(`the peer stored ${r.rows} rows, expected ${total}`);
    return r;
  };
  progress("the peer: recording the fake's answers to its requests (an unmeasured run)");
  await once();
  const recorded = proxy.misses;
  // one timed run: the peer is several times slower than the collector, far beyond this machine's noise
  progress(`the peer: ${total} rows`);
  const { ms } = await once();
  if (proxy.misses !== recorded) notes.push(`${proxy.misses - recorded} Data API requests of the peer's timed run were not replayed.`);
  await sameData(db, raw, schema, def);
  return rate(total, ms);
}

/** The collector stored what psql loaded: same rows, same sums. */
async function sameData(db: BenchDb, raw: string, pipe: string, def: ReportDefinition): Promise<void> {
  const cols = reportColumns(def);
  const sums = cols.metrics.map((m) => `sum(${ident(m)})::float8`).join(', ');
  const q = (schema: string) =>
    db.query(`SELECT count(*)::int AS n, count(DISTINCT (date, ${cols.dims.map(ident).join(', ')}))::int AS keys, ${sums} FROM ${qualified(schema, def.name)}`);
  const [a] = await q(raw);
  const [b] = await q(pipe);
  const same = Object.keys(a!).every((k) => Math.abs(Number(a![k]) - Number(b![k])) <= 1e-9 * Math.max(1, Math.abs(Number(a![k]))));
  if (!same) throw new Error(`the collector stored other data than psql loaded: ${JSON.stringify(b)} vs ${JSON.stringify(a)}`);
}

async function writers(db: BenchDb, def: ReportDefinition, dates: string[]): Promise<void> {
  const rows: PlainRow[] = [...benchRows(INGEST_PROPERTY, def, dates, ROWS_PER_DAY)];
  const integer = def.metrics.map((m) => metricType(m) === 'TYPE_INTEGER');
  const meta = { timeZone: 'UTC', currencyCode: 'USD', dataLossFromOtherRow: false, subjectToThresholding: false, sampling: [] };
  const reportRows: ReportRow[] = rows.map((r) => ({ date: r.date, dims: r.dims, metrics: r.values.map((v, k) => (integer[k] ? String(v) : v)) }));
  const days: DayData[] = segmentsOf(INGEST_PROPERTY, reportRows).map((s) => ({ date: s.date, rowCount: s.rows, text: [s.text], meta }));
  const copySchema = db.schema('copyw');
  const unnestSchema = db.schema('unnestw');
  for (const s of [copySchema, unnestSchema]) {
    await migrate(db.pool, s, silent);
    await ensureReportTables(db.pool, s, [def], silent);
  }
  const client = await db.pool.connect();
  try {
    const BATCH = 4; // days per transaction, as the runner batches ~20,000 rows
    await checkpoint(db);
    let t = performance.now();
    for (let i = 0; i < days.length; i += BATCH) {
      await replaceDays(client, { schema: copySchema, def, propertyId: INGEST_PROPERTY, days: days.slice(i, i + BATCH), settledBefore: dates[0]! });
    }
    const copyMs = performance.now() - t;
    await checkpoint(db);
    t = performance.now();
    for (let i = 0; i < dates.length; i += BATCH) {
      const batch = new Set(dates.slice(i, i + BATCH));
      await unnestReplace(
        client,
        unnestSchema,
        def,
        INGEST_PROPERTY,
        rows.filter((r) => batch.has(r.date)),
      );
    }
    const unnestMs = performance.now() - t;
    lines.push({
      name: `Day writer alone, ${rows.length.toLocaleString('en-US')} rows in transactions of 4 days: COPY (kept) against unnest (before)`,
      result: fmtRate(rate(rows.length, copyMs)),
      reference: `unnest: ${fmtRate(rate(rows.length, unnestMs))}`,
      ratio: (unnestMs / copyMs).toFixed(2),
    });
  } finally {
    client.release();
  }
}

async function scale(ctx: BenchContext): Promise<void> {
  const { db, fake, keyFile } = ctx;
  const ids = Array.from({ length: PROPERTIES }, (_, i) => String(200_000 + i));
  ids.forEach((id, i) => {
    fake.addProperty({ id, timeZone: ZONES[i % ZONES.length]! });
    fake.grant(ACCOUNT, id);
  });
  const schema = db.schema('scale');
  const base = {
    database: { url: db.url, schema },
    google: { credentials: keyFile, tokenUrl: fake.tokenUrl, apiRootUrl: fake.apiRootUrl },
    concurrency: CONCURRENCY,
    reports: { daily: { metrics: ['sessions', 'totalUsers', 'screenPageViews'], startDate: '3daysAgo', refreshDays: 3 } },
    properties: ids.map((id) => ({ id })),
  };
  // every second: the next run --once finds the refresh window due again
  const everySecond = writeConfig(ctx, 'scale', { ...base, schedule: '* * * * * *' });

  progress(`first run of ${PROPERTIES} properties (time zones unknown: a probe and a range each)`);
  fake.inject({ endpoint: 'runReport', kind: 'delay', delayMs: LATENCY_MS });
  let calls = fake.counts().runReport;
  const first = await runCli(['run', '--once', '--config', everySecond]);
  if (first.code !== 0) throw new Error(`first run exited ${first.code}: ${first.stderr.trim().split('\n')[0]}`);
  const firstCalls = fake.counts().runReport - calls;
  const firstIdeal = (firstCalls * LATENCY_MS) / CONCURRENCY;
  lines.push({
    name: `First run of ${PROPERTIES} properties, ${LATENCY_MS} ms API latency, concurrency ${CONCURRENCY} (${firstCalls} requests: time-zone probe + range)`,
    result: fmtS(first.wallMs),
    reference: `ideal ${firstCalls} x ${LATENCY_MS / 1000} s / ${CONCURRENCY} = ${fmtS(firstIdeal)}`,
    ratio: (first.wallMs / firstIdeal).toFixed(2),
  });

  await sleep(1100);
  progress(`daily run of ${PROPERTIES} properties with ${LATENCY_MS} ms latency`);
  calls = fake.counts().runReport;
  const tokens = fake.counts().token;
  const daily = await runCli(['run', '--once', '--config', everySecond]);
  if (daily.code !== 0) throw new Error(`daily run exited ${daily.code}: ${daily.stderr.trim().split('\n')[0]}`);
  const dailyCalls = fake.counts().runReport - calls;
  const ideal = (PROPERTIES * LATENCY_MS) / CONCURRENCY;
  lines.push({
    name: `Scheduled run of ${PROPERTIES} properties (refresh window: one request each, ${dailyCalls} made), ${LATENCY_MS} ms latency, concurrency ${CONCURRENCY}; process wall time`,
    result: fmtS(daily.wallMs),
    reference: `ideal ${PROPERTIES} x ${LATENCY_MS / 1000} s / ${CONCURRENCY} = ${fmtS(ideal)}`,
    ratio: (daily.wallMs / ideal).toFixed(2),
    target: '<= 1.2',
    ok: daily.wallMs / ideal <= 1.2,
  });
  const exchanges = fake.counts().token - tokens;
  if (exchanges !== 1) notes.push(`The scheduled run made ${exchanges} token exchanges (expected 1).`);

  progress(`daemon with ${PROPERTIES} properties scheduled: readiness, then idle`);
  fake.clearFaults();
  const port = await freePort();
  const daemonCfg = writeConfig(ctx, 'daemon', { ...base, http: { host: '127.0.0.1', port } });
  const proc = startCli(['run', '--config', daemonCfg]);
  let readyMs = -1;
  while (performance.now() - proc.started < 60_000) {
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) {
      readyMs = performance.now() - proc.started;
      break;
    }
    await sleep(10);
  }
  if (readyMs < 0) {
    const why = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.text(),
      (err: unknown) => String(err),
    );
    throw new Error(`the daemon did not become ready within 60 s: ${why}; ${proc.out.stderr.trim().split('\n').slice(-3).join(' / ')}`);
  }
  // the start-up run (nothing is due) ends with a job_succeeded per property
  const deadline = performance.now() + 120_000;
  while (logLines(proc.out.stdout).filter((l) => l['event'] === 'job_succeeded').length < PROPERTIES) {
    if (performance.now() > deadline) throw new Error('the start-up run did not finish within 120 s');
    await sleep(200);
  }
  await sleep(2000);
  const s0 = sample(proc.child.pid!);
  await sleep(IDLE_MS);
  const s1 = sample(proc.child.pid!);
  proc.child.kill('SIGTERM');
  const end = await proc.done;
  if (!s0 || !s1) throw new Error('the daemon exited while idle');
  if (end.code !== 0) notes.push(`The daemon exited ${end.code} on SIGTERM.`);
  lines.push({ name: `Daemon with ${PROPERTIES} properties scheduled: start to /readyz answering 200`, result: fmtS(readyMs) });
  lines.push({ name: `Daemon with ${PROPERTIES} properties scheduled, idle: RSS`, result: fmtMb(s1.rss) });
  lines.push({
    name: `Daemon with ${PROPERTIES} properties scheduled, idle: CPU over ${IDLE_MS / 1000} s`,
    result: `${(((s1.cpuMs - s0.cpuMs) / IDLE_MS) * 100).toFixed(2)} % of one core`,
  });
}

let pgVersion = '?';

process.on('SIGINT', () => {
  killChildren();
  process.exit(130);
});

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    killChildren();
    print(pgVersion);
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
