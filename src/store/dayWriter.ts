/**
 * Replacing dates whole. For each property, report and date, the old rows are deleted and the new
 * ones inserted in one transaction together with the date's ledger row, so a reader sees either the
 * old set or the new one, never a mix, a duplicate or a partial day; a crash mid-write leaves the
 * old date untouched. Rows go in with COPY (copyRows.ts) straight into the table, inside that
 * transaction: no staging table, never one INSERT per row.
 */
import type { ReportDefinition } from '../config.js';
import type { DayData } from '../ga4/types.js';
import { ident, qualified } from './identifiers.js';
import type { PoolClient } from './pool.js';
import { copyRows } from './copyRows.js';
import { hasTotals, reportColumns, totalsName } from './reportTables.js';
import { withTransaction } from './transaction.js';

/**
 * A write is one batch of whole dates (the runner flushes from 20,000 rows on), deleted by the
 * (property_id, date) index and copied from memory: COPY stores a day of a million rows in
 * seconds. Two minutes cuts only a wedged write; the job then fails as retryable and the dates
 * stay due.
 * Readers never block it; a table held by DDL or maintenance (ALTER, LOCK TABLE, VACUUM FULL)
 * for 30 s means the same: fail, keep the old rows, come back later. Both end with the
 * transaction (SET LOCAL), and a shutdown cancels the write sooner (pool.ts, connect()).
 */
const WRITE_TIMEOUTS = { lockTimeoutMs: 30_000, statementTimeoutMs: 120_000 };

export interface WriteDaysArgs {
  schema: string;
  def: ReportDefinition;
  propertyId: string;
  days: DayData[];
  /** dates strictly before this are outside the refresh window when written */
  settledBefore: string;
  /** the definition the days were fetched with (ledger.ts definitionVersion), recorded with each date */
  definitionId?: number | null;
  /** the newest date Google has finished for the property: a later date is refused, never stored */
  lastDate?: string;
}

/** Replaces the given dates in one transaction. Returns the number of rows written. */
export async function replaceDays(client: PoolClient, args: WriteDaysArgs): Promise<number> {
  const { schema, def, propertyId, days } = args;
  if (days.length === 0) return 0;
  const unfinished = args.lastDate === undefined ? undefined : days.find((d) => d.date > args.lastDate!);
  if (unfinished) throw new Error(`refusing to store ${unfinished.date} for property ${propertyId}: Google has finished dates only through ${args.lastDate}`);
  const table = qualified(schema, def.name);
  const cols = reportColumns(def);
  const columns = ['date', ...cols.dims, ...cols.metrics].map(ident);
  let written = 0;
  await withTransaction(client, async () => {
    await client.query(`DELETE FROM ${table} WHERE property_id = $1 AND date = ANY($2::date[])`, [propertyId, days.map((d) => d.date)]);
    if (days.some((d) => d.rowCount > 0)) written = await copyRows(client, table, columns, days);
    if (hasTotals(def)) {
      const totals = qualified(schema, totalsName(def));
      const withTotals = days.filter((d) => d.totals);
      const replaced = days.filter((d) => d.totals !== undefined).map((d) => d.date);
      if (replaced.length) await client.query(`DELETE FROM ${totals} WHERE property_id = $1 AND date = ANY($2::date[])`, [propertyId, replaced]);
      if (withTotals.length) {
        const metricCols = cols.metrics.map(ident).join(', ');
        const args = cols.metricTypes.map((t, i) => `$${i + 3}::${t}[]`).join(', ');
        await client.query(`INSERT INTO ${totals} (property_id, date, ${metricCols}) SELECT $1, * FROM unnest($2::date[], ${args})`, [
          propertyId,
          withTotals.map((d) => d.date),
          ...cols.metrics.map((_, k) => withTotals.map((d) => d.totals![k])),
        ]);
      }
    }
    await client.query(
      `INSERT INTO ${qualified(schema, 'fetch_days')}
         (property_id, report, date, fetched_at, row_count, settled, data_loss_from_other_row, subject_to_thresholding, sampled, sampling, time_zone, currency_code, definition_id)
       SELECT $1, $2, d, now(), n, s, dl, th, sa, sm, tz, cc, $12::integer
         FROM unnest($3::date[], $4::int[], $5::bool[], $6::bool[], $7::bool[], $8::bool[], $9::jsonb[], $10::text[], $11::text[])
           AS u(d, n, s, dl, th, sa, sm, tz, cc)
       ON CONFLICT (property_id, report, date) DO UPDATE SET
         fetched_at = EXCLUDED.fetched_at, row_count = EXCLUDED.row_count, settled = EXCLUDED.settled,
         data_loss_from_other_row = EXCLUDED.data_loss_from_other_row, subject_to_thresholding = EXCLUDED.subject_to_thresholding,
         sampled = EXCLUDED.sampled, sampling = EXCLUDED.sampling, time_zone = EXCLUDED.time_zone, currency_code = EXCLUDED.currency_code,
         definition_id = EXCLUDED.definition_id`,
      [
        propertyId,
        def.name,
        days.map((d) => d.date),
        days.map((d) => d.rowCount),
        days.map((d) => d.date < args.settledBefore),
        days.map((d) => d.meta.dataLossFromOtherRow),
        days.map((d) => d.meta.subjectToThresholding),
        days.map((d) => d.meta.sampling.length > 0),
        days.map((d) => (d.meta.sampling.length > 0 ? JSON.stringify(d.meta.sampling) : null)),
        days.map((d) => d.meta.timeZone),
        days.map((d) => d.meta.currencyCode),
        args.definitionId ?? null,
      ],
    );
  }, WRITE_TIMEOUTS);
  return written;
}
