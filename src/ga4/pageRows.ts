/**
 * A runReport page from its response bytes straight to row text (rowText.ts), one segment per
 * date, without parsing the rows into objects.
 *
 * Why: in a proto3 JSON page every value is an object of its own (`{"value":"38"}`), so
 * `JSON.parse` builds some twenty objects per row, which were then converted to one more object
 * per row and held until stored. Profiling a 1,000,000-row backfill showed that parse and the
 * garbage collection it caused as most of the collector's CPU, and the parsed pages, promoted
 * to the old generation while the previous batch was written, as most of its memory. Here the
 * `rows` array is read byte by byte and each value copied to the output as it is; the only
 * objects made are one per date. The rest of the response (headers, rowCount, metadata, quota)
 * is small and goes through `JSON.parse` and `parsePage`'s checks as before.
 *
 * The scanner knows the layout Google sends: the fields of `Row`, `DimensionValue` and
 * `MetricValue` in proto order, any whitespace, any escapes, UTF-8. Anything else (an unknown
 * field, a truncated body, bytes that are not UTF-8) makes it give up, and the whole body goes
 * through `JSON.parse` and `parsePage` instead: never a wrong row, at worst the slower path. The
 * values are checked as `parsePage` checks them: the date, its range and order, integer and
 * numeric metrics; and a page the scanner finds fault with is read again by the slow path, so the
 * error (or the rows) are always the slow path's. test/pageRowsProperty.test.ts checks the two
 * paths against each other on generated bodies.
 */
import { isUtf8 } from 'node:buffer';
import type { ReportDefinition } from '../config/index.js';
import { RetryableError } from '../errors.js';
import type { CallContext, RunReportResponse } from './client.js';
import { metricValue, parsePage } from './report.js';
import { copyText, metricField, segmentsOf, storableText, type DaySegment } from './rowText.js';
import type { ResponseMeta } from './types.js';

export interface PageRows {
  /** rows in this page */
  rows: number;
  /** this page's rows as row text, one segment per date, in date order (when read as ordered;
   * else one segment per run of rows of the same date, in page order) */
  segments: DaySegment[];
  /** rows of the whole listing, as the response says */
  rowCount: number;
  meta: ResponseMeta;
  /** the response without its rows (quota, headers, metadata) */
  response: RunReportResponse;
  /** false when the body took the slow path (JSON.parse) */
  scanned: boolean;
}

/** The body is not in the layout the scanner knows: parse it instead. */
class NotScannable extends Error {}

const QUOTE = 34;
const BACKSLASH = 92;
const COMMA = 44;
const COLON = 58;
const MINUS = 45;
const DOT = 46;
const TAB = 9;
const NEWLINE = 10;
const ZERO = 48;
const NINE = 57;
const LBRACE = 123;
const RBRACE = 125;
const LBRACKET = 91;
const RBRACKET = 93;

const KEY_ROWS = Buffer.from('"rows"');
const KEY_METRIC_HEADERS = Buffer.from('"metricHeaders"');
const KEY_DIMS = Buffer.from('"dimensionValues"');
const KEY_METRICS = Buffer.from('"metricValues"');
const KEY_VALUE = Buffer.from('"value"');

export interface ReadOptions {
  /**
   * true (the default): rows must come in date order, else RetryableError code `unordered`;
   * false: any order (the buffered read of an endpoint that ignores orderBys).
   */
  ordered?: boolean;
}

/**
 * The rows of a response body as row text, and the rest of the response; see the module comment.
 * Dimension values PostgreSQL cannot hold are made storable (rowText.ts storableText) and counted
 * in the segments' `sanitized`.
 * @throws RetryableError code `bad_response` for a body that is not a usable page (not JSON,
 *   malformed, a date out of range), `unordered` for rows out of date order when `ordered`
 */
export function parsePageBytes(body: Buffer, def: ReportDefinition, start: string, end: string, ctx: CallContext, opts: ReadOptions = {}): PageRows {
  const ordered = opts.ordered ?? true;
  // the scanner copies bytes as they are: only valid UTF-8 may be copied (the slow path decodes
  // anything else with replacement characters, as JSON.parse of the decoded text sees it)
  const layout = isUtf8(body) ? topLevel(body) : null;
  if (layout === null) return parsed(body, def, start, end, ctx, ordered);
  try {
    const scan = new Scanner(body, layout.rowsOpen, def, start, end, ctx, metricTypes(body, layout.metricHeaders, def.metrics.length), ordered);
    scan.run();
    const res = parseJson(withoutRows(body, layout.rowsKey, scan.i), ctx);
    // a second rows field: JSON.parse keeps the last one, and so does the slow path
    if ('rows' in res) throw new NotScannable();
    // headers, rowCount and metadata get the same checks as a parsed page (it has no rows now)
    const page = parsePage(res, def, start, end, ctx);
    const integer = (res.metricHeaders ?? []).map((h) => h.type === 'TYPE_INTEGER');
    // the scanner read the metric types ahead; should it have misread them, parse instead
    if (integer.some((x, k) => x !== scan.integer[k])) throw new NotScannable();
    return { rows: scan.rowsSeen, segments: scan.segments(), rowCount: page.rowCount, meta: page.meta, response: res, scanned: true };
  } catch {
    // A layout the scanner does not know, or a page it finds fault with: the slow path reads it
    // and has the last word, so both paths give the same rows and the same errors. Bad pages are
    // rare; reading them twice costs nothing that matters.
    return parsed(body, def, start, end, ctx, ordered);
  }
}

/** The slow path: JSON.parse, parsePage, then row text. */
function parsed(body: Buffer, def: ReportDefinition, start: string, end: string, ctx: CallContext, ordered: boolean): PageRows {
  const res = parseJson(body, ctx);
  const page = parsePage(res, def, start, end, ctx);
  const segments = segmentsOf(ctx.propertyId, page.rows);
  if (ordered) {
    for (let k = 1; k < segments.length; k++) {
      if (segments[k]!.date < segments[k - 1]!.date) throw unordered(ctx);
    }
  }
  const { rows: _rows, ...rest } = res;
  return { rows: page.rows.length, segments, rowCount: page.rowCount, meta: page.meta, response: rest, scanned: false };
}

function parseJson(body: Buffer, ctx: CallContext): RunReportResponse {
  let res: unknown;
  try {
    res = JSON.parse(body.toString('utf8'));
  } catch {
    throw new RetryableError(`runReport for property ${ctx.propertyId}: response body is not JSON (truncated, or a proxy's page?)`, 'bad_response');
  }
  if (typeof res !== 'object' || res === null || Array.isArray(res)) throw bad(ctx, 'body is not an object');
  return res as RunReportResponse;
}

function bad(ctx: CallContext, what: string): RetryableError {
  return new RetryableError(`runReport for property ${ctx.propertyId}: malformed response (${what})`, 'bad_response');
}

function unordered(ctx: CallContext): RetryableError {
  return new RetryableError(`runReport for property ${ctx.propertyId}: rows are not ordered by date`, 'unordered');
}

function isWs(c: number): boolean {
  return c === 32 || c === NEWLINE || c === 13 || c === TAB;
}

function skipWs(b: Buffer, i: number): number {
  while (isWs(b[i]!)) i++;
  return i;
}

/** From the opening quote of a string to just after its closing quote; -1 when it does not end. */
function skipString(b: Buffer, i: number): number {
  for (let k = i + 1; k < b.length; k++) {
    const c = b[k];
    if (c === BACKSLASH) k++;
    else if (c === QUOTE) return k + 1;
  }
  return -1;
}

/**
 * From the first byte of a JSON value to just after it; -1 when it does not end. Not a validator:
 * everything but the rows goes through JSON.parse afterwards.
 */
function skipValue(b: Buffer, i: number): number {
  let depth = 0;
  for (; i < b.length; i++) {
    const c = b[i]!;
    if (c === QUOTE) {
      const after = skipString(b, i);
      if (after < 0) return -1;
      if (depth === 0) return after;
      i = after - 1;
    } else if (c === LBRACE || c === LBRACKET) {
      depth++;
    } else if (c === RBRACE || c === RBRACKET) {
      if (depth === 0) return i; // a number or literal, ended by its container
      if (--depth === 0) return i + 1;
    } else if (depth === 0 && (c === COMMA || isWs(c))) {
      return i;
    }
  }
  return -1;
}

function isKey(b: Buffer, from: number, to: number, key: Buffer): boolean {
  if (to - from !== key.length) return false;
  for (let k = 0; k < key.length; k++) if (b[from + k] !== key[k]) return false;
  return true;
}

/**
 * Where the top-level `"rows"` key and its `[` are, and the span of the top-level `metricHeaders`
 * value before it; null when the body has no such rows (an empty page) or is not an object. Walks
 * the top-level members only (what precedes the rows: Google writes them after the headers), so a
 * `"rows"` inside a string or a nested object is never taken for them.
 */
function topLevel(b: Buffer): { rowsKey: number; rowsOpen: number; metricHeaders: [number, number] | null } | null {
  let i = skipWs(b, 0);
  if (b[i] !== LBRACE) return null;
  i = skipWs(b, i + 1);
  let metricHeaders: [number, number] | null = null;
  for (;;) {
    if (b[i] !== QUOTE) return null;
    const key = i;
    const afterKey = skipString(b, i);
    if (afterKey < 0) return null;
    let v = skipWs(b, afterKey);
    if (b[v] !== COLON) return null;
    v = skipWs(b, v + 1);
    if (isKey(b, key, afterKey, KEY_ROWS)) return b[v] === LBRACKET ? { rowsKey: key, rowsOpen: v, metricHeaders } : null;
    const afterValue = skipValue(b, v);
    if (afterValue < 0) return null;
    if (isKey(b, key, afterKey, KEY_METRIC_HEADERS)) metricHeaders = [v, afterValue];
    i = skipWs(b, afterValue);
    if (b[i] !== COMMA) return null;
    i = skipWs(b, i + 1);
  }
}

/** The body with `"rows": [...]` and one neighbouring comma cut out. */
function withoutRows(b: Buffer, from: number, to: number): Buffer {
  const after = skipWs(b, to);
  if (b[after] === COMMA) return Buffer.concat([b.subarray(0, from), b.subarray(after + 1)]);
  let before = from - 1;
  while (before >= 0 && isWs(b[before]!)) before--;
  if (b[before] === COMMA) return Buffer.concat([b.subarray(0, before), b.subarray(to)]);
  return Buffer.concat([b.subarray(0, from), b.subarray(to)]);
}

/** Reads the rows array from its `[` and writes row text; `i` ends after the `]`. */
class Scanner {
  i: number;
  rowsSeen = 0;
  /** metric types as read from the metric headers, checked against the parsed rest */
  readonly integer: boolean[];
  private out: Buffer;
  private o = 0;
  private readonly prefix: Buffer;
  private readonly dims: number;
  private readonly metrics: number;
  /** the current date as yyyymmdd, its text, and where its segment starts */
  private day = -1;
  private date = '';
  private segStart = 0;
  private segRows = 0;
  /** values of the current segment changed by storableText, and their dimensions */
  private segSanitized = 0;
  private segSanitizedDims: string[] = [];
  private readonly done: DaySegmentAt[] = [];
  /** the span of the last value read (valueSpan) */
  private from = 0;
  private to = 0;
  private escaped = false;

  constructor(
    private readonly b: Buffer,
    open: number,
    private readonly def: ReportDefinition,
    private readonly start: string,
    private readonly end: string,
    private readonly ctx: CallContext,
    integer: boolean[],
    private readonly ordered: boolean,
  ) {
    this.i = open;
    this.dims = def.dimensions.length;
    this.metrics = def.metrics.length;
    this.integer = integer;
    this.prefix = Buffer.from(`${copyText(ctx.propertyId)}\t`);
    // row text is about half as long as the JSON it comes from, and never longer per value
    this.out = Buffer.allocUnsafe(Math.max(4096, (b.length >> 1) + 1024));
  }

  run(): void {
    const b = this.b;
    this.i = skipWs(b, this.i + 1);
    if (b[this.i] === RBRACKET) {
      this.i++;
      return;
    }
    for (;;) {
      this.row();
      this.i = skipWs(b, this.i);
      const c = b[this.i++];
      if (c === RBRACKET) break;
      if (c !== COMMA) throw new NotScannable();
      this.i = skipWs(b, this.i);
    }
    this.closeDay();
  }

  segments(): DaySegment[] {
    return this.done.map((s) => ({ date: s.date, rows: s.rows, text: this.out.subarray(s.from, s.to), ...(s.sanitized ? { sanitized: s.sanitized } : {}) }));
  }

  /** `{"dimensionValues":[...],"metricValues":[...]}` */
  private row(): void {
    this.expect(LBRACE);
    this.key(KEY_DIMS);
    this.expect(LBRACKET);
    this.ensure(this.prefix.length + 16);
    this.o = copyBytes(this.prefix, 0, this.prefix.length, this.out, this.o);
    this.dateValue();
    for (let k = 0; k < this.dims; k++) {
      this.expect(COMMA);
      this.value(false, false, k);
    }
    this.expect(RBRACKET);
    this.expect(COMMA);
    this.key(KEY_METRICS);
    this.expect(LBRACKET);
    for (let k = 0; k < this.metrics; k++) {
      if (k > 0) this.expect(COMMA);
      this.value(true, this.integer[k]!, -1);
    }
    this.expect(RBRACKET);
    this.expect(RBRACE);
    this.out[this.o++] = NEWLINE;
    this.rowsSeen++;
    this.segRows++;
  }

  /** The next non-blank byte must be `c`. */
  private expect(c: number): void {
    const i = skipWs(this.b, this.i);
    if (this.b[i] !== c) throw new NotScannable();
    this.i = i + 1;
  }

  /** `"name" :` */
  private key(name: Buffer): void {
    const b = this.b;
    const i = skipWs(b, this.i);
    // a loop, not Buffer#compare: a native call per value costs more than the bytes
    for (let k = 0; k < name.length; k++) if (b[i + k] !== name[k]) throw new NotScannable();
    this.i = i + name.length;
    this.expect(COLON);
  }

  /**
   * `{"value": "..."}` or `{}` (proto3 leaves an empty value out): false for `{}`, else true with
   * the string's span in `from`/`to` (fields, not a returned object: this runs for every value).
   */
  private valueSpan(): boolean {
    const b = this.b;
    this.expect(LBRACE);
    let i = skipWs(b, this.i);
    if (b[i] === RBRACE) {
      this.i = i + 1;
      return false;
    }
    this.i = i;
    this.key(KEY_VALUE);
    i = skipWs(b, this.i);
    if (b[i] !== QUOTE) throw new NotScannable();
    const from = i + 1;
    let escaped = false;
    for (i = from; ; i++) {
      const c = b[i];
      if (c === QUOTE) break;
      if (c === BACKSLASH) {
        escaped = true;
        i++;
      } else if (c === undefined || c < 32) {
        throw new NotScannable();
      }
    }
    this.i = i + 1;
    this.expect(RBRACE);
    this.from = from;
    this.to = i;
    this.escaped = escaped;
    return true;
  }

  /** The date dimension: yyyymmdd, in range, dates in order; starts a segment when it changes. */
  private dateValue(): void {
    const present = this.valueSpan();
    const { b, from, to, escaped } = this;
    // escaped digits are valid JSON that Google never sends: the slow path reads them
    if (present && escaped) throw new NotScannable();
    let day = 0;
    if (present && to - from === 8) {
      for (let k = from; k < to; k++) {
        const c = b[k]!;
        if (c < ZERO || c > NINE) {
          day = -1;
          break;
        }
        day = day * 10 + (c - ZERO);
      }
    } else {
      day = -1;
    }
    if (day < 0) throw bad(this.ctx, `date value ${JSON.stringify(present ? b.toString('utf8', from, to) : '')}`);
    if (day !== this.day) {
      const date = `${String(Math.floor(day / 10000)).padStart(4, '0')}-${String(Math.floor(day / 100) % 100).padStart(2, '0')}-${String(day % 100).padStart(2, '0')}`;
      if (date < this.start || date > this.end) {
        throw new RetryableError(`runReport for property ${this.ctx.propertyId}: row dated ${date} outside the requested ${this.start}..${this.end}`, 'bad_response');
      }
      if (day < this.day && this.ordered) throw unordered(this.ctx);
      // the row's prefix is already written: the previous segment ends and this one starts before it
      const rowStart = this.o - this.prefix.length;
      const o = this.o;
      this.o = rowStart;
      this.closeDay();
      this.o = o;
      this.day = day;
      this.date = date;
      this.segStart = rowStart;
      this.segRows = 0;
      this.segSanitized = 0;
      this.segSanitizedDims = [];
    }
    const o = this.o;
    const out = this.out;
    const f = from;
    out[o] = b[f]!;
    out[o + 1] = b[f + 1]!;
    out[o + 2] = b[f + 2]!;
    out[o + 3] = b[f + 3]!;
    out[o + 4] = MINUS;
    out[o + 5] = b[f + 4]!;
    out[o + 6] = b[f + 5]!;
    out[o + 7] = MINUS;
    out[o + 8] = b[f + 6]!;
    out[o + 9] = b[f + 7]!;
    this.o = o + 10;
  }

  private closeDay(): void {
    if (this.day < 0 || this.segRows === 0) return;
    const sanitized = this.segSanitized > 0 ? { values: this.segSanitized, dimensions: this.segSanitizedDims } : undefined;
    this.done.push({ date: this.date, rows: this.segRows, from: this.segStart, to: this.o, sanitized });
  }

  /** A dimension (`dim` its index) or metric (`dim` -1) value, tab first. */
  private value(metric: boolean, integer: boolean, dim: number): void {
    const present = this.valueSpan();
    const { b, from, to, escaped } = this;
    if (!present) {
      // an omitted value: '' for a dimension, 0 for a metric (as parsePage reads them)
      this.ensure(2);
      this.out[this.o++] = TAB;
      if (metric) this.out[this.o++] = ZERO;
      return;
    }
    if (!escaped && (!metric || (integer ? isIntegerText(b, from, to) : isPlainDecimal(b, from, to)))) {
      this.ensure(to - from + 1);
      this.out[this.o++] = TAB;
      this.o = copyBytes(b, from, to, this.out, this.o);
      return;
    }
    this.rareValue(metric, integer, dim);
  }

  /**
   * The rare values: escapes, exponents, or not numbers at all. A method of its own so that
   * value(), which runs for every value, stays small enough to be inlined.
   */
  private rareValue(metric: boolean, integer: boolean, dim: number): void {
    const { b, from, to, escaped } = this;
    let text = escaped ? (JSON.parse(b.toString('utf8', from - 1, to + 1)) as string) : b.toString('utf8', from, to);
    if (!metric && escaped) {
      // only an escape can carry U+0000 or a lone surrogate (the body is valid UTF-8)
      const storable = storableText(text);
      if (storable !== null) {
        text = storable;
        this.segSanitized++;
        const name = this.def.dimensions[dim]!;
        if (!this.segSanitizedDims.includes(name)) this.segSanitizedDims.push(name);
      }
    }
    const field = metric ? metricField(metricValue(text, integer, (what) => bad(this.ctx, what))) : copyText(text);
    const len = Buffer.byteLength(field);
    this.ensure(len + 1);
    this.out[this.o++] = TAB;
    this.o += this.out.write(field, this.o, 'utf8');
  }

  /** Room for `n` more bytes (and the row's newline). */
  private ensure(n: number): void {
    if (this.o + n + 1 <= this.out.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.o + n + 1024));
    this.out.copy(bigger, 0, 0, this.o);
    this.out = bigger;
  }
}

/**
 * Copies bytes and returns the end in `dst`. A loop, not Buffer#copy: values are a few bytes long,
 * and Buffer#copy of a part of a buffer makes a Uint8Array view per call (profiled: a fifth of the
 * scanner's time, and most of its garbage).
 */
function copyBytes(src: Buffer, from: number, to: number, dst: Buffer, at: number): number {
  for (let k = from; k < to; k++) dst[at++] = src[k]!;
  return at;
}

/** -?[0-9]+ */
function isIntegerText(b: Buffer, from: number, to: number): boolean {
  let i = b[from] === MINUS ? from + 1 : from;
  if (i === to) return false;
  for (; i < to; i++) {
    const c = b[i]!;
    if (c < ZERO || c > NINE) return false;
  }
  return true;
}

/**
 * -?[0-9]+(.[0-9]+)?, at most 24 bytes: what both JavaScript and PostgreSQL read as the same
 * finite double (both round correctly). Longer spellings take the slow branch: PostgreSQL refuses
 * a decimal that underflows to zero, which JavaScript reads as 0.
 */
function isPlainDecimal(b: Buffer, from: number, to: number): boolean {
  if (to - from > 24) return false;
  let i = b[from] === MINUS ? from + 1 : from;
  const digitsFrom = i;
  while (i < to && b[i]! >= ZERO && b[i]! <= NINE) i++;
  if (i === digitsFrom) return false;
  if (i === to) return true;
  if (b[i] !== DOT) return false;
  const fraction = ++i;
  while (i < to && b[i]! >= ZERO && b[i]! <= NINE) i++;
  return i === to && i > fraction;
}

/** A finished segment: where its row text lies in the output. */
interface DaySegmentAt {
  date: string;
  rows: number;
  from: number;
  to: number;
  sanitized: { values: number; dimensions: string[] } | undefined;
}

/**
 * The metric types from the `metricHeaders` before the rows (Google writes the fields in proto
 * order, headers first). The scanner must know them before it reads a value; when they are not
 * where expected, it gives up.
 */
function metricTypes(b: Buffer, span: [number, number] | null, count: number): boolean[] {
  if (span === null) throw new NotScannable();
  let headers: unknown;
  try {
    headers = JSON.parse(b.toString('utf8', span[0], span[1]));
  } catch {
    throw new NotScannable();
  }
  if (!Array.isArray(headers) || headers.length !== count) throw new NotScannable();
  return headers.map((h: { type?: unknown }) => h?.type === 'TYPE_INTEGER');
}
