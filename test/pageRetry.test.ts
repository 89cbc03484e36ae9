/**
 * A page that fails after its status line (`200` and then a body that is no good) is retried like
 * a 5xx, within the same run; a listing that changed while it was read is read again from its
 * first page; every date handed out before is handed out again, whole. Against the real client
 * (its retry policy and backoff) and a scripted Data API.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { ReportDefinition } from '../src/config/index.js';
import { RetryableError } from '../src/errors.js';
import { fetchRange, unconfirmedDates } from '../src/ga4/report.js';
import { metricSum } from './helpers.js';
import { scriptedApi, type Answer, type PageRequest, type ScriptedApi } from './scripted-api.js';

const def: ReportDefinition = { name: 'r', dimensions: ['country'], metrics: ['sessions'], startDate: '3daysAgo', refreshDays: 1 };
const START = '2024-01-01';
const END = '2024-01-03';
type Row = [date: string, country: string, sessions: string];
const ALL: Row[] = [
  ['20240101', 'France', '5'],
  ['20240101', 'Spain', '8'],
  ['20240102', 'France', '9'],
  ['20240102', 'Spain', '7'],
  ['20240103', 'France', '6'],
];
/** Each date's row text, as the store gets it. */
const EXPECTED = {
  '2024-01-01': '1\t2024-01-01\tFrance\t5\n1\t2024-01-01\tSpain\t8\n',
  '2024-01-02': '1\t2024-01-02\tFrance\t9\n1\t2024-01-02\tSpain\t7\n',
  '2024-01-03': '1\t2024-01-03\tFrance\t6\n',
};

function page(req: PageRequest, rows: Row[] = ALL, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const slice = rows.slice(req.offset, req.offset + Math.max(1, req.limit));
  return {
    dimensionHeaders: [{ name: 'date' }, { name: 'country' }],
    metricHeaders: [{ name: 'sessions', type: 'TYPE_INTEGER' }],
    ...(slice.length ? { rows: slice.map(([d, c, v]) => ({ dimensionValues: [{ value: d }, { value: c }], metricValues: [{ value: v }] })) } : {}),
    rowCount: rows.length,
    metadata: { currencyCode: 'USD', timeZone: 'UTC' },
    kind: 'analyticsData#runReport',
    ...extra,
  };
}

/** Every date handed out, in order, and the last text handed out for each. */
async function readAll(api: ScriptedApi, pageSize = 1): Promise<{ order: string[]; last: Record<string, string> }> {
  const order: string[] = [];
  const last: Record<string, string> = {};
  for await (const day of fetchRange(api.client, api.ctx, def, START, END, { pageSize })) {
    order.push(day.date);
    last[day.date] = Buffer.concat(day.text).toString('utf8');
  }
  return { order, last };
}

/** Answers each page normally, except the page at `at`, answered `bad` the first `times` times. */
function once(at: number, bad: (req: PageRequest) => Answer, times = 1): (req: PageRequest) => Answer {
  let left = times;
  return (req) => {
    if (req.offset === at && left > 0) {
      left--;
      return bad(req);
    }
    return page(req);
  };
}

const badBodies: Array<[string, (req: PageRequest) => Answer]> = [
  ['half of its JSON', (req) => ({ raw: JSON.stringify(page(req)).slice(0, 60) })],
  [
    "a body that is not JSON (a proxy's text as application/json)",
    () => ({ raw: 'upstream connect error or disconnect/reset before headers. reset reason: connection termination' }),
  ],
  [
    'an HTML page with content-type text/html',
    () => ({ raw: '<!DOCTYPE html><html><body>Please sign in to the network.</body></html>', contentType: 'text/html; charset=UTF-8' }),
  ],
  ['an empty body', () => ({ raw: '' })],
  ['dimension headers that do not match the request', (req) => page(req, ALL, { dimensionHeaders: [{ name: 'date' }, { name: 'city' }] })],
  ['a row of the wrong width', (req) => ({ ...page(req), rows: [{ dimensionValues: [{ value: ALL[req.offset]![0] }], metricValues: [{ value: '1' }] }] })],
  [
    'a row dated outside the requested range',
    (req) =>
      page(
        req,
        ALL.map((r, i) => (i === req.offset ? ['20231231', r[1], r[2]] : r)),
      ),
  ],
  // (a metric that is merely no number, "5x", is Google's data: its date is refused, never asked again)
  [
    'a metric value with a tab in it, which would break the row text',
    (req) =>
      page(
        req,
        ALL.map((r, i) => (i === req.offset ? [r[0], r[1], '5\t5'] : r)),
      ),
  ],
  [
    'a malformed date',
    (req) =>
      page(
        req,
        ALL.map((r, i) => (i === req.offset ? ['2024-01-0', r[1], r[2]] : r)),
      ),
  ],
];

describe('a page that is no good once read is asked for again, like a 5xx', () => {
  const apis: ScriptedApi[] = [];
  after(async () => {
    for (const a of apis) await a.stop();
  });

  for (const [what, bad] of badBodies) {
    for (const [where, at] of [
      ['the first page', 0],
      ['a later page', 2],
    ] as const) {
      it(`${what} on ${where}: only that page is asked for again, and every date is exact`, async () => {
        const api = await scriptedApi(once(at, bad));
        apis.push(api);
        const { order, last } = await readAll(api);
        assert.deepEqual(last, EXPECTED);
        assert.deepEqual(order, Object.keys(EXPECTED), 'each date handed out once, in order');
        const offsets = api.requests.map((r) => r.offset);
        const want = [0, 1, 2, 3, 4];
        want.splice(at, 0, at);
        assert.deepEqual(offsets, want, 'the bad page twice, nothing else again');
        const text = await api.metrics.text();
        assert.equal(metricSum(text, 'ga_collector_api_requests_total', { code: '200' }), 6, 'the bad 200 is counted as answered');
      });
    }
  }

  it('a page that stays bad fails after fetch.maxAttempts, saying so', async () => {
    const api = await scriptedApi(
      once(1, (req) => ({ raw: JSON.stringify(page(req)).slice(0, 60) }), 99),
      { maxAttempts: 3 },
    );
    apis.push(api);
    await assert.rejects(readAll(api), /property 1: response body is not JSON \(truncated, or a proxy's page\?\) \(gave up after 3 attempts\)/);
    assert.deepEqual(
      api.requests.map((r) => r.offset),
      [0, 1, 1, 1],
    );
  });

  it("the error that gives up keeps the last failure, and the parser's own error, as its causes", async () => {
    const api = await scriptedApi(
      once(1, (req) => ({ raw: JSON.stringify(page(req)).slice(0, 60) }), 99),
      { maxAttempts: 2 },
    );
    apis.push(api);
    const err = await readAll(api).then(
      () => assert.fail('the read should fail'),
      (failure: unknown) => failure,
    );
    assert.ok(err instanceof RetryableError && err.code === 'bad_response', String(err));
    const last = err.cause;
    assert.ok(last instanceof RetryableError && !/gave up/.test(last.message), String(last));
    assert.ok(last.cause instanceof SyntaxError, String(last.cause));
  });
});

describe('a listing that changed while it was read is read again from its first page', () => {
  const apis: ScriptedApi[] = [];
  after(async () => {
    for (const a of apis) await a.stop();
  });

  const changed: Array<[string, (req: PageRequest) => Answer]> = [
    ['rowCount changes between pages', (req) => page(req, ALL, { rowCount: ALL.length + 1 })],
    ['the same row comes on two pages (rows shifted)', (req) => page({ ...req, offset: req.offset - 1 })],
    ['a page is empty before rowCount rows came', (req) => page({ ...req, offset: 99 }, ALL)],
  ];
  for (const [what, bad] of changed) {
    it(`${what}: read again from offset 0, every date handed out again whole, the last read exact`, async () => {
      const api = await scriptedApi(once(2, bad));
      apis.push(api);
      const { order, last } = await readAll(api);
      assert.deepEqual(last, EXPECTED);
      const offsets = api.requests.map((r) => r.offset);
      assert.equal(offsets.filter((o) => o === 0).length, 2, `restarted from the first page (${offsets.join(',')})`);
      // whatever the first read handed out, the second hands out again: every date comes last from it
      const secondRead = order.slice(order.lastIndexOf(START));
      assert.deepEqual(secondRead, Object.keys(EXPECTED));
    });
  }

  it('with pages of every size, a changed rowCount ends exact', async () => {
    for (const pageSize of [1, 2, 3, 100]) {
      let left = 1;
      const api = await scriptedApi((req) => (req.offset > 0 && left-- > 0 ? page(req, ALL, { rowCount: 9 }) : page(req)));
      apis.push(api);
      const { last } = await readAll(api, pageSize);
      assert.deepEqual(last, EXPECTED, `pageSize ${pageSize}`);
    }
  });

  it('a listing that keeps changing fails after fetch.maxAttempts and names the dates it could not confirm', async () => {
    const api = await scriptedApi((req) => page(req, ALL, req.offset >= 3 ? { rowCount: 9 } : {}), { maxAttempts: 3 });
    apis.push(api);
    const handed: string[] = [];
    const err = await (async () => {
      try {
        for await (const day of fetchRange(api.client, api.ctx, def, START, END, { pageSize: 1 })) handed.push(day.date);
      } catch (e) {
        return e;
      }
      return null;
    })();
    assert.match(String(err), /rowCount changed between pages \(5 -> 9\).*gave up after 3 attempts/);
    assert.deepEqual([...new Set(handed)], ['2024-01-01']);
    assert.deepEqual(unconfirmedDates(err), ['2024-01-01'], 'handed out from an inconsistent listing, never confirmed');
    assert.equal(api.requests.filter((r) => r.offset === 0).length, 3, 'three listings');
  });
});

describe('rows out of date order', () => {
  it('switch to reading the whole range at once, asking for each page once more', async () => {
    const newestFirst = [...ALL].reverse();
    const api = await scriptedApi((req) => page(req, newestFirst));
    try {
      const { last } = await readAll(api, 2);
      assert.deepEqual(last, {
        '2024-01-01': '1\t2024-01-01\tSpain\t8\n1\t2024-01-01\tFrance\t5\n',
        '2024-01-02': '1\t2024-01-02\tSpain\t7\n1\t2024-01-02\tFrance\t9\n',
        '2024-01-03': EXPECTED['2024-01-03'],
      });
      assert.deepEqual(
        api.requests.map((r) => r.offset),
        [0, 0, 0, 2, 4],
        'the first page read as it arrives (the scanner finds the dates out of order), read whole (which says so), then each page once for the whole range',
      );
    } finally {
      await api.stop();
    }
  });
});
