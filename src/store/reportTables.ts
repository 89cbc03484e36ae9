/**
 * The per-report relations, built from the configured definitions: `property_id`, `date`, a text
 * column per non-date dimension, a numeric column per metric. A changed definition is migrated:
 * new columns are added; when the set of dimensions or metrics grew, the stored history of that
 * report no longer has every column filled, so its ledger is cleared and the planner fetches the
 * history again (each date is still replaced atomically, so readers never see a mix). Columns of
 * removed fields are kept, never dropped: nothing a user stored is lost.
 */
import type { ReportDefinition } from '../config.js';
import type { Logger } from '../log.js';
import { metricColumnType } from '../ga4/metricTypes.js';
import { columnName, ident, qualified } from './identifiers.js';
import { withAdvisoryLock } from './locks.js';
import { DDL_TIMEOUTS, migrateLockKey } from './migrations.js';
import { connect, type Pool, type PoolClient } from './pool.js';
import { withTransaction } from './transaction.js';

export interface ReportColumns {
  dims: string[];
  metrics: string[];
  metricTypes: Array<'bigint' | 'double precision'>;
}

/** Reports with dimensions besides the date get a `<report>_totals` relation of GA's per-date totals. */
export function hasTotals(def: ReportDefinition): boolean {
  return def.dimensions.length > 0;
}

export function totalsName(def: ReportDefinition): string {
  return reportRelationNames(def.name)[1]!;
}

export function reportColumns(def: ReportDefinition): ReportColumns {
  return {
    dims: def.dimensions.map(columnName),
    metrics: def.metrics.map(columnName),
    metricTypes: def.metrics.map(metricColumnType),
  };
}

/**
 * The names of the relations a report named `name` creates in the schema: its table, its
 * `<name>_totals` table or view, the table's index, and the totals table's primary-key index.
 * PostgreSQL keeps all of them in one namespace per schema (pg_class), cut to 63 bytes.
 */
export function reportRelationNames(name: string): string[] {
  return [name, `${name}_totals`, `${name}_property_date_idx`, `${name}_totals_pkey`].map((n) => n.slice(0, 63));
}

/** Creates or migrates every report's relation. Returns the reports whose history must be refetched. */
export async function ensureReportTables(pool: Pool, schema: string, defs: ReportDefinition[], logger: Logger): Promise<string[]> {
  const session = await connect(pool);
  const refetch: string[] = [];
  try {
    await withAdvisoryLock(session, migrateLockKey(schema), async () => {
      for (const def of defs) {
        if (await withTransaction(session.client, (client) => ensureOne(client, schema, def, logger), DDL_TIMEOUTS)) refetch.push(def.name);
      }
    });
  } finally {
    session.release();
  }
  return refetch;
}

async function ensureOne(client: PoolClient, schema: string, def: ReportDefinition, logger: Logger): Promise<boolean> {
  const table = qualified(schema, def.name);
  const cols = reportColumns(def);
  await client.query(
    `CREATE TABLE IF NOT EXISTS ${table} (
       property_id text NOT NULL,
       date date NOT NULL
       ${cols.dims.map((c) => `, ${ident(c)} text`).join('')}
       ${cols.metrics.map((c, i) => `, ${ident(c)} ${cols.metricTypes[i]}`).join('')}
     )`,
  );
  await client.query(`CREATE INDEX IF NOT EXISTS ${ident(reportRelationNames(def.name)[2]!)} ON ${table} (property_id, date)`);
  for (const c of cols.dims) {
    await client.query(`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS ${ident(c)} text`);
  }
  for (const [i, c] of cols.metrics.entries()) {
    await client.query(`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS ${ident(c)} ${cols.metricTypes[i]}`);
  }
  const totals = qualified(schema, totalsName(def));
  const existing = await client.query<{ relkind: string }>(
    `SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`,
    [schema, totalsName(def)],
  );
  const kind = existing.rows[0]?.relkind;
  if (!hasTotals(def)) {
    // A report by date alone is its own per-date total: the relation is a view of it, so every
    // report has a `<report>_totals` to query. (A totals table left by an earlier definition stays.)
    if (kind === undefined || kind === 'v') {
      await client.query(`DROP VIEW IF EXISTS ${totals}`);
      await client.query(`CREATE VIEW ${totals} AS SELECT property_id, date, ${cols.metrics.map(ident).join(', ')} FROM ${table}`);
    }
  } else {
    if (kind === 'v') await client.query(`DROP VIEW ${totals}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${totals} (
         property_id text NOT NULL,
         date date NOT NULL
         ${cols.metrics.map((c, i) => `, ${ident(c)} ${cols.metricTypes[i]}`).join('')},
         PRIMARY KEY (property_id, date)
       )`,
    );
    for (const [i, c] of cols.metrics.entries()) {
      await client.query(`ALTER TABLE ${totals} ADD COLUMN IF NOT EXISTS ${ident(c)} ${cols.metricTypes[i]}`);
    }
  }
  const prev = await client.query<{ dimensions: string[]; metrics: string[] }>(
    `SELECT dimensions, metrics FROM ${qualified(schema, 'report_definitions')} WHERE report = $1`,
    [def.name],
  );
  await client.query(
    `INSERT INTO ${qualified(schema, 'report_definitions')} (report, dimensions, metrics, updated_at) VALUES ($1, $2, $3, now())
     ON CONFLICT (report) DO UPDATE SET dimensions = EXCLUDED.dimensions, metrics = EXCLUDED.metrics, updated_at = now()`,
    [def.name, def.dimensions, def.metrics],
  );
  const old = prev.rows[0];
  if (!old) return false;
  const grew =
    def.dimensions.some((d) => !old.dimensions.includes(d)) ||
    old.dimensions.some((d) => !def.dimensions.includes(d)) ||
    def.metrics.some((m) => !old.metrics.includes(m));
  if (!grew) return false;
  // The grain or the filled columns changed: every stored date must be fetched again.
  const cleared = await client.query(`DELETE FROM ${qualified(schema, 'fetch_days')} WHERE report = $1`, [def.name]);
  logger.warn(
    { event: 'report_definition_changed', report: def.name, from: old, to: { dimensions: def.dimensions, metrics: def.metrics }, datesToRefetch: cleared.rowCount },
    'report definition changed: its history will be fetched again',
  );
  return true;
}
