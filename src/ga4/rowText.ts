/**
 * Row text: how rows travel from a response page to the database. One line per row, values
 * separated by tabs, in the report relation's column order (`property_id`, `date`, every
 * dimension, every metric), escaped as PostgreSQL's COPY text format wants (backslash, tab,
 * newline, carriage return), UTF-8.
 *
 * Why text and not an object per row: a backfill moves millions of rows, and an object per row
 * (with an array and a string per value) is what made the collector slow and large: the garbage
 * collector copied and promoted every page it had to hold while the previous one was stored.
 * A page scanned straight into row text (pageRows.ts) leaves no object per row behind, and the
 * store hands the bytes to COPY unchanged.
 */
import type { ReportRow } from './types.js';

/** The rows of one date inside a page, as row text (a view of the page's buffer). */
export interface DaySegment {
  date: string;
  rows: number;
  text: Buffer;
}

const SPECIAL = /[\\\t\n\r]/;

/** A value in COPY's text format: backslash, tab, newline and carriage return escaped. */
export function copyText(value: string): string {
  if (!SPECIAL.test(value)) return value;
  return value.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}

/** The row text of one row. */
export function rowLine(propertyId: string, row: ReportRow): string {
  let line = `${copyText(propertyId)}\t${row.date}`;
  for (const d of row.dims) line += `\t${copyText(d)}`;
  // integer metrics are digit strings and the others finite numbers (checked by the page parser)
  for (const m of row.metrics) line += `\t${m}`;
  return `${line}\n`;
}

/** Rows (ordered by date, as a page is) to one segment per date. */
export function segmentsOf(propertyId: string, rows: readonly ReportRow[]): DaySegment[] {
  const out: DaySegment[] = [];
  let i = 0;
  while (i < rows.length) {
    const date = rows[i]!.date;
    let text = '';
    let n = 0;
    for (; i < rows.length && rows[i]!.date === date; i++, n++) text += rowLine(propertyId, rows[i]!);
    out.push({ date, rows: n, text: Buffer.from(text, 'utf8') });
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
    for (let k = 0; k < dimensions && to >= 0; k++) to = line.indexOf('\t', to + 1);
    keys.push(to < 0 ? line.slice(from + 1) : line.slice(from + 1, to));
  }
  return keys;
}
