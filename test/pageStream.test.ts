/**
 * A page read as it arrives (ga4/pageStream.ts) against the same body read whole (parsePageBytes):
 * on generated runReport bodies (pretty-printed, escapes, bytes that are not UTF-8, rows out of
 * order, metric values that are no numbers, empty pages, `rows` after other fields, unknown
 * fields, bodies cut short) fed in chunks of every size (single bytes, cuts inside multi-byte
 * characters and escapes, one chunk), PageStream gives what parsePageBytes gives, date by date,
 * or the same kind of RetryableError, or gives up (NotScannable: the caller reads the page whole).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { ReportDefinition } from '../src/config/index.js';
import { RetryableError } from '../src/errors.js';
import { parsePageBytes, type PageRows } from '../src/ga4/pageRows.js';
import { PageStream } from '../src/ga4/pageStream.js';
import { dayOf } from '../src/ga4/responses.js';
import { NotScannable } from '../src/ga4/rowScanner.js';
import { addSanitized, type Sanitized } from '../src/ga4/rowText.js';
import { BLOCK_BYTES } from '../src/ga4/rowTextBlocks.js';
import { END, START, body, ctx, defOf, layoutArb, rowArb, shapeArb } from './runReportBodies.js';

const RUNS = Number(process.env['PROPERTY_RUNS'] ?? 3000);

// ---------------------------------------------------------------- the two reads

/** Where a generated body is cut short, as a fraction of its length: most are whole. */
const cutArb = fc.oneof({ weight: 7, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.double({ min: 0, max: 1, noNaN: true }) });

/** Chunk lengths: single bytes, one chunk, or random sizes (any cut: inside a character, an escape). */
const chunkingArb = fc.oneof(fc.constantFrom<'bytes' | 'one'>('bytes', 'one'), fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1 }));

function chunks(b: Buffer, how: 'bytes' | 'one' | number[]): Buffer[] {
  if (how === 'one') return [Buffer.from(b)];
  const out: Buffer[] = [];
  for (let at = 0, k = 0; at < b.length; k++) {
    const size = how === 'bytes' ? 1 : how[k % how.length]!;
    // a copy: the reader may write into a chunk it was given (see the report of this test)
    out.push(Buffer.from(b.subarray(at, at + size)));
    at += size;
  }
  return out;
}

function streamed(parts: Buffer[], def: ReportDefinition): PageRows {
  const stream = new PageStream(def, START, END, ctx);
  for (const part of parts) stream.push(part);
  return stream.finish();
}

function attempt<T>(f: () => T): { ok: true; value: T } | { ok: false; error: unknown } {
  try {
    return { ok: true, value: f() };
  } catch (error) {
    return { ok: false, error };
  }
}

type DateSummary = { date: string; rows: number; text: string; sanitized: Sanitized | null; unstorable: unknown };

/** The page's dates, a date's segments taken together (a streamed read splits a date at a block's end). */
function byDate(page: PageRows): DateSummary[] {
  const out: DateSummary[] = [];
  for (const [k, segment] of page.segments.entries()) {
    const last = out[out.length - 1];
    if (segment.continued) {
      assert.ok(k > 0 && last?.date === segment.date, `a continued segment follows one of its date (${segment.date})`);
      last!.rows += segment.rows;
      last!.text += segment.text.toString('utf8');
      last!.sanitized = addSanitized(last!.sanitized ?? undefined, segment.sanitized) ?? null;
      last!.unstorable ??= segment.unstorable ?? null;
      continue;
    }
    const sanitized = segment.sanitized ? { values: segment.sanitized.values, dimensions: [...segment.sanitized.dimensions] } : null;
    out.push({ date: segment.date, rows: segment.rows, text: segment.text.toString('utf8'), sanitized, unstorable: segment.unstorable ?? null });
  }
  return out;
}

/** A float written two ways ("1.50" copied, 1.5 from a parse) is one value: fields compared as numbers where they are. */
const numeric = (text: string) => text.split(/[\t\n]/).map((f) => (f !== '' && !Number.isNaN(Number(f)) ? Number(f) : f));

type Outcome = 'same' | 'scanned' | 'retryable' | 'gave up';

/**
 * The property: the streamed read is the whole read (its rows, or for a head in which no rows
 * opened, its error), or a NotScannable: the caller then reads the page whole, and the whole read
 * has the last word.
 */
function assertStreamAgrees(b: Buffer, def: ReportDefinition, parts: Buffer[]): Outcome {
  const whole = attempt(() => parsePageBytes(b, def, START, END, ctx));
  const stream = attempt(() => streamed(parts, def));
  if (!stream.ok) {
    if (stream.error instanceof RetryableError) {
      const wholeCode = !whole.ok && whole.error instanceof RetryableError ? whole.error.code : undefined;
      assert.ok(wholeCode !== undefined, `the stream refused (${stream.error.message}) a page read whole`);
      // a head in which no rows opened is read whole by the stream too: the same verdict
      assert.equal(stream.error.code, wholeCode, `stream: ${stream.error.message}; whole: ${String((whole as { error: unknown }).error)}`);
      return 'retryable';
    }
    assert.ok(stream.error instanceof NotScannable, `the stream gives up with NotScannable only, not ${String(stream.error)}`);
    return 'gave up';
  }
  assert.ok(whole.ok, `the stream read a page the whole read refuses: ${String((whole as { error?: unknown }).error)}`);
  const [got, want] = [stream.value, whole.value];
  assert.equal(got.rows, want.rows);
  assert.equal(got.rowCount, want.rowCount);
  assert.deepEqual(got.meta, want.meta);
  assert.deepEqual(got.response, want.response);
  const [gotDates, wantDates] = [byDate(got), byDate(want)];
  assert.deepEqual(
    gotDates.map(({ text: _text, ...rest }) => rest),
    wantDates.map(({ text: _text, ...rest }) => rest),
  );
  for (const [k, date] of gotDates.entries()) {
    if (want.scanned) assert.equal(date.text, wantDates[k]!.text, `row text of ${date.date}`);
    else assert.deepEqual(numeric(date.text), numeric(wantDates[k]!.text), `row text of ${date.date}`);
  }
  return got.scanned && got.rows > 0 ? 'scanned' : 'same';
}

describe('PageStream, property-based: a body read as it arrives gives what it gives read whole', () => {
  it('on generated bodies cut into chunks of any size', () => {
    const seen: Record<Outcome, number> = { same: 0, scanned: 0, retryable: 0, 'gave up': 0 };
    const caseArb = shapeArb.chain((shape) =>
      fc.record({ shape: fc.constant(shape), rows: fc.array(rowArb(shape), { maxLength: 8 }), layout: layoutArb, cut: cutArb, chunking: chunkingArb }),
    );
    fc.assert(
      fc.property(caseArb, ({ shape, rows, layout, cut, chunking }) => {
        const whole = body(shape, rows, layout);
        const b = cut === undefined ? whole : whole.subarray(0, Math.floor(whole.length * cut));
        const outcome = assertStreamAgrees(b, defOf(shape), chunks(b, chunking));
        seen[outcome]++;
      }),
      { numRuns: RUNS, includeErrorInReport: true },
    );
    // worth something only if every outcome was met, the streamed read itself above all
    assert.ok(seen.same + seen.scanned > RUNS / 4 && seen.scanned > RUNS / 6, JSON.stringify(seen));
    assert.ok(seen.retryable > RUNS / 20 && seen['gave up'] > RUNS / 20, JSON.stringify(seen));
  });
});

// ---------------------------------------------------------------- examples

const def1: ReportDefinition = { name: 'p', dimensions: ['pagePath'], metrics: ['sessions', 'bounceRate'], startDate: '30daysAgo', refreshDays: 3 };
const HEADERS = {
  dimensionHeaders: [{ name: 'date' }, { name: 'pagePath' }],
  metricHeaders: [
    { name: 'sessions', type: 'TYPE_INTEGER' },
    { name: 'bounceRate', type: 'TYPE_FLOAT' },
  ],
};
const rowOf = (date: string, path: string, sessions: string, rate: string) => ({
  dimensionValues: [{ value: date }, { value: path }],
  metricValues: [{ value: sessions }, { value: rate }],
});
const page = (rows: unknown[], extra: Record<string, unknown> = {}) =>
  Buffer.from(JSON.stringify({ ...HEADERS, rows, rowCount: rows.length, metadata: { currencyCode: 'EUR', timeZone: 'UTC' }, ...extra }));

describe('PageStream, examples', () => {
  it('a date of more than a block of row text goes on in a new block as a continued segment, the same text as read whole', () => {
    const path = `/${'long-path-'.repeat(9)}`;
    const rows = [
      ...Array.from({ length: 7000 }, (_, i) => rowOf('20250302', `${path}${String(i).padStart(5, '0')}`, String(i), '0.25')),
      rowOf('20250303', '/last', '1', '0.5'),
    ];
    const b = page(rows);
    assert.ok(b.length > 1_000_000);
    const whole = parsePageBytes(b, def1, START, END, ctx);
    const got = streamed(chunks(b, [65536]), def1);
    const day = got.segments.filter((s) => s.date === '2025-03-02');
    assert.ok(Buffer.concat(day.map((s) => s.text)).length > BLOCK_BYTES, "the date's row text is longer than a block");
    assert.ok(day.length >= 2, 'in more than one segment');
    assert.deepEqual(
      day.map((s) => s.continued === true),
      [false, ...day.slice(1).map(() => true)],
      'all but the first continued',
    );
    assert.deepEqual(byDate(got), byDate(whole), 'the same dates, rows and row text as read whole');
    // one page's segments of a date are no overlap of pages: dayOf takes them as one date
    const data = dayOf(ctx, def1, '2025-03-02', day, got.meta);
    assert.equal(data.rowCount, 7000);
    assert.deepEqual(Buffer.concat(data.text), whole.segments[0]!.text);
  });

  it('a body cut in two at every byte (inside escapes, multi-byte characters, keys, numbers) reads the same', () => {
    const b = page(
      [
        rowOf('20250301', 'caf\u00e9/\u65e5\u672c/\ud83d\ude00', '7', '1e-3'),
        rowOf('20250301', 'tab\there "quoted" back\\slash \u0000 \ud800', '8', '0.5'),
        rowOf('20250304', '/x', '1.5', 'abc'),
      ],
      { propertyQuota: { tokensPerDay: { consumed: 1, remaining: 5 } } },
    );
    const whole = parsePageBytes(b, def1, START, END, ctx);
    assert.equal(whole.scanned, true);
    for (let cut = 0; cut <= b.length; cut++) {
      const got = streamed([Buffer.from(b.subarray(0, cut)), Buffer.from(b.subarray(cut))], def1);
      assert.deepEqual(byDate(got), byDate(whole), `cut at ${cut}`);
      assert.deepEqual([got.rows, got.rowCount, got.meta, got.response], [whole.rows, whole.rowCount, whole.meta, whole.response], `cut at ${cut}`);
    }
  });

  it('an empty page without rows is read whole when it ends: no rows, its rowCount and metadata', () => {
    const b = Buffer.from(JSON.stringify({ ...HEADERS, rowCount: 0, metadata: { currencyCode: 'EUR', timeZone: 'UTC' }, kind: 'analyticsData#runReport' }));
    for (const how of ['one', 'bytes'] as const) {
      const got = streamed(chunks(b, how), def1);
      assert.deepEqual(
        { rows: got.rows, segments: got.segments, rowCount: got.rowCount, scanned: got.scanned },
        { rows: 0, segments: [], rowCount: 0, scanned: false },
      );
      assert.equal(got.meta.currencyCode, 'EUR');
      assert.equal((got.response as { kind?: string }).kind, 'analyticsData#runReport');
    }
  });

  it('a body that ends inside the rows array, or after them in the rest, is a bad page (cut short) when it ends, not before', () => {
    const b = page([rowOf('20250301', '/a', '1', '0.5'), rowOf('20250302', '/b', '2', '0.5'), rowOf('20250303', '/c', '3', '0.5')]);
    for (const end of [b.indexOf('"rows":[') + 8, b.indexOf('/b'), b.indexOf('{"dimensionValues":[{"value":"20250303"') - 1, b.indexOf('],"rowCount"')]) {
      const stream = new PageStream(def1, START, END, ctx);
      for (const part of chunks(b.subarray(0, end), [5])) stream.push(part);
      assert.throws(
        () => stream.finish(),
        (err) => err instanceof RetryableError && err.code === 'bad_response' && /ended inside its rows|not JSON/.test(err.message),
        `cut at ${end}`,
      );
    }
    // cut before the rows open: read whole at the end, and refused as the whole read refuses it
    const stream = new PageStream(def1, START, END, ctx);
    stream.push(Buffer.from(b.subarray(0, 30)));
    assert.throws(
      () => stream.finish(),
      (err) => err instanceof RetryableError && err.code === 'bad_response',
    );
  });
});

/**
 * Where the streamed read stops short of the whole read: a fault the scanner finds is not its
 * verdict (NotScannable: the page is read again whole, and the whole read decides).
 */
describe('PageStream, where it leaves the verdict to the whole read', () => {
  const whole = (b: Buffer) => attempt(() => parsePageBytes(b, def1, START, END, ctx));
  const stream = (b: Buffer) => attempt(() => streamed(chunks(b, [7]), def1));
  const code = (r: { ok: boolean; error?: unknown }) =>
    r.ok ? 'read' : r.error instanceof RetryableError ? r.error.code : r.error instanceof NotScannable ? 'read whole' : String(r.error);

  it('rows out of order in a body cut short: read whole (the scanner met the order first), where the whole read says `bad_response`', () => {
    const b = page([rowOf('20250302', '/a', '1', '0.5'), rowOf('20250301', '/b', '2', '0.5'), rowOf('20250303', '/c', '3', '0.5')]);
    const cut = b.subarray(0, b.indexOf('/c'));
    assert.equal(code(whole(cut)), 'bad_response');
    assert.equal(code(stream(cut)), 'read whole');
  });

  it('rows out of order under dimension headers that do not match: read whole, where the whole read says `bad_response`', () => {
    const b = page([rowOf('20250302', '/a', '1', '0.5'), rowOf('20250301', '/b', '2', '0.5')], { dimensionHeaders: [{ name: 'date' }, { name: 'city' }] });
    assert.equal(code(whole(b)), 'bad_response');
    assert.equal(code(stream(b)), 'read whole');
  });

  it('a bad row in a first `rows` member that a second one replaces: read whole, and the whole read reads the page', () => {
    const b = Buffer.from(
      page([rowOf('2025030', '/a', '1', '0.5')], { rowCount: 0 })
        .toString()
        .replace(/}$/, ',"rows":[]}'),
    );
    assert.equal(code(whole(b)), 'read');
    assert.equal(code(stream(b)), 'read whole');
  });

  it('the chunks handed to push are left as they were', () => {
    const b = page([rowOf('20250301', '/a', '1', '0.5'), rowOf('20250302', '/b', '2', '0.5'), rowOf('20250303', '/c', '3', '0.5')]);
    const first = Buffer.from(b.subarray(0, b.indexOf('/c')));
    const before = Buffer.from(first);
    const reader = new PageStream(def1, START, END, ctx);
    reader.push(first);
    for (const part of chunks(b.subarray(first.length), 'bytes')) reader.push(part);
    assert.equal(reader.finish().rows, 3);
    assert.deepEqual(first, before);
  });
});
