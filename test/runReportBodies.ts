/**
 * Generated runReport bodies for property tests of the page readers (pageRowsProperty.test.ts:
 * the scanner against the slow path; pageStream.test.ts: a body read as it arrives against the
 * same body read whole): escapes of every kind, surrogate pairs and lone surrogates, U+0000,
 * empty and long values, exponents and odd spellings of numbers, any field order, any whitespace,
 * bytes that are not UTF-8, keys that look like "rows".
 */
import fc from 'fast-check';
import pino from 'pino';
import type { ReportDefinition } from '../src/config/index.js';

export const ctx = { propertyId: '123', tokens: null as never, logger: pino({ level: 'silent' }) };
export const START = '2025-03-01';
export const END = '2025-03-05';
export const DIM_NAMES = ['pagePath', 'city', 'country'];
export const METRIC_NAMES = ['sessions', 'bounceRate', 'totalUsers'];

// ---------------------------------------------------------------- values

const codeUnit = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('a', 'Z', '0', ' ', '/', '-', 'é', '日', '😀', '\u2028', '\ufffd', '\u007f') },
  { weight: 3, arbitrary: fc.constantFrom('"', '\\', '\t', '\n', '\r', '\b', '\f', '\u0000', '\u001f') },
  { weight: 2, arbitrary: fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff', '\ud83d', '\ude00') },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) },
  { weight: 1, arbitrary: fc.integer({ min: 0x10000, max: 0x10ffff }).map((c) => String.fromCodePoint(c)) },
);

/** A dimension value: text, raw bytes spliced into it (maybe not UTF-8), or null (left out). */
export type DimValue = string | { text: string; bytes: Buffer } | null;
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

export const GOOD_DATES = ['20250301', '20250302', '20250303', '20250304', '20250305'];
const dateText = fc.oneof(
  { weight: 40, arbitrary: fc.constantFrom(...GOOD_DATES) },
  { weight: 1, arbitrary: fc.constantFrom('20250228', '20250311', '2025030', '2025-03-01', '', '２０２５０３０１') },
);

// ---------------------------------------------------------------- bodies

export interface Shape {
  dims: number;
  integer: boolean[];
}
export interface Row {
  date: string | null;
  dims: DimValue[];
  metrics: Array<string | null>;
}
export interface Layout {
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

export const shapeArb: fc.Arbitrary<Shape> = fc.record({
  dims: fc.integer({ min: 0, max: 3 }),
  integer: fc.array(fc.boolean(), { minLength: 1, maxLength: 3 }),
});
export const rare = (n: number) => fc.integer({ min: 0, max: n - 1 }).map((x) => x === 0);
export const layoutArb: fc.Arbitrary<Layout> = fc.record({
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

export function rowArb(shape: Shape): fc.Arbitrary<Row> {
  return fc.record({
    date: fc.option(dateText, { nil: null, freq: 60 }),
    dims: fc.tuple(...Array.from({ length: shape.dims }, () => dimValue)).map((t) => t as DimValue[]),
    metrics: fc.tuple(...shape.integer.map((i) => metricText(i))).map((t) => t as Array<string | null>),
  });
}

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

export function defOf(shape: Shape): ReportDefinition {
  return {
    name: 'p',
    dimensions: DIM_NAMES.slice(0, shape.dims),
    metrics: METRIC_NAMES.slice(0, shape.integer.length),
    startDate: '30daysAgo',
    refreshDays: 3,
  };
}

export function body(shape: Shape, rowsIn: Row[], layout: Layout): Buffer {
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
