/**
 * The page scanner is proven against the slow path it stands in for: on generated runReport
 * bodies (escapes of every kind, surrogate pairs and lone surrogates, U+0000, empty and long
 * values, exponents and odd spellings of numbers, any field order, any whitespace, bytes that are
 * not UTF-8, keys that look like "rows"), what parsePageBytes gives equals what JSON.parse plus
 * parsePage and segmentsOf give: the same rows as the same row text (a double may be spelled
 * differently but is the same double), the same dates, counts, metadata and sanitized values,
 * the same metric value marked as one its column cannot hold (its date is refused), or the same
 * error. Never a different value.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { ReportDefinition } from '../src/config/index.js';
import { RetryableError } from '../src/errors.js';
import { parsePageBytes } from '../src/ga4/pageRows.js';
import { parsePage } from '../src/ga4/responses.js';
import { segmentsOf } from '../src/ga4/rowText.js';
import { END, GOOD_DATES, START, body, ctx, defOf, layoutArb, rare, rowArb, shapeArb, type Layout, type Shape } from './runReportBodies.js';

const caseArb = shapeArb.chain((shape) =>
  fc.record({ shape: fc.constant(shape), rows: fc.array(rowArb(shape), { maxLength: 8 }), layout: layoutArb, ordered: rare(5).map((x) => !x) }),
);

// ---------------------------------------------------------------- the two paths

type Outcome =
  | {
      ok: true;
      rows: number;
      rowCount: number;
      meta: unknown;
      response: unknown;
      segments: Array<{ date: string; rows: number; text: string; sanitized: unknown; unstorable: unknown }>;
    }
  | { ok: false; error: Error };

/** JSON.parse plus the slow path (parsePage + segmentsOf), and the order check the page loop asks for. */
function slowPath(b: Buffer, def: ReportDefinition, ordered: boolean): Outcome {
  try {
    let res: unknown;
    try {
      res = JSON.parse(b.toString('utf8'));
    } catch {
      return { ok: false, error: new RetryableError('not JSON', 'bad_response') };
    }
    if (typeof res !== 'object' || res === null || Array.isArray(res)) return { ok: false, error: new RetryableError('not an object', 'bad_response') };
    const page = parsePage(res as never, def, START, END, ctx);
    const segs = segmentsOf(ctx.propertyId, page.rows);
    if (ordered && segs.some((s, k) => k > 0 && s.date < segs[k - 1]!.date)) return { ok: false, error: new RetryableError('not ordered', 'unordered') };
    const { rows: _rows, ...rest } = res as Record<string, unknown>;
    return {
      ok: true,
      rows: page.rows.length,
      rowCount: page.rowCount,
      meta: page.meta,
      response: rest,
      segments: segs.map((s) => ({
        date: s.date,
        rows: s.rows,
        text: s.text.toString('utf8'),
        sanitized: s.sanitized ?? null,
        unstorable: s.unstorable ?? null,
      })),
    };
  } catch (error) {
    return { ok: false, error: error as Error };
  }
}

function fastPath(b: Buffer, def: ReportDefinition, ordered: boolean): Outcome & { scanned?: boolean } {
  try {
    const p = parsePageBytes(b, def, START, END, ctx, { ordered });
    return {
      ok: true,
      scanned: p.scanned,
      rows: p.rows,
      rowCount: p.rowCount,
      meta: p.meta,
      response: p.response,
      segments: p.segments.map((s) => ({
        date: s.date,
        rows: s.rows,
        text: s.text.toString('utf8'),
        sanitized: s.sanitized ?? null,
        unstorable: s.unstorable ?? null,
      })),
    };
  } catch (error) {
    return { ok: false, error: error as Error };
  }
}

/**
 * Row text fields; float metrics as numbers (the paths may spell one double two ways), the rest as
 * text, and so is a float metric that is no number (kept as sent: its date is refused).
 */
function fields(text: string, floatColumns: Set<number>): Array<string | number> {
  return text
    .split('\n')
    .filter(Boolean)
    .flatMap((line) => line.split('\t').map((f, i) => (floatColumns.has(i) && !Number.isNaN(Number(f)) ? Number(f) : f)));
}

function assertSame(b: Buffer, shape: Shape, ordered: boolean): boolean {
  const def = defOf(shape);
  const slow = slowPath(b, def, ordered);
  const fast = fastPath(b, def, ordered);
  if (!slow.ok) {
    assert.equal(fast.ok, false, `the scanner read a page the slow path refuses (${slow.error.message})`);
    const err = (fast as { error: Error }).error;
    assert.ok(err instanceof RetryableError, `a retryable error, not ${err.name}: ${err.message}`);
    if (/^not JSON$/.test(slow.error.message)) assert.match(err.message, /not JSON/);
    else if (slow.error.message === 'not an object') assert.match(err.message, /not an object/);
    else if (slow.error.message === 'not ordered') assert.equal(err.code, 'unordered');
    else assert.equal(err.message, slow.error.message);
    return false;
  }
  assert.equal(fast.ok, true, `the scanner refused a page the slow path reads: ${(fast as { error?: Error }).error?.message}`);
  if (!fast.ok) return false;
  assert.equal(fast.rows, slow.rows);
  assert.equal(fast.rowCount, slow.rowCount);
  assert.deepEqual(fast.meta, slow.meta);
  assert.deepEqual(fast.response, slow.response);
  assert.deepEqual(
    fast.segments.map((s) => [s.date, s.rows, s.sanitized, s.unstorable]),
    slow.segments.map((s) => [s.date, s.rows, s.sanitized, s.unstorable]),
  );
  const floats = new Set(shape.integer.flatMap((integer, k) => (integer ? [] : [2 + shape.dims + k])));
  for (let k = 0; k < fast.segments.length; k++) {
    const a = fields(fast.segments[k]!.text, floats);
    const e = fields(slow.segments[k]!.text, floats);
    assert.equal(a.length, e.length);
    // Object.is: -0 must stay -0 (a NaN field is kept as text, see fields())
    a.forEach((v, i) =>
      assert.ok(Object.is(v, e[i]), `field ${i} of ${fast.segments[k]!.date}: scanner ${JSON.stringify(String(v))}, slow path ${JSON.stringify(String(e[i]))}`),
    );
  }
  return fast.scanned === true;
}

describe('page scanner, property-based', () => {
  it('on generated bodies, gives what JSON.parse + parsePage + segmentsOf give, or the same error', () => {
    let scanned = 0;
    let read = 0;
    let refused = 0;
    let marked = 0;
    fc.assert(
      fc.property(caseArb, ({ shape, rows, layout, ordered }) => {
        const b = body(shape, rows, layout);
        const wasScanned = assertSame(b, shape, ordered);
        if (wasScanned) scanned++;
        const def = defOf(shape);
        const slow = slowPath(b, def, ordered);
        if (slow.ok) read++;
        else refused++;
        if (slow.ok && slow.segments.some((segment) => segment.unstorable !== null)) marked++;
      }),
      { numRuns: Number(process.env['PROPERTY_RUNS'] ?? 3000) },
    );
    // the property is only worth something if both outcomes, and the fast path itself, are exercised
    assert.ok(scanned > read * 0.3, `the scanner read a good share of the pages itself (${scanned} of ${read})`);
    assert.ok(refused > 50 && read > 300, `both read and refused pages were generated (${read} read, ${refused} refused)`);
    assert.ok(marked > 50, `pages with values no column holds were read (${marked})`);
  });

  it("Google's own layout (compact, fields in proto order) is always read by the scanner itself", () => {
    const plain: Layout = {
      seed: 1,
      ws: '',
      escapeRate: 0,
      sortRows: true,
      shuffleTop: false,
      metricsFirst: false,
      extraValueField: false,
      rowCountAsNumber: true,
      nestedRowsKeys: false,
      secondRows: false,
      emptyRowsField: false,
      badHeaders: false,
      escapeDate: false,
      escapeKeys: false,
    };
    fc.assert(
      fc.property(
        shapeArb.chain((shape) => fc.record({ shape: fc.constant(shape), rows: fc.array(rowArb(shape), { minLength: 1, maxLength: 8 }), seed: fc.integer() })),
        ({ shape, rows, seed }) => {
          const good = rows.filter((r) => r.date !== null && GOOD_DATES.includes(r.date) && r.dims.every((d) => typeof d === 'string' || d === null));
          const b = body(shape, good, { ...plain, seed });
          const def = defOf(shape);
          const slow = slowPath(b, def, true);
          const scannedItself = assertSame(b, shape, true);
          if (slow.ok && good.length > 0) assert.equal(scannedItself, true, "a good page in Google's layout takes the fast path");
        },
      ),
      { numRuns: 500 },
    );
  });
});
