/**
 * Row text: how rows travel from a response page to the database. One line per row, values
 * separated by tabs, in the report relation's column order (`property_id`, `date`, every
 * dimension, every metric), escaped as PostgreSQL's COPY text format wants (backslash, tab,
 * newline, carriage return), UTF-8.
 *
 * Why text and not an object per row: a backfill moves millions of rows, and an object per row
 * (with an array and a string per value) makes a collector slow and large: the garbage collector
 * copies and promotes every page held while the previous one is stored.
 * A page scanned straight into row text (pageRows.ts) leaves no object per row behind, and the
 * store hands the bytes to COPY unchanged.
 */
import type { ReportRow, Unstorable } from './types.js';

/** The rows of one date inside a page, as row text (a view of the page's buffer). */
export interface DaySegment {
  date: string;
  rows: number;
  text: Buffer;
  /** values of these rows changed to be storable (storableText), when any */
  sanitized?: Sanitized;
  /** the first metric value of these rows its column cannot hold, when any */
  unstorable?: Unstorable;
  /**
   * the date's rows before these are in the segment before, from the same page (a page read as it
   * arrives keeps its row text in several blocks, rowScanner.ts)
   */
  continued?: true;
}

/** Values changed by storableText: how many, and in which dimensions (API names). */
export interface Sanitized {
  values: number;
  dimensions: string[];
}

/** Adds `more` to `into` (either may be absent); the result lists each dimension once. */
export function addSanitized(into: Sanitized | undefined, more: Sanitized | undefined): Sanitized | undefined {
  if (!more) return into;
  if (!into) return { values: more.values, dimensions: [...more.dimensions] };
  into.values += more.values;
  for (const dimension of more.dimensions) if (!into.dimensions.includes(dimension)) into.dimensions.push(dimension);
  return into;
}

// eslint-disable-next-line no-control-regex -- U+0000 is exactly what must be found: PostgreSQL text cannot hold it
const UNSTORABLE = /[\u0000\ud800-\udfff]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * A dimension value as PostgreSQL can store it in a `text` column, or null when it already can be.
 * The decision, for values Google may send (JSON can carry both as escapes):
 * - U+0000 is removed: PostgreSQL text cannot hold it at all ("invalid byte sequence for
 *   encoding UTF8: 0x00"), and a report must not be stuck on one odd value;
 * - a lone UTF-16 surrogate (`"\ud800"` without its pair) is no character: it becomes U+FFFD,
 *   the replacement character, which is what every UTF-8 encoder (Node's included) writes for it.
 * The row is stored; the caller counts the change (ga_collector_values_sanitized_total) and warns.
 */
export function storableText(value: string): string | null {
  // surrogate pairs (emoji) match the first test; only lone surrogates are replaced
  if (!UNSTORABLE.test(value)) return null;
  // eslint-disable-next-line no-control-regex -- see UNSTORABLE
  const out = value.replace(/\u0000/g, '').replace(LONE_SURROGATE, '\ufffd');
  return out === value ? null : out;
}

const SPECIAL = /[\\\t\n\r]/;

/** A value in COPY's text format: backslash, tab, newline and carriage return escaped. */
export function copyText(value: string): string {
  if (!SPECIAL.test(value)) return value;
  return value.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}

/**
 * A metric value (metricValue's result) as a row text field; -0 stays -0, as the scanner copies it.
 * An unstorable value is text free of COPY's special characters (metricValue refuses those), so it
 * needs no escaping; its date is refused before COPY anyway.
 */
export function metricField(value: string | number): string {
  return typeof value === 'number' && Object.is(value, -0) ? '-0' : String(value);
}

/**
 * The metric fields of row text holding one row (its last `metrics` fields), as text. They need
 * no unescaping: metricField writes none of COPY's special characters.
 */
export function metricFields(text: Buffer, metrics: number): string[] {
  const line = text.toString('utf8');
  const fields = line.slice(0, line.endsWith('\n') ? -1 : undefined).split('\t');
  return fields.slice(fields.length - metrics);
}

/** The row text of one row. */
function rowLine(propertyId: string, row: ReportRow): string {
  let line = `${copyText(propertyId)}\t${row.date}`;
  for (const dimension of row.dims) line += `\t${copyText(dimension)}`;
  // integer metrics are digit strings and the others numbers, or text its date is refused for (checked by the page parser)
  for (const metric of row.metrics) line += `\t${metricField(metric)}`;
  return `${line}\n`;
}

/** Rows to segments: one per run of rows of the same date (one per date when ordered by date, as a page is). */
export function segmentsOf(propertyId: string, rows: readonly ReportRow[]): DaySegment[] {
  const out: DaySegment[] = [];
  let next = 0;
  while (next < rows.length) {
    const date = rows[next]!.date;
    let text = '';
    let count = 0;
    let sanitized: Sanitized | undefined;
    let unstorable: Unstorable | undefined;
    for (; next < rows.length && rows[next]!.date === date; next++, count++) {
      const row = rows[next]!;
      text += rowLine(propertyId, row);
      if (row.sanitized) sanitized = addSanitized(sanitized, { values: row.sanitized.length, dimensions: row.sanitized });
      unstorable ??= row.unstorable;
    }
    out.push({ date, rows: count, text: Buffer.from(text, 'utf8'), ...(sanitized ? { sanitized } : {}), ...(unstorable ? { unstorable } : {}) });
  }
  return out;
}

/** The dimension values of each row of row text, as one string per row (to tell rows apart). */
export function rowKeys(text: Buffer, dimensions: number): string[] {
  const keys: string[] = [];
  // latin1: one character per byte, so equal keys are equal bytes; fields never contain a raw tab or newline
  for (const line of text.toString('latin1').split('\n')) {
    if (line === '') continue;
    const from = line.indexOf('\t', line.indexOf('\t') + 1); // after property_id and date
    let to = from;
    for (let dimension = 0; dimension < dimensions && to >= 0; dimension++) to = line.indexOf('\t', to + 1);
    keys.push(to < 0 ? line.slice(from + 1) : line.slice(from + 1, to));
  }
  return keys;
}
