/**
 * Report rows into a table through `COPY ... FROM STDIN`, PostgreSQL's bulk load path.
 *
 * Why COPY and not INSERT: a row costs the server a parse of one text line instead of a statement
 * (or, with `unnest`, a parse of every value as an array element plus the array), and the client
 * writes one line per row instead of escaping arrays. Measured on 1,000,000 rows of a 4-dimension,
 * 5-metric report (`npm run bench`), COPY is about twice as fast as the `unnest` statement it
 * replaced. The rows are streamed in chunks with backpressure, so a batch never exists twice in
 * memory (as rows and as one big text).
 *
 * The caller owns the transaction: COPY into the live table inside the transaction that deleted
 * the dates is as atomic as any INSERT, so no staging table (and no second copy of every row) is
 * needed.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import type { DayData } from '../ga4/types.js';
import type { PoolClient } from './pool.js';

/** Text handed to the socket at a time: large enough to amortise a write, small enough to stay cheap. */
const CHUNK_CHARS = 256 * 1024;

const SPECIAL = /[\\\t\n\r]/;

/** A value in COPY's text format: backslash, tab, newline and carriage return escaped. */
export function copyText(value: string): string {
  if (!SPECIAL.test(value)) return value;
  return value.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}

/** The COPY text lines of the rows, `propertyId, date, dims..., metrics...`, in chunks. */
export function* copyLines(propertyId: string, days: readonly DayData[]): Generator<string> {
  const prefix = `${copyText(propertyId)}\t`;
  let buf = '';
  for (const day of days) {
    for (const row of day.rows) {
      let line = prefix + row.date;
      for (const d of row.dims) line += `\t${copyText(d)}`;
      // integer metrics are digit strings and the others finite numbers (checked by the page parser)
      for (const m of row.metrics) line += `\t${m}`;
      buf += `${line}\n`;
      if (buf.length >= CHUNK_CHARS) {
        yield buf;
        buf = '';
      }
    }
  }
  if (buf.length > 0) yield buf;
}

/**
 * Streams the rows of `days` into `table` (already quoted) with `COPY`; `columns` are the quoted
 * column names after `property_id`. Returns the number of rows the server stored.
 */
export async function copyRows(client: PoolClient, table: string, columns: readonly string[], propertyId: string, days: readonly DayData[]): Promise<number> {
  const stream = client.query(copyFrom(`COPY ${table} (property_id, ${columns.join(', ')}) FROM STDIN`));
  await pipeline(Readable.from(copyLines(propertyId, days), { objectMode: false }), stream);
  return stream.rowCount;
}
