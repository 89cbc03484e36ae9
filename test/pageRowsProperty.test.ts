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
import pino from 'pino';
import type { ReportDefinition } from '../src/config/index.js';
import { RetryableError } from '../src/errors.js';
import { parsePageBytes } from '../src/ga4/pageRows.js';
import { parsePage } from '../src/ga4/responses.js';
import { segmentsOf } from '../src/ga4/rowText.js';

const ctx = { propertyId: '123', tokens: null as never, logger: pino({ level: 'silent' }) };
const START = '2025-03-01';
const END = '2025-03-05';
const DIM_NAMES = ['pagePath', 'city', 'country'];
const METRIC_NAMES = ['sessions', 'bounceRate', 'totalUsers'];

// ---------------------------------------------------------------- values

const codeUnit = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('a', 'Z', '0', ' ', '/', '-', 'é', '日', '😀', '\u2028', '\ufffd', '\u007f') },
  { weight: 3, arbitrary: fc.constantFrom('"', '\\', '\t', '\n', '\r', '\b', '\f', '\u0000', '\u001f') },
  { weight: 2, arbitrary: fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff', '\ud83d', '\ude00') },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) },
  { weight: 1, arbitrary: fc.integer({ min: 0x10000, max: 0x10ffff }).map((c) => String.fromCodePoint(c)) },
);

/** A dimension value: text, raw bytes spliced into it (maybe not UTF-8), or null (left out). */
type DimValue = string | { text: string; bytes: Buffer } | null;
const dimValue: fc.Arbitrary<DimValue> = fc.oneof(
  { weight: 10, arbitrary: fc.string({ unit: codeUnit, maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: codeUnit, minLength: 300, maxLength: 600 }) },
  { weight: 2, arbitrary: fc.constantFrom('', 'nul\u0000inside', '\ud800', 'x\udc00', '😀', '\\N', 'a\tb\nc\rd\\e"f/g', '(not set)') },
  {
    weight: 1,
    arbitrary: fc.record({
      text: fc.string({ unit: codeUnit, maxLength: 4 }),
      bytes: fc.constantFrom(
        Buffer.from([0xff]),
        Buffer.from([0xed, 0xa0, 0x80]),
        Buffer.from([0xc3]),
        Buffer.from([0xe6, 0x97, 0xa5]),
        Buffer.from([0xc0, 0xaf]),
      ),
    }),
  },
  { weight: 1, arbitrary: fc.constant(null) },
);

/**
 * Values no column holds: text (its date is refused), or text with what would break the row text
 * (a control character, a backslash: a malformed page); any escapes (the Writer's).
 */
const unstorableOrBreaking = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: codeUnit, maxLength: 6 }) },
  { weight: 1, arbitrary: fc.constantFrom('1\t2', '5\n', '\\', 'a\u0000', '\r', '1\u001f', '\ud800', '1.5😀', '\u2028') },
);
const integerText = fc.oneof(
  { weight: 8, arbitrary: fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }).map(String) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '0',
      '-0',
      '007',
      '9223372036854775807',
      '99999999999999999999999',
      '',
      '1.5',
      '1e3',
      ' 5',
      '+5',
      'abc',
      '٣',
      'NaN',
      '-',
      '1 000',
    ),
  },
  { weight: 1, arbitrary: unstorableOrBreaking },
);
const floatText = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .double()
      .chain((d) => fc.constantFrom(String(d), d.toExponential(), Number.isFinite(d) ? d.toPrecision(21) : String(d), String(d).toUpperCase())),
  },
  { weight: 2, arbitrary: fc.integer({ min: -1000, max: 1000 }).map(String) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '.5',
      '5.',
      '-.5',
      '00.5',
      '0.41666666666666669',
      '1E5',
      '1e+5',
      '1e-5',
      '-0',
      '0.0',
      '1e400',
      '-1e400',
      '1e-400',
      `0.${'0'.repeat(400)}1`,
      `1${'0'.repeat(400)}`,
      '123456789012345678901234567890',
      '0x10',
      ' 5',
      '5 ',
      'NaN',
      'Infinity',
      '',
      '1e',
      '--1',
      '1.2.3',
      'abc',
      '-Infinity',
      'inf',
    ),
  },
  { weight: 1, arbitrary: unstorableOrBreaking },
);
const metricText = (integer: boolean) => fc.option(integer ? integerText : floatText, { nil: null, freq: 12 });

const GOOD_DATES = ['20250301', '20250302', '20250303', '20250304', '20250305'];
const dateText = fc.oneof(
  { weight: 40, arbitrary: fc.constantFrom(...GOOD_DATES) },
  { weight: 1, arbitrary: fc.constantFrom('20250228', '20250311', '2025030', '2025-03-01', '', '２０２５０３０１') },
);

// ---------------------------------------------------------------- bodies

interface Shape {
  dims: number;
  integer: boolean[];
}
interface Row {
  date: string | null;
  dims: DimValue[];
  metrics: Array<string | null>;
}
interface Layout {
  seed: number;
  ws: string;
  escapeRate: number;
  sortRows: boolean;
  shuffleTop: boolean;
  metricsFirst: boolean;
  extraValueField: boolean;
  rowCountAsNumber: boolean;
  nestedRowsKeys: boolean;
  secondRows: boolean;
  emptyRowsField: boolean;
  badHeaders: boolean;
  escapeDate: boolean;
  escapeKeys: boolean;
}

const shapeArb: fc.Arbitrary<Shape> = fc.record({ dims: fc.integer({ min: 0, max: 3 }), integer: fc.array(fc.boolean(), { minLength: 1, maxLength: 3 }) });
const rare = (n: number) => fc.integer({ min: 0, max: n - 1 }).map((x) => x === 0);
const layoutArb: fc.Arbitrary<Layout> = fc.record({
  seed: fc.integer(),
  ws: fc.constantFrom('', '', ' ', '\n  ', '\t', '\r\n'),
  escapeRate: fc.constantFrom(0, 0, 0.1, 0.5, 1),
  sortRows: rare(6).map((x) => !x),
  shuffleTop: rare(8),
  metricsFirst: rare(15),
  extraValueField: rare(15),
  rowCountAsNumber: fc.boolean(),
  nestedRowsKeys: rare(4),
  secondRows: rare(20),
  emptyRowsField: fc.boolean(),
  badHeaders: rare(30),
  escapeDate: rare(20),
  escapeKeys: rare(20),
});

function rowArb(shape: Shape): fc.Arbitrary<Row> {
  return fc.record({
    date: fc.option(dateText, { nil: null, freq: 60 }),
    dims: fc.tuple(...Array.from({ length: shape.dims }, () => dimValue)).map((t) => t as DimValue[]),
    metrics: fc.tuple(...shape.integer.map((i) => metricText(i))).map((t) => t as Array<string | null>),
  });
}

const caseArb = shapeArb.chain((shape) =>
  fc.record({ shape: fc.constant(shape), rows: fc.array(rowArb(shape), { maxLength: 8 }), layout: layoutArb, ordered: rare(5).map((x) => !x) }),
);

/** A small PRNG, so one seed decides every whitespace and escape choice of a body. */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

const SHORT: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t', '/': '\\/' };

/** Builds a body of Buffers: JSON text (UTF-8) with any escape spellings, and raw bytes where asked. */
class Writer {
  private readonly parts: Buffer[] = [];
  constructor(
    private readonly rnd: () => number,
    private readonly layout: Layout,
  ) {}

  raw(s: string | Buffer): this {
    this.parts.push(typeof s === 'string' ? Buffer.from(s, 'utf8') : s);
    return this;
  }

  ws(): this {
    return this.raw(this.layout.ws && this.rnd() < 0.7 ? this.layout.ws : '');
  }

  hex(code: number): string {
    const h = code.toString(16).padStart(4, '0');
    return `\\u${this.rnd() < 0.5 ? h : h.toUpperCase()}`;
  }

  /** A JSON string; `escapes`: every character escaped, some (at the layout's rate), or only where JSON must. */
  str(s: string, escapes: 'all' | 'some' | 'must' = 'some', bytes?: Buffer): this {
    let out = '"';
    for (let i = 0; i < s.length; i++) {
      const c = s[i]!;
      const code = s.charCodeAt(i);
      const must = c === '"' || c === '\\' || code < 0x20 || (code >= 0xd800 && code <= 0xdfff && !isPair(s, i));
      if (must || escapes === 'all' || (escapes === 'some' && this.rnd() < this.layout.escapeRate)) {
        out += SHORT[c] !== undefined && this.rnd() < 0.6 ? SHORT[c] : this.hex(code);
      } else if (code >= 0xd800 && code <= 0xdbff) {
        out += s.slice(i, i + 2); // a pair, raw
        i++;
      } else {
        out += c;
      }
    }
    if (bytes) {
      this.raw(out);
      this.raw(bytes);
      return this.raw('"');
    }
    return this.raw(`${out}"`);
  }

  /** A key: Google spells keys plainly; `escapeKeys` escapes them (valid JSON all the same). */
  key(k: string): this {
    return this.ws()
      .str(k, this.layout.escapeKeys ? 'some' : 'must')
      .ws()
      .raw(':')
      .ws();
  }

  json(v: unknown): this {
    // headers, metadata and quota: plain JSON, with the layout's whitespace around it
    return this.ws().raw(JSON.stringify(v)).ws();
  }

  buffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function isPair(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  if (c >= 0xd800 && c <= 0xdbff) return i + 1 < s.length && s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) <= 0xdfff;
  if (c >= 0xdc00 && c <= 0xdfff) return i > 0 && s.charCodeAt(i - 1) >= 0xd800 && s.charCodeAt(i - 1) <= 0xdbff;
  return false;
}

function defOf(shape: Shape): ReportDefinition {
  return {
    name: 'p',
    dimensions: DIM_NAMES.slice(0, shape.dims),
    metrics: METRIC_NAMES.slice(0, shape.integer.length),
    startDate: '30daysAgo',
    refreshDays: 3,
  };
}

function body(shape: Shape, rowsIn: Row[], layout: Layout): Buffer {
  const rnd = prng(layout.seed);
  const w = new Writer(rnd, layout);
  const rows = layout.sortRows ? [...rowsIn].sort((a, b) => ((a.date ?? '') < (b.date ?? '') ? -1 : (a.date ?? '') > (b.date ?? '') ? 1 : 0)) : rowsIn;
  const def = defOf(shape);
  const dimHeaders = ['date', ...def.dimensions].map((name) => ({ name }));
  if (layout.badHeaders) dimHeaders.reverse();
  const metricHeaders = def.metrics.map((name, i) => ({ name, type: shape.integer[i] ? 'TYPE_INTEGER' : 'TYPE_FLOAT' }));
  const value = (v: DimValue, escapes: 'all' | 'some' | 'must' = 'some') => {
    w.ws().raw('{');
    if (v !== null) {
      w.key('value');
      if (typeof v === 'string') w.str(v, escapes);
      else w.str(v.text, escapes, v.bytes);
      if (layout.extraValueField && rnd() < 0.3) w.raw(',').key('other').raw('1');
    }
    w.ws().raw('}').ws();
  };
  const list = (values: DimValue[], first?: () => void) => {
    w.ws().raw('[');
    let n = 0;
    if (first) {
      first();
      n++;
    }
    for (const v of values) {
      if (n++ > 0) w.raw(',');
      value(v);
    }
    w.raw(']').ws();
  };
  const writeRows = () => {
    w.key('rows').raw('[');
    rows.forEach((r, i) => {
      if (i > 0) w.raw(',');
      w.ws().raw('{');
      const dims = () => {
        w.key('dimensionValues');
        // Google never escapes a date's digits; `escapeDate` does (valid JSON all the same)
        list(r.dims, () => value(r.date, layout.escapeDate ? 'all' : 'must'));
      };
      const metrics = () => {
        w.key('metricValues');
        list(r.metrics);
      };
      if (layout.metricsFirst) {
        metrics();
        w.raw(',');
        dims();
      } else {
        dims();
        w.raw(',');
        metrics();
      }
      w.raw('}').ws();
    });
    w.raw(']').ws();
  };
  const metadata: Record<string, unknown> = { currencyCode: 'USD', timeZone: 'Europe/Berlin' };
  if (layout.nestedRowsKeys) {
    metadata['rows'] = [{ dimensionValues: [] }];
    metadata['x"rows'] = [1];
  }
  const fields: Array<[string, () => void]> = [
    ['dimensionHeaders', () => w.key('dimensionHeaders').json(dimHeaders)],
    ['metricHeaders', () => w.key('metricHeaders').json(metricHeaders)],
  ];
  if (rows.length > 0 || layout.emptyRowsField) fields.push(['rows', writeRows]);
  fields.push(
    ['rowCount', () => w.key('rowCount').json(layout.rowCountAsNumber ? rows.length : String(rows.length))],
    ['metadata', () => w.key('metadata').json(metadata)],
    ['propertyQuota', () => w.key('propertyQuota').json({ tokensPerDay: { consumed: 3, remaining: 199000 } })],
    ['kind', () => w.key('kind').json('analyticsData#runReport')],
  );
  if (layout.secondRows) fields.push(['rows', () => w.key('rows').json([])]);
  if (layout.shuffleTop) {
    for (let i = fields.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [fields[i], fields[j]] = [fields[j]!, fields[i]!];
    }
  }
  w.ws().raw('{');
  fields.forEach(([, write], i) => {
    if (i > 0) w.raw(',');
    write();
  });
  w.raw('}').ws();
  return w.buffer();
}

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
