/**
 * The page scanner (ga4/pageRows.ts) against the slow path it stands in for (JSON.parse +
 * parsePage): the same rows for every layout Google may send, the same errors, and row text that
 * PostgreSQL stores back as the exact values.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import type { ReportDefinition } from '../src/config/index.js';
import { RetryableError } from '../src/errors.js';
import { parsePageBytes } from '../src/ga4/pageRows.js';
import { parsePage } from '../src/ga4/responses.js';
import { segmentsOf } from '../src/ga4/rowText.js';
import type { DayData } from '../src/ga4/types.js';
import { replaceDays } from '../src/store/dayWriter.js';
import { migrate } from '../src/store/migrations.js';
import { ensureReportTables } from '../src/store/reportTables.js';
import { testDb, type TestDb } from './helpers.js';

const def: ReportDefinition = { name: 'pages', dimensions: ['pagePath', 'city'], metrics: ['sessions', 'bounceRate'], startDate: '30daysAgo', refreshDays: 3 };
const ctx = { propertyId: '123', tokens: null as never, logger: pino({ level: 'silent' }) };
const START = '2025-03-01';
const END = '2025-03-10';

type Row = [date: string, page: string, city: string, sessions: string | null, bounce: string | null];

/** A RunReportResponse in Google's field order; `null` values are left out, as proto3 does for empty ones. */
function response(rows: Row[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  const value = (v: string | null) => (v === null ? {} : { value: v });
  return {
    dimensionHeaders: [{ name: 'date' }, { name: 'pagePath' }, { name: 'city' }],
    metricHeaders: [
      { name: 'sessions', type: 'TYPE_INTEGER' },
      { name: 'bounceRate', type: 'TYPE_FLOAT' },
    ],
    ...(rows.length ? { rows: rows.map((r) => ({ dimensionValues: r.slice(0, 3).map((v) => value(v)), metricValues: r.slice(3).map((v) => value(v)) })) } : {}),
    rowCount: rows.length,
    metadata: { currencyCode: 'USD', timeZone: 'Europe/Berlin' },
    propertyQuota: { tokensPerDay: { consumed: 3, remaining: 199000 } },
    kind: 'analyticsData#runReport',
    ...extra,
  };
}

/** Row text back to values: unescaped strings, floats as numbers (the two paths may spell a double differently). */
function decode(text: string): Array<Array<string | number>> {
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) =>
      line.split('\t').map((field, i) => {
        const v = field.replace(/\\(.)/g, (_, c: string) => ({ t: '\t', n: '\n', r: '\r', '\\': '\\' })[c] ?? c);
        return i === 5 ? Number(v) : v;
      }),
    );
}

function bothPaths(body: string) {
  const fast = parsePageBytes(Buffer.from(body), def, START, END, ctx);
  const page = parsePage(JSON.parse(body), def, START, END, ctx);
  const slow = segmentsOf(ctx.propertyId, page.rows);
  return { fast, slow, page };
}

function assertSame(body: string, opts: { scanned: boolean }) {
  const { fast, slow, page } = bothPaths(body);
  assert.equal(fast.scanned, opts.scanned, 'which path');
  assert.equal(fast.rows, page.rows.length);
  assert.equal(fast.rowCount, page.rowCount);
  assert.deepEqual(fast.meta, page.meta);
  assert.deepEqual(
    fast.segments.map((s) => [s.date, s.rows, s.unstorable ?? null]),
    slow.map((s) => [s.date, s.rows, s.unstorable ?? null]),
  );
  assert.deepEqual(
    fast.segments.map((s) => decode(s.text.toString())),
    slow.map((s) => decode(s.text.toString())),
  );
  assert.deepEqual(fast.response.propertyQuota, { tokensPerDay: { consumed: 3, remaining: 199000 } });
  assert.equal('rows' in fast.response, false);
  return fast;
}

const ROWS: Row[] = [
  ['20250301', '/', '(not set)', '38', '0.41666666666666669'],
  ['20250301', '/docs', 'Berlin', '7', '0'],
  ['20250302', '/', 'Paris', '12', '1'],
  ['20250305', '/pricing', 'Tokyo', '-3', '0.5'],
];

describe('page scanner', () => {
  it('reads compact JSON as Google sends it, one segment per date', () => {
    const fast = assertSame(JSON.stringify(response(ROWS)), { scanned: true });
    assert.deepEqual(
      fast.segments.map((s) => s.date),
      ['2025-03-01', '2025-03-02', '2025-03-05'],
    );
    assert.equal(fast.segments[0]!.text.toString(), '123\t2025-03-01\t/\t(not set)\t38\t0.41666666666666669\n123\t2025-03-01\t/docs\tBerlin\t7\t0\n');
  });

  it('reads pretty-printed JSON (any whitespace) the same way', () => {
    assertSame(JSON.stringify(response(ROWS), null, 2), { scanned: true });
    assertSame(JSON.stringify(response(ROWS), null, '\t').replace(/\n/g, '\r\n'), { scanned: true });
  });

  it('unescapes JSON and escapes for COPY: quotes, backslashes, tabs, newlines, non-ASCII', () => {
    const odd: Row[] = [
      ['20250301', 'a "quoted" \\path\\', 'tab\there', '1', '0.25'],
      ['20250301', 'line\nbreak\r', "Côte d'Ivoire", '2', '0.5'],
      ['20250302', '日本/東京', 'Zürich', '3', '1'],
      ['20250302', '\\N', '', '4', '0'],
    ];
    const body = JSON.stringify(response(odd)).replace('Côte', '\\u0043\\u00f4te');
    const fast = assertSame(body, { scanned: true });
    // escaped digits in a date: valid JSON, read by the slow path
    assertSame(JSON.stringify(response(ROWS)).replace('"20250302"', '"2025\\u0030302"'), { scanned: false });
    assert.deepEqual(decode(fast.segments[0]!.text.toString())[0], ['123', '2025-03-01', 'a "quoted" \\path\\', 'tab\there', '1', 0.25]);
    assert.deepEqual(decode(fast.segments[1]!.text.toString())[1], ['123', '2025-03-02', '\\N', '', '4', 0]);
  });

  it('takes a left-out value as empty (dimension) or 0 (metric), as parsePage does', () => {
    const fast = assertSame(JSON.stringify(response([['20250301', null, 'Rome', null, null]])), { scanned: true });
    assert.equal(fast.segments[0]!.text.toString(), '123\t2025-03-01\t\tRome\t0\t0\n');
  });

  it('writes exponents and other spellings of a double as JavaScript reads them', () => {
    const fast = assertSame(
      JSON.stringify(
        response([
          ['20250301', '/', 'x', '1', '1.5e-05'],
          ['20250301', '/', 'y', '1', '.5'],
        ]),
      ),
      { scanned: true },
    );
    assert.equal(fast.segments[0]!.text.toString(), '123\t2025-03-01\t/\tx\t1\t0.000015\n123\t2025-03-01\t/\ty\t1\t0.5\n');
  });

  it('handles a page without rows', () => {
    const fast = parsePageBytes(Buffer.from(JSON.stringify(response([]))), def, START, END, ctx);
    assert.deepEqual([fast.rows, fast.rowCount, fast.segments], [0, 0, []]);
  });

  it('falls back to JSON.parse for a layout it does not know, with the same rows', () => {
    const body = JSON.stringify(response(ROWS)).replace(/"metricValues"/g, '"future":1,"metricValues"');
    assertSame(body, { scanned: false });
    // rows before the metric headers: the types are not known in time
    const r = response(ROWS);
    const reordered = JSON.stringify({ rows: r['rows'], ...r });
    assertSame(reordered, { scanned: false });
  });

  it('refuses what parsePage refuses, as retryable errors', () => {
    const fails = (rows: Row[], pattern: RegExp) => {
      const body = Buffer.from(JSON.stringify(response(rows)));
      assert.throws(
        () => parsePageBytes(body, def, START, END, ctx),
        (err: unknown) => err instanceof RetryableError && pattern.test(err.message),
      );
    };
    fails([['2025-03-01', '/', 'x', '1', '0']], /date value/);
    fails([['20250311', '/', 'x', '1', '0']], /outside the requested/);
    fails(
      [
        ['20250302', '/', 'x', '1', '0'],
        ['20250301', '/', 'x', '1', '0'],
      ],
      /not ordered/,
    );
    // metric values that would break the row text: a bad page (Google never sends them)
    fails([['20250301', '/', 'x', '1\t5', '0']], /malformed response \(integer metric value "1\\t5"\)/);
    fails([['20250301', '/', 'x', '1', '0.5\n']], /malformed response \(metric value "0.5\\n"\)/);
    fails([['20250301', '/', 'x', '1\\', '0']], /integer metric value/);
    fails([['20250301', '/', 'x', '1\u0000', '0']], /integer metric value/);
    const truncated = Buffer.from(JSON.stringify(response(ROWS)).slice(0, 300));
    assert.throws(() => parsePageBytes(truncated, def, START, END, ctx), /not JSON/);
    const narrow = JSON.stringify(response(ROWS)).replace('{"value":"/docs"},', '');
    assert.throws(() => parsePageBytes(Buffer.from(narrow), def, START, END, ctx), /row width/);
  });
});

describe('page scanner: values PostgreSQL cannot hold, odd bytes and keys', () => {
  it('removes U+0000 and replaces lone surrogates with U+FFFD on both paths, counting them per date and dimension', () => {
    const odd: Row[] = [
      ['20250301', 'nul\u0000inside', 'ok', '1', '0'],
      ['20250301', '/', 'lone \ud800 high', '2', '0'],
      ['20250302', 'pair \ud83d\ude00 ok', 'x', '3', '0'],
    ];
    const fast = assertSame(JSON.stringify(response(odd)), { scanned: true });
    assert.deepEqual(
      decode(fast.segments[0]!.text.toString()).map((r) => [r[2], r[3]]),
      [
        ['nulinside', 'ok'],
        ['/', 'lone \ufffd high'],
      ],
    );
    assert.deepEqual(
      fast.segments.map((s) => s.sanitized ?? null),
      [{ values: 2, dimensions: ['pagePath', 'city'] }, null],
    );
    const slow = bothPaths(JSON.stringify(response(odd)).replace('"metricValues"', '"future":1,"metricValues"'));
    assert.equal(slow.fast.scanned, false);
    assert.deepEqual(
      slow.fast.segments.map((s) => s.sanitized ?? null),
      [{ values: 2, dimensions: ['pagePath', 'city'] }, null],
    );
  });

  it('bytes that are not UTF-8 are never copied raw: the slow path reads them as U+FFFD', () => {
    const json = Buffer.from(JSON.stringify(response(ROWS)));
    const at = json.indexOf('Berlin');
    const body = Buffer.concat([json.subarray(0, at), Buffer.from([0xed, 0xa0, 0x80, 0xff]), json.subarray(at)]);
    const page = parsePageBytes(body, def, START, END, ctx);
    assert.equal(page.scanned, false);
    assert.equal(
      Buffer.from(decode(page.segments[0]!.text.toString())[1]![3] as string).toString('hex'),
      Buffer.from('\ufffd\ufffd\ufffd\ufffdBerlin').toString('hex'),
    );
  });

  it('a "rows" key inside a string, a nested object or spelled with an escaped quote is not taken for the rows', () => {
    for (const metadata of [
      { timeZone: 'UTC', rows: [1] },
      { timeZone: 'UTC', 'x"rows': [{ a: 1 }] },
      { timeZone: 'UTC', note: '"rows": [' },
    ]) {
      const { dimensionHeaders, metricHeaders, rows, ...rest } = response(ROWS);
      const page = assertSame(JSON.stringify({ dimensionHeaders, metricHeaders, ...rest, metadata, rows }), { scanned: true });
      assert.equal(page.rows, ROWS.length);
    }
    // a second rows field: JSON keeps the last, and so do both paths
    assert.deepEqual(bothPaths(`${JSON.stringify(response(ROWS)).slice(0, -1)},"rows":[]}`).fast.rows, 0);
  });

  it('rows out of date order: refused when the page loop asks for order, one segment per run of a date when it does not', () => {
    const unordered: Row[] = [ROWS[2]!, ROWS[0]!, ROWS[3]!, ROWS[1]!];
    const body = Buffer.from(JSON.stringify(response(unordered)));
    assert.throws(
      () => parsePageBytes(body, def, START, END, ctx),
      (err: unknown) => err instanceof RetryableError && err.code === 'unordered',
    );
    const page = parsePageBytes(body, def, START, END, ctx, { ordered: false });
    assert.deepEqual(
      page.segments.map((s) => [s.date, s.rows]),
      [
        ['2025-03-02', 1],
        ['2025-03-01', 1],
        ['2025-03-05', 1],
        ['2025-03-01', 1],
      ],
    );
  });

  it('a number beyond a double is kept as written (the store refuses it), with no unstorable mark', () => {
    const page = assertSame(JSON.stringify(response([['20250301', '/', 'x', '1', '1e400']])), { scanned: true });
    assert.match(page.segments[0]!.text.toString(), /\t1e400\n$/);
    assert.equal(page.segments[0]!.unstorable, undefined);
  });

  it("a metric value its column cannot hold is no bad page: its date's segment is marked with the first such value, the others are not", () => {
    const integers = ['1.5', '', 'NaN', 'abc', '1e3', ' 5', '+5', '٣'];
    const floats = ['abc', 'NaN', 'Infinity', '0x10', ' 5', '1e', ''];
    for (const v of integers) {
      const page = assertSame(
        JSON.stringify(
          response([
            ['20250301', '/', 'x', '1', '0.5'],
            ['20250302', '/', 'x', v, 'abc'],
            ['20250303', '/', 'x', '2', '0'],
          ]),
        ),
        { scanned: true },
      );
      assert.deepEqual(
        page.segments.map((s) => s.unstorable ?? null),
        [null, { metric: 0, value: v }, null],
        JSON.stringify(v),
      );
    }
    for (const v of floats) {
      const page = assertSame(
        JSON.stringify(
          response([
            ['20250301', '/', 'x', '1', '0.5'],
            ['20250301', '/', 'y', '1', v],
          ]),
        ),
        { scanned: true },
      );
      assert.deepEqual(
        page.segments.map((s) => s.unstorable ?? null),
        [{ metric: 1, value: v }],
        JSON.stringify(v),
      );
    }
    // escaped, the same value is read the same way (the scanner's rare path)
    const escaped = JSON.stringify(response([['20250301', '/', 'x', '1.5', '0']])).replace('"1.5"', '"\\u0031.5"');
    assert.deepEqual(assertSame(escaped, { scanned: true }).segments[0]!.unstorable, { metric: 0, value: '1.5' });
  });
});

describe('row text through COPY', () => {
  let db: TestDb;
  before(async () => {
    db = await testDb('rowtext');
    const logger = pino({ level: 'silent' });
    await migrate(db.pool, db.schema, logger);
    await ensureReportTables(db.pool, db.schema, [def], logger);
  });
  after(async () => {
    await db?.drop();
  });

  it('stores every value exactly, and replaces a date whole', async () => {
    const odd: Row[] = [
      ['20250301', 'a "quoted" \\path\\', 'tab\there', '9007199254740993', '0.41666666666666669'],
      ['20250301', 'line\nbreak\r', '\\N', '2', '1e-7'],
      ['20250302', '日本/東京', '', '3', '1'],
    ];
    const page = parsePageBytes(Buffer.from(JSON.stringify(response(odd))), def, START, END, ctx);
    assert.equal(page.scanned, true);
    const meta = page.meta;
    const days: DayData[] = page.segments.map((s) => ({ date: s.date, rowCount: s.rows, text: [s.text], meta }));
    const client = await db.pool.connect();
    try {
      await replaceDays(client, { schema: db.schema, def, propertyId: '123', days, settledBefore: START });
      // a second write of the first date replaces it, it does not add to it
      await replaceDays(client, { schema: db.schema, def, propertyId: '123', days: days.slice(0, 1), settledBefore: START });
    } finally {
      client.release();
    }
    const rows = await db.query<{ date: string; page_path: string; city: string; sessions: string; bounce_rate: number }>(
      `SELECT to_char(date, 'YYYY-MM-DD') AS date, page_path, city, sessions, bounce_rate FROM "${db.schema}".pages ORDER BY date, sessions`,
    );
    assert.deepEqual(
      rows.map((r) => [r.date, r.page_path, r.city, r.sessions, r.bounce_rate]),
      [
        ['2025-03-01', 'line\nbreak\r', '\\N', '2', 1e-7],
        ['2025-03-01', 'a "quoted" \\path\\', 'tab\there', '9007199254740993', 0.41666666666666669],
        ['2025-03-02', '日本/東京', '', '3', 1],
      ],
    );
    const ledger = await db.query<{ date: string; row_count: number }>(
      `SELECT to_char(date, 'YYYY-MM-DD') AS date, row_count FROM "${db.schema}".fetch_days ORDER BY date`,
    );
    assert.deepEqual(
      ledger.map((l) => [l.date, l.row_count]),
      [
        ['2025-03-01', 2],
        ['2025-03-02', 1],
      ],
    );
  });
});
