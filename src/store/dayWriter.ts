/**
 * Replacing dates whole. For each property, report and date, the old rows are deleted and the new
 * ones inserted in one transaction together with the date's ledger row, so a reader sees either the
 * old set or the new one, never a mix, a duplicate or a partial day; a crash mid-write leaves the
 * old date untouched. Rows go in with COPY (copyRows.ts) straight into the table, inside that
 * transaction: no staging table, never one INSERT per row.
 */
import type { ReportDefinition } from '../config/index.js';
import type { DayData, Unstorable } from '../ga4/types.js';
import { ident, qualified } from './identifiers.js';
import type { PoolClient } from './pool.js';
import { copyRows } from './copyRows.js';
import { hasTotals, reportColumns, totalsName } from './reportTables.js';
import { tablesOf, type TablesArg } from './sourceTables.js';
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
  /** GA4's schema, or a source's tables (schema, key column, metric types) */
  schema: TablesArg;
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

/** Replaces the given dates (each date once) in one transaction. Returns the number of rows written. */
export async function replaceDays(client: PoolClient, args: WriteDaysArgs): Promise<number> {
  const { def, propertyId, days } = args;
  if (days.length === 0) return 0;
  const tables = tablesOf(args.schema);
  const { schema } = tables;
  const key = ident(tables.key);
  const unfinished = args.lastDate === undefined ? undefined : days.find((d) => d.date > args.lastDate!);
  if (unfinished) throw new Error(`refusing to store ${unfinished.date} for property ${propertyId}: Google has finished dates only through ${args.lastDate}`);
  // the same date twice would be written twice in one transaction (the ledger's upsert refuses
  // that with "cannot affect row a second time", a totals table with a duplicate key)
  const seen = new Set<string>();
  for (const d of days) {
    if (seen.has(d.date)) throw new Error(`replaceDays: ${d.date} appears twice in one batch`);
    seen.add(d.date);
  }
  const table = qualified(schema, def.name);
  const cols = reportColumns(def, tables);
  const columns = [tables.key, 'date', ...cols.dims, ...cols.metrics].map(ident);
  let written = 0;
  await withTransaction(
    client,
    async () => {
      await client.query(`DELETE FROM ${table} WHERE ${key} = $1 AND date = ANY($2::date[])`, [propertyId, days.map((d) => d.date)]);
      if (days.some((d) => d.rowCount > 0)) written = await copyRows(client, table, columns, days);
      if (hasTotals(def, tables)) {
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
         (${key}, report, date, fetched_at, row_count, settled, data_loss_from_other_row, subject_to_thresholding, sampled, sampling, time_zone, currency_code, definition_id)
       SELECT $1, $2, d, now(), n, s, dl, th, sa, sm, tz, cc, $12::integer
         FROM unnest($3::date[], $4::int[], $5::bool[], $6::bool[], $7::bool[], $8::bool[], $9::jsonb[], $10::text[], $11::text[])
           AS u(d, n, s, dl, th, sa, sm, tz, cc)
       ON CONFLICT (${key}, report, date) DO UPDATE SET
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
    },
    WRITE_TIMEOUTS,
  );
  return written;
}

/** A date not stored because a value cannot be held by its column, and why; its stored rows and ledger row are left as they were. */
export interface RefusedDay {
  date: string;
  /** the report or totals column of the refused value, when known (PostgreSQL does not always name it) */
  column: string | null;
  /**
   * why: PostgreSQL's message (`value "99999999999999999999" is out of range for type bigint`),
   * or the page check's (`Google sent "1.5", which a bigint column cannot hold`)
   */
  reason: string;
}

/**
 * replaceDays, except that a value its column cannot hold fails only the date that holds it:
 * - one the page checks found (DayData.unstorable: `"1.5"` for an integer metric, `"abc"`): that
 *   date is not written at all;
 * - one PostgreSQL refuses (SQLSTATE class 22, a data exception: an integer beyond bigint, a
 *   number beyond a double, bytes it cannot take as UTF-8): when the batch's transaction fails so,
 *   each date is written again in a transaction of its own.
 * The refused dates are returned, untouched (old rows and ledger row kept, so they are due again).
 * Any other failure is thrown as it is.
 */
export async function replaceDaysOrRefuse(client: PoolClient, args: WriteDaysArgs): Promise<{ written: number; refused: RefusedDay[] }> {
  const checked = args.days.filter((day) => day.unstorable).map((day) => unstorableRefusal(args.def, day.date, day.unstorable!));
  if (checked.length > 0) {
    const rest = await replaceDaysOrRefuse(client, { ...args, days: args.days.filter((day) => !day.unstorable) });
    return { written: rest.written, refused: [...checked, ...rest.refused] };
  }
  try {
    return { written: await replaceDays(client, args), refused: [] };
  } catch (err) {
    if (!isRefusedValue(err)) throw err;
    if (args.days.length === 1) return { written: 0, refused: [refusal(args.def, args.days[0]!.date, err)] };
  }
  let written = 0;
  const refused: RefusedDay[] = [];
  for (const day of args.days) {
    try {
      written += await replaceDays(client, { ...args, days: [day] });
    } catch (err) {
      if (!isRefusedValue(err)) throw err;
      refused.push(refusal(args.def, day.date, err));
    }
  }
  return { written, refused };
}

/** One line naming each refused date, its column and PostgreSQL's reason. */
export function describeRefused(refused: readonly RefusedDay[]): string {
  return refused.map((r) => `${r.date}${r.column ? ` column ${r.column}` : ''}: ${r.reason}`).join('; ');
}

/** The longest value a refusal quotes whole: Google's value may be long, a log line should not be. */
const QUOTED_VALUE_MAX = 64;

function unstorableRefusal(def: ReportDefinition, date: string, unstorable: Unstorable): RefusedDay {
  const cols = reportColumns(def);
  const metric = cols.metrics[unstorable.metric] ?? def.metrics[unstorable.metric] ?? `metric ${unstorable.metric + 1}`;
  const value = unstorable.value.length > QUOTED_VALUE_MAX ? `${unstorable.value.slice(0, QUOTED_VALUE_MAX)}…` : unstorable.value;
  const type = cols.metricTypes[unstorable.metric] ?? 'numeric';
  return {
    date,
    column: unstorable.totals ? `${totalsName(def)}.${metric}` : metric,
    reason: `Google sent ${JSON.stringify(value)}${unstorable.totals ? ' in its totals' : ''}, which a ${type} column cannot hold`,
  };
}

function isRefusedValue(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('22');
}

function refusal(def: ReportDefinition, date: string, err: unknown): RefusedDay {
  const e = err as { message?: string; where?: string };
  const cols = reportColumns(def);
  // COPY names the column ("COPY daily, line 3, column sessions: ..."); the totals INSERT names
  // its parameter ($3 is the first metric's array)
  let column = /, column ([^:]+):/.exec(e.where ?? '')?.[1] ?? null;
  const param = /parameter \$(\d+)/.exec(e.where ?? '');
  if (!column && param) {
    const metric = cols.metrics[Number(param[1]) - 3];
    if (metric) column = `${totalsName(def)}.${metric}`;
  }
  return { date, column, reason: (e.message ?? String(err)).split('\n')[0]! };
}

/**
 * Deletes the rows, totals and ledger rows of `dates` in one transaction. For dates that may be
 * stored incomplete (read from a listing later found inconsistent, and not read again whole):
 * they become gaps that the next run fetches, rather than half days that look complete.
 */
export async function forgetDays(
  client: PoolClient,
  args: { schema: TablesArg; def: ReportDefinition; propertyId: string; dates: readonly string[] },
): Promise<void> {
  const { def, propertyId, dates } = args;
  if (dates.length === 0) return;
  const tables = tablesOf(args.schema);
  const { schema } = tables;
  const key = ident(tables.key);
  await withTransaction(
    client,
    async () => {
      await client.query(`DELETE FROM ${qualified(schema, def.name)} WHERE ${key} = $1 AND date = ANY($2::date[])`, [propertyId, dates]);
      if (hasTotals(def, tables))
        await client.query(`DELETE FROM ${qualified(schema, totalsName(def))} WHERE ${key} = $1 AND date = ANY($2::date[])`, [propertyId, dates]);
      await client.query(`DELETE FROM ${qualified(schema, 'fetch_days')} WHERE ${key} = $1 AND report = $2 AND date = ANY($3::date[])`, [
        propertyId,
        def.name,
        dates,
      ]);
    },
    WRITE_TIMEOUTS,
  );
}
