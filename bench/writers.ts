/**
 * The write paths the benchmark compares the collector with: the `unnest` statement the day
 * writer used before COPY (same transaction shape: DELETE the dates, INSERT in chunks of 20,000
 * rows, commit), and the naive loop of one INSERT per row, committed one by one, that a first
 * script would be.
 */
import type pg from 'pg';
import type { ReportDefinition } from '../src/config/index.js';
import { ident, qualified } from '../src/store/identifiers.js';
import { reportColumns } from '../src/store/reportTables.js';

export interface PlainRow {
  date: string;
  dims: string[];
  values: number[];
}

const CHUNK_ROWS = 20_000;

/** The former day writer: rows as arrays through `unnest`, per batch of dates in one transaction. */
export async function unnestReplace(client: pg.PoolClient, schema: string, def: ReportDefinition, propertyId: string, rows: PlainRow[]): Promise<number> {
  const table = qualified(schema, def.name);
  const cols = reportColumns(def);
  const columnList = ['date', ...cols.dims, ...cols.metrics].map(ident).join(', ');
  const types = ['date', ...cols.dims.map(() => 'text'), ...cols.metricTypes];
  const unnestArgs = types.map((t, i) => `$${i + 2}::${t}[]`).join(', ');
  const insertSql = `INSERT INTO ${table} (property_id, ${columnList}) SELECT $1, * FROM unnest(${unnestArgs})`;
  const dates = [...new Set(rows.map((r) => r.date))];
  await client.query('BEGIN');
  try {
    await client.query(`DELETE FROM ${table} WHERE property_id = $1 AND date = ANY($2::date[])`, [propertyId, dates]);
    for (let i = 0; i < rows.length; i += CHUNK_ROWS) {
      const chunk = rows.slice(i, i + CHUNK_ROWS);
      const columns: unknown[][] = types.map(() => new Array(chunk.length));
      chunk.forEach((r, j) => {
        columns[0]![j] = r.date;
        r.dims.forEach((v, k) => (columns[1 + k]![j] = v));
        r.values.forEach((v, k) => (columns[1 + cols.dims.length + k]![j] = v));
      });
      await client.query(insertSql, [propertyId, ...columns]);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
  return rows.length;
}

/** One INSERT per row, each its own transaction, until `limit` rows or `budgetMs` are used up. Returns rows and time. */
export async function naiveInserts(
  client: pg.PoolClient,
  schema: string,
  def: ReportDefinition,
  propertyId: string,
  rows: Iterable<PlainRow>,
  limit: number,
  budgetMs: number,
): Promise<{ rows: number; ms: number }> {
  const cols = reportColumns(def);
  const names = ['property_id', 'date', ...cols.dims, ...cols.metrics].map(ident);
  const sql = `INSERT INTO ${qualified(schema, def.name)} (${names.join(', ')}) VALUES (${names.map((_, i) => `$${i + 1}`).join(', ')})`;
  const started = performance.now();
  let n = 0;
  for (const r of rows) {
    await client.query(sql, [propertyId, r.date, ...r.dims, ...r.values]);
    n++;
    if (n >= limit || performance.now() - started > budgetMs) break;
  }
  return { rows: n, ms: performance.now() - started };
}
