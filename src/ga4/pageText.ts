/**
 * A runReport page from its response text straight to rows, without `JSON.parse` building the
 * rows first.
 *
 * Why: in a proto3 JSON page every value is an object of its own (`{"value":"38"}`), so parsing a
 * 100,000-row page builds about two million short-lived objects, which are then converted to
 * `ReportRow`s and dropped. Profiling a 1,000,000-row backfill showed that parse and the garbage
 * collection it causes as most of the collector's CPU, and the parsed page as most of its memory.
 * Here the `rows` array is scanned in place: each value becomes one (sliced) string, each row one
 * `ReportRow`. The rest of the response (headers, rowCount, metadata, quota) is small and goes
 * through `JSON.parse` and `parsePage`'s checks as before.
 *
 * The scanner knows the layout Google sends (the fields of `Row`, `DimensionValue` and
 * `MetricValue`, any whitespace, any escapes). Anything else (an unknown field, a truncated body)
 * makes it give up, and the whole text goes through `JSON.parse` and `parsePage`: never a wrong
 * row, at worst the slower path.
 */
import type { ReportDefinition } from '../config.js';
import { RetryableError } from '../errors.js';
import type { CallContext, RunReportResponse } from './client.js';
import { parsePage } from './report.js';
import type { ReportRow, ResponseMeta } from './types.js';

export interface ParsedPage {
  rows: ReportRow[];
  rowCount: number;
  meta: ResponseMeta;
  /** the response without its rows (quota, headers, metadata) */
  response: RunReportResponse;
}

/** The text is not in the layout the scanner knows: use JSON.parse instead. */
class NotScannable extends Error {}

const QUOTE = 34;
const BACKSLASH = 92;
const COMMA = 44;
const COLON = 58;
const LBRACE = 123;
const RBRACE = 125;
const LBRACKET = 91;
const RBRACKET = 93;

/** Rows of the response text plus the response without them; see the module comment. */
export function parsePageText(text: string, def: ReportDefinition, start: string, end: string, ctx: CallContext): ParsedPage {
  let scanned: { values: string[]; from: number; to: number } | null = null;
  try {
    scanned = scanRows(text, 1 + def.dimensions.length, def.metrics.length);
  } catch (err) {
    if (!(err instanceof NotScannable)) throw err;
  }
  if (scanned === null) {
    const res = parseJson(text, ctx);
    const page = parsePage(res, def, start, end, ctx);
    return { ...page, response: res };
  }
  const res = parseJson(withoutRows(text, scanned.from, scanned.to), ctx);
  if (typeof res !== 'object' || res === null || Array.isArray(res) || 'rows' in res) throw bad(ctx, 'layout');
  // headers, rowCount and metadata: the same checks as a parsed page (it has no rows now)
  const page = parsePage(res, def, start, end, ctx);
  const integer = (res.metricHeaders ?? []).map((h) => h.type === 'TYPE_INTEGER');
  return { rows: toRows(scanned.values, def, integer, start, end, ctx), rowCount: page.rowCount, meta: page.meta, response: res };
}

function parseJson(text: string, ctx: CallContext): RunReportResponse {
  let res: unknown;
  try {
    res = JSON.parse(text);
  } catch {
    throw new RetryableError(`runReport for property ${ctx.propertyId}: response body is not JSON (truncated?)`, 'bad_response');
  }
  if (typeof res !== 'object' || res === null) throw bad(ctx, 'body is not an object');
  return res as RunReportResponse;
}

function bad(ctx: CallContext, what: string): RetryableError {
  return new RetryableError(`runReport for property ${ctx.propertyId}: malformed response (${what})`, 'bad_response');
}

/** The text with `"rows": [...]` and one neighbouring comma cut out. */
function withoutRows(text: string, from: number, to: number): string {
  let after = skipWs(text, to);
  if (text.charCodeAt(after) === COMMA) return text.slice(0, from) + text.slice(after + 1);
  let before = from - 1;
  while (before >= 0 && isWs(text.charCodeAt(before))) before--;
  if (text.charCodeAt(before) === COMMA) return text.slice(0, before) + text.slice(to);
  return text.slice(0, from) + text.slice(to);
}

function isWs(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9;
}

function skipWs(s: string, i: number): number {
  while (isWs(s.charCodeAt(i))) i++;
  return i;
}

/**
 * Finds the top-level `"rows"` key and reads its array into a flat list of strings, `dims` then
 * `metrics` values per row. Returns null when there is no rows key (an empty page).
 */
function scanRows(s: string, dims: number, metrics: number): { values: string[]; from: number; to: number } | null {
  // A `"rows"` followed by a colon is a key (a string value is never followed by one), and only
  // the response itself has a key of that name.
  let from = -1;
  let i = 0;
  for (;;) {
    const k = s.indexOf('"rows"', i);
    if (k < 0) return null;
    const c = skipWs(s, k + 6);
    if (s.charCodeAt(c) === COLON) {
      from = k;
      i = skipWs(s, c + 1);
      break;
    }
    i = k + 6;
  }
  if (s.charCodeAt(i) !== LBRACKET) throw new NotScannable();
  i = skipWs(s, i + 1);
  const values: string[] = [];
  if (s.charCodeAt(i) === RBRACKET) return { values, from, to: i + 1 };
  const st: Cursor = { s, i, backslash: s.indexOf('\\', i) };
  for (;;) {
    readRow(st, values, dims, metrics);
    st.i = skipWs(s, st.i);
    const c = s.charCodeAt(st.i);
    if (c === COMMA) {
      st.i = skipWs(s, st.i + 1);
      continue;
    }
    if (c === RBRACKET) return { values, from, to: st.i + 1 };
    throw new NotScannable();
  }
}

interface Cursor {
  s: string;
  i: number;
  /** position of the next backslash at or after i (or -1): strings before it need no unescaping */
  backslash: number;
}

/**
 * `{"dimensionValues":[...],"metricValues":[...]}`, the values appended to `out`. Google writes the
 * fields in this (their proto) order; another order or field falls back to JSON.parse.
 */
function readRow(st: Cursor, out: string[], dims: number, metrics: number): void {
  const { s } = st;
  if (s.charCodeAt(st.i) !== LBRACE) throw new NotScannable();
  st.i = skipWs(s, st.i + 1);
  // keys compared in place: no string made per key
  if (!s.startsWith('"dimensionValues"', st.i)) throw new NotScannable();
  st.i = skipWs(s, st.i + 17);
  if (s.charCodeAt(st.i) !== COLON) throw new NotScannable();
  st.i = skipWs(s, st.i + 1);
  if (readValues(st, out, dims, '') !== dims) throw new NotScannable();
  if (s.charCodeAt(st.i) !== COMMA) throw new NotScannable();
  st.i = skipWs(s, st.i + 1);
  if (!s.startsWith('"metricValues"', st.i)) throw new NotScannable();
  st.i = skipWs(s, st.i + 14);
  if (s.charCodeAt(st.i) !== COLON) throw new NotScannable();
  st.i = skipWs(s, st.i + 1);
  if (readValues(st, out, metrics, '0') !== metrics) throw new NotScannable();
  if (s.charCodeAt(st.i) !== RBRACE) throw new NotScannable();
  st.i += 1;
}

/**
 * `[{"value":"x"}, {}, ...]` appended to `out`; returns how many (at most `max`). proto3 omits an
 * empty value: `omitted` stands for it (as parsePage's `?? ''` and `?? '0'`). Leaves st.i on the
 * first non-blank after the array.
 */
function readValues(st: Cursor, out: string[], max: number, omitted: string): number {
  const { s } = st;
  if (s.charCodeAt(st.i) !== LBRACKET) throw new NotScannable();
  st.i = skipWs(s, st.i + 1);
  let n = 0;
  if (s.charCodeAt(st.i) !== RBRACKET) {
    for (;;) {
      if (s.charCodeAt(st.i) !== LBRACE) throw new NotScannable();
      st.i = skipWs(s, st.i + 1);
      let value = omitted;
      if (s.charCodeAt(st.i) !== RBRACE) {
        if (!s.startsWith('"value"', st.i)) throw new NotScannable();
        st.i = skipWs(s, st.i + 7);
        if (s.charCodeAt(st.i) !== COLON) throw new NotScannable();
        st.i = skipWs(s, st.i + 1);
        value = readString(st);
        st.i = skipWs(s, st.i);
        if (s.charCodeAt(st.i) !== RBRACE) throw new NotScannable();
      }
      st.i = skipWs(s, st.i + 1);
      if (++n > max) throw new NotScannable();
      out.push(value);
      const c = s.charCodeAt(st.i);
      st.i = skipWs(s, st.i + 1);
      if (c === RBRACKET) break;
      if (c !== COMMA) throw new NotScannable();
    }
  } else {
    st.i = skipWs(s, st.i + 1);
  }
  return n;
}

/** A JSON string at st.i; leaves st.i after its closing quote. */
function readString(st: Cursor): string {
  const { s } = st;
  const open = st.i;
  if (s.charCodeAt(open) !== QUOTE) throw new NotScannable();
  const close = s.indexOf('"', open + 1);
  if (close < 0) throw new NotScannable();
  if (st.backslash >= 0 && st.backslash < open) st.backslash = s.indexOf('\\', open);
  if (st.backslash < 0 || st.backslash > close) {
    st.i = close + 1;
    return s.slice(open + 1, close);
  }
  // escapes inside: find the real closing quote, let JSON.parse unescape
  let j = open + 1;
  for (;;) {
    const c = s.charCodeAt(j);
    if (Number.isNaN(c)) throw new NotScannable();
    if (c === BACKSLASH) j += 2;
    else if (c === QUOTE) break;
    else j += 1;
  }
  st.i = j + 1;
  st.backslash = s.indexOf('\\', st.i);
  return JSON.parse(s.slice(open, j + 1)) as string;
}

/** Flat values to rows, with the checks `parsePage` makes on parsed rows. */
function toRows(values: string[], def: ReportDefinition, integer: boolean[], start: string, end: string, ctx: CallContext): ReportRow[] {
  const dims = 1 + def.dimensions.length;
  const width = dims + def.metrics.length;
  const rows = new Array<ReportRow>(values.length / width);
  let lastRaw = '';
  let lastDate = '';
  for (let r = 0, o = 0; o < values.length; r++, o += width) {
    const raw = values[o]!;
    if (raw !== lastRaw) {
      if (!/^\d{8}$/.test(raw)) throw bad(ctx, `date value ${JSON.stringify(raw)}`);
      const date = `${raw.slice(0, 4)}-${raw.slice(4, 6)}-${raw.slice(6, 8)}`;
      if (date < start || date > end) {
        throw new RetryableError(`runReport for property ${ctx.propertyId}: row dated ${date} outside the requested ${start}..${end}`, 'bad_response');
      }
      lastRaw = raw;
      lastDate = date;
    }
    const rowDims = new Array<string>(dims - 1);
    for (let k = 1; k < dims; k++) rowDims[k - 1] = values[o + k]!;
    const rowMetrics = new Array<string | number>(width - dims);
    for (let k = dims; k < width; k++) {
      const v = values[o + k]!;
      if (integer[k - dims]) {
        if (!isInteger(v)) throw bad(ctx, `integer metric value ${JSON.stringify(v)}`);
        rowMetrics[k - dims] = v;
      } else {
        const n = Number(v);
        if (!Number.isFinite(n)) throw bad(ctx, `metric value ${JSON.stringify(v)}`);
        rowMetrics[k - dims] = n;
      }
    }
    rows[r] = { date: lastDate, dims: rowDims, metrics: rowMetrics };
  }
  return rows;
}

/** /^-?\d+$/ without the regex machinery (a million calls per backfill). */
function isInteger(v: string): boolean {
  const n = v.length;
  let i = v.charCodeAt(0) === 45 ? 1 : 0;
  if (i === n) return false;
  for (; i < n; i++) {
    const c = v.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}
