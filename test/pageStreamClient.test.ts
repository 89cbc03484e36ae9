/**
 * Pages read as they arrive, through the real HTTP path (Ga4Client.runReportPageStream under
 * fetchRange) against the fake Google: a listing of many pages gives exactly the generator's rows,
 * plain or gzipped; a page the scanner gives up on (an unknown field in every row, a body cut
 * short) is asked for again and read whole, said in the log, and the result is still exact; a 429
 * for the day's quota on a streamed request is told apart by Google's message as on a page read
 * whole (gaxios hands a streamed error response's body over in the error's message only).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { generateReport, type Fault } from '@ga-collector/fake-google';
import { TokenManager, type TokenSource } from '../src/auth/tokenManager.js';
import type { ReportDefinition } from '../src/config/index.js';
import { DeferError } from '../src/errors.js';
import type { CallContext } from '../src/ga4/callContext.js';
import { Ga4Client } from '../src/ga4/client.js';
import { Limiter } from '../src/ga4/limiter.js';
import { PageStream } from '../src/ga4/pageStream.js';
import { fetchRange } from '../src/ga4/report.js';
import { reportPageRequest, runReportParams } from '../src/ga4/requests.js';
import { createLogger } from '../src/log.js';
import { Metrics } from '../src/metrics.js';
import { dateRange } from '../src/time.js';
import { startFake, type FakeSetup } from './helpers.js';

const P = '880001';
const DIMENSIONS = ['country', 'deviceCategory'];
const METRICS = ['sessions', 'screenPageViews'];
const def: ReportDefinition = { name: 'r', dimensions: DIMENSIONS, metrics: METRICS, startDate: '30daysAgo', refreshDays: 2 };
const START = '2024-03-01';
const END = '2024-03-06';
const PAGE_SIZE = 40;

/** Each date's row text as the generator makes it: the rows the fake serves, in the order asked for (date, then each dimension). */
const EXPECTED: Record<string, string> = Object.fromEntries(
  dateRange(START, END).map((date) => {
    const rows = generateReport({ propertyId: P, date, dimensions: DIMENSIONS, metrics: METRICS });
    rows.sort((a, b) => (a.dims.join('\u0000') < b.dims.join('\u0000') ? -1 : 1));
    return [date, rows.map((r) => `${P}\t${date}\t${r.dims.join('\t')}\t${r.values.join('\t')}\n`).join('')];
  }),
);
const TOTAL_ROWS = Object.values(EXPECTED).join('').split('\n').length - 1;

interface Setup {
  g: FakeSetup;
  client: Ga4Client;
  tokens: TokenSource;
  manager: TokenManager;
}

async function setup(compress = false): Promise<Setup> {
  const g = await startFake([{ id: P, timeZone: 'UTC' }], { compress });
  const metrics = new Metrics({ defaultMetrics: false });
  const manager = new TokenManager({ tokenUrl: g.fake.tokenUrl, logger: createLogger('silent'), metrics });
  const tokens = manager.forKeyFile(g.keyFile);
  await manager.start();
  const client = new Ga4Client({
    apiRootUrl: g.fake.apiRootUrl,
    timeoutMs: 10_000,
    maxAttempts: 4,
    limiter: new Limiter(4),
    metrics,
    backoffBaseMs: 1,
    backoffCapMs: 5,
  });
  return { g, client, tokens, manager };
}

/** A call context whose log lines (pino JSON) are kept. */
function context(s: Setup): { ctx: CallContext; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { ctx: { propertyId: P, tokens: s.tokens, logger: createLogger('info', sink), report: 'r' }, lines };
}

/** Every date of the range read by fetchRange, as text; and the offsets of the report's pages asked for. */
async function readRange(s: Setup, ctx: CallContext, parallelPages = 1): Promise<{ text: Record<string, string>; offsets: number[] }> {
  s.g.fake.events.length = 0;
  const text: Record<string, string> = {};
  for await (const day of fetchRange(s.client, ctx, def, START, END, { pageSize: PAGE_SIZE, parallelPages })) {
    assert.equal(text[day.date], undefined, `${day.date} handed out once`);
    text[day.date] = Buffer.concat(day.text).toString('utf8');
    assert.equal(day.rowCount, text[day.date]!.split('\n').length - 1, `${day.date}: its row count`);
  }
  const offsets = s.g.fake.events.filter((e) => e.kind === 'runReport').map((e) => e.offset ?? 0);
  return { text, offsets };
}

/** Offsets of every page of the listing, once each. */
const PAGES = Array.from({ length: Math.ceil(TOTAL_ROWS / PAGE_SIZE) }, (_, k) => k * PAGE_SIZE);
const pageAt = (offset: number) => (r: { offset: number }) => r.offset === offset;
/** an error as a failed assertion says it */
const what = (err: unknown) =>
  err instanceof Error ? `${err.constructor.name} ${(err as { code?: string }).code}: ${err.message}` : `no error: ${JSON.stringify(err).slice(0, 60)}`;
/** the page loop's `page_read_whole` lines */
const readWhole = (lines: Array<Record<string, unknown>>) => lines.filter((l) => l['event'] === 'page_read_whole');

describe('pages read as they arrive, from the fake Google', () => {
  let s: Setup;
  before(async () => {
    s = await setup();
  });
  after(async () => {
    s.manager.stop();
    await s.g.stop();
  });

  it('a listing of many pages gives exactly the rows the fake generates, each page asked for once', async () => {
    assert.ok(PAGES.length >= 5, `a listing of several pages (${PAGES.length})`);
    for (const parallelPages of [1, 3]) {
      const { ctx, lines } = context(s);
      const { text, offsets } = await readRange(s, ctx, parallelPages);
      assert.deepEqual(text, EXPECTED, `parallelPages ${parallelPages}`);
      assert.deepEqual(
        [...offsets].sort((a, b) => a - b),
        PAGES,
      );
      assert.deepEqual(readWhole(lines), [], 'no page fell back to the whole read');
    }
  });

  it('a page in a layout the scanner does not know (an unknown field in every row) is asked for again, read whole, and exact', async () => {
    const at = 2 * PAGE_SIZE;
    const rewrite: Fault['rewrite'] = (body) => ({ ...body, rows: (body['rows'] as object[]).map((row) => ({ ...row, rowAnnotation: { source: 'x' } })) });
    s.g.fake.clearFaults();
    s.g.fake.inject({ endpoint: 'runReport', kind: 'rewrite', match: pageAt(at), rewrite });
    try {
      const { ctx, lines } = context(s);
      const { text, offsets } = await readRange(s, ctx);
      assert.deepEqual(text, EXPECTED);
      assert.equal(offsets.filter((o) => o === at).length, 2, 'that page twice: streamed, then whole');
      assert.deepEqual(
        offsets.filter((o) => o !== at),
        PAGES.filter((o) => o !== at),
        'every other page once',
      );
      const logged = readWhole(lines);
      assert.equal(logged.length, 1, 'said once');
      assert.equal(logged[0]!['offset'], at);
      assert.equal(s.g.fake.events.filter((e) => e.fault === 'rewrite').length, 2, 'the whole read got the same layout, and read it');
    } finally {
      s.g.fake.clearFaults();
    }
  });

  it('a body cut short in its rows is asked for again, still read as it arrives, and the dates are exact', async () => {
    const at = 3 * PAGE_SIZE;
    s.g.fake.inject({ endpoint: 'runReport', kind: 'truncate', times: 1, match: pageAt(at) });
    try {
      const { ctx, lines } = context(s);
      const { text, offsets } = await readRange(s, ctx);
      assert.deepEqual(text, EXPECTED);
      assert.equal(offsets.filter((o) => o === at).length, 2, 'the cut page asked for again');
      assert.equal(s.g.fake.events.filter((e) => e.fault === 'truncate').length, 1);
      // a network fault, not a layout the scanner does not know: the listing goes on as it arrives
      assert.deepEqual(readWhole(lines), []);
    } finally {
      s.g.fake.clearFaults();
    }
  });

  const request = reportPageRequest(def, START, END, 0, PAGE_SIZE);
  const DAILY = 'Exhausted property tokens per day quota. These quota tokens will return in under 24 hours.';

  it("a 429 for the day's tokens read whole is a DeferError `quota_day` (what a streamed request must match)", async () => {
    const { ctx } = context(s);
    s.g.fake.inject({ endpoint: 'runReport', kind: 'status', status: 429, times: 1, message: DAILY });
    const err = await s.client.runReportPage(ctx, request, (b) => b).catch((e: unknown) => e);
    assert.ok(err instanceof DeferError && err.code === 'quota_day', what(err));
  });

  it("a 429 for the day's tokens on a streamed request is a DeferError `quota_day`, told by Google's message", async () => {
    const { ctx } = context(s);
    s.g.fake.inject({ endpoint: 'runReport', kind: 'status', status: 429, times: 1, message: DAILY });
    const injected = await s.client.runReportPageStream(ctx, request, () => new PageStream(def, START, END, ctx)).catch((err: unknown) => err);
    s.g.fake.clearFaults();
    assert.ok(injected instanceof DeferError && injected.code === 'quota_day', what(injected));
    // the fake's own quota, through the page loop: deferred, not retried
    s.g.fake.setQuota(P, { tokensPerDay: 0 });
    try {
      await assert.rejects(readRange(s, ctx), (err) => err instanceof DeferError && err.code === 'quota_day');
      assert.deepEqual(
        s.g.fake.events.map((e) => e.status),
        [429],
      );
    } finally {
      s.g.fake.setQuota(P, { tokensPerDay: 200_000 });
    }
  });

  it('a 429 that names no daily or hourly window, on a streamed request, is retried and the page read', async () => {
    const { ctx } = context(s);
    s.g.fake.events.length = 0;
    s.g.fake.inject({ endpoint: 'runReport', kind: 'status', status: 429, times: 1, message: 'Exhausted concurrent requests quota.' });
    const read = await s.client.runReportPageStream(ctx, request, () => new PageStream(def, START, END, ctx));
    assert.ok(read.ok);
    assert.equal(read.value.rows, PAGE_SIZE);
    assert.deepEqual(
      s.g.fake.events.filter((e) => e.kind === 'runReport').map((e) => e.status),
      [429, 200],
    );
  });
});

describe('pages read as they arrive, gzipped (compress)', () => {
  let s: Setup;
  before(async () => {
    s = await setup(true);
  });
  after(async () => {
    s.manager.stop();
    await s.g.stop();
  });

  it('the fake gzips what a request that takes gzip asks for, and only that', async () => {
    const token = await s.tokens.getToken();
    const body = JSON.stringify(runReportParams(P, reportPageRequest(def, START, END, 0, PAGE_SIZE)).requestBody);
    const post = (acceptEncoding: string | undefined) =>
      new Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
        const req = http.request(`${s.g.fake.apiRootUrl}v1beta/properties/${P}:runReport?prettyPrint=false`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(acceptEncoding ? { 'accept-encoding': acceptEncoding } : {}) },
        });
        req.on('response', (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
        });
        req.on('error', reject);
        req.end(body);
      });
    const plain = await post(undefined);
    const refused = await post('gzip;q=0, identity');
    const gzipped = await post('gzip, deflate');
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(refused.headers['content-encoding'], undefined);
    assert.equal(gzipped.headers['content-encoding'], 'gzip');
    assert.equal(Number(gzipped.headers['content-length']), gzipped.body.length);
    assert.ok(gzipped.body.length < plain.body.length / 2, 'compressed');
    // the same answer (but for the quota it used: each request is charged)
    const answer = (b: Buffer): Record<string, unknown> => ({ ...(JSON.parse(b.toString('utf8')) as Record<string, unknown>), propertyQuota: null });
    assert.deepEqual(answer(gunzipSync(gzipped.body)), answer(plain.body));
    assert.equal((answer(plain.body)['rows'] as unknown[]).length, PAGE_SIZE);
  });

  it('a listing of many pages read through gzip gives exactly the rows read without it', async () => {
    const { ctx, lines } = context(s);
    const { text, offsets } = await readRange(s, ctx);
    assert.deepEqual(text, EXPECTED);
    assert.deepEqual(offsets, PAGES);
    assert.deepEqual(readWhole(lines), []);
    const pages = s.g.fake.events.filter((e) => e.kind === 'runReport');
    assert.ok(
      pages.every((e) => e.encoding === 'gzip'),
      'every page came gzipped (the client asks for gzip)',
    );
  });

  it('a gzipped body cut short is asked for again, and the dates are exact', async () => {
    const at = PAGE_SIZE;
    s.g.fake.inject({ endpoint: 'runReport', kind: 'truncate', times: 1, match: pageAt(at) });
    try {
      const { ctx } = context(s);
      const { text, offsets } = await readRange(s, ctx);
      assert.deepEqual(text, EXPECTED);
      assert.equal(offsets.filter((o) => o === at).length, 2);
    } finally {
      s.g.fake.clearFaults();
    }
  });

  it("a gzipped 429 for the day's tokens is still a DeferError `quota_day`", async () => {
    const { ctx } = context(s);
    s.g.fake.inject({
      endpoint: 'runReport',
      kind: 'status',
      status: 429,
      times: 1,
      message: 'Exhausted property tokens per day. These quota tokens will return in under 24 hours.',
    });
    const err = await s.client
      .runReportPageStream(ctx, reportPageRequest(def, START, END, 0, PAGE_SIZE), () => new PageStream(def, START, END, ctx))
      .catch((e: unknown) => e);
    assert.ok(err instanceof DeferError && err.code === 'quota_day', what(err));
    assert.equal(s.g.fake.events.at(-1)!.encoding, 'gzip');
  });
});
