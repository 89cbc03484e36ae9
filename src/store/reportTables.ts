/**
 * The per-report relations, built from the configured definitions: `property_id`, `date`, a text
 * column per non-date dimension, a numeric column per metric, and `<report>_totals`.
 *
 * A relation is created or extended by the job that is about to write the first date of a
 * definition (after its names were checked against the property's metadata and Google answered),
 * never at start-up: a definition that fails leaves no column behind. Columns of removed fields
 * are kept, never dropped: nothing a user stored is lost. Which stored dates a changed definition
 * makes due again is the planner's business (each date records its definition in the ledger), per
 * property; nothing here clears the ledger.
 */
import type { ReportDefinition } from '../config/index.js';
import type { Logger } from '../log.js';
import { columnName, ident, qualified } from './identifiers.js';
import { lockUntilTransactionEnds } from './locks.js';
import { DDL_TIMEOUTS, migrateLockKey } from './migrations.js';
import { connect, type Pool, type PoolClient } from './pool.js';
import { tablesOf, type SourceTables, type TablesArg } from './sourceTables.js';
import { withTransaction } from './transaction.js';

export interface ReportColumns {
  dims: string[];
  metrics: string[];
  metricTypes: Array<'bigint' | 'double precision'>;
}

/** GA4 reports with dimensions besides the date get a `<report>_totals` relation of GA's per-date totals (Search Console's have none). */
export function hasTotals(def: ReportDefinition, at: TablesArg = 'ga4'): boolean {
  return tablesOf(at).totals && def.dimensions.length > 0;
}

export function totalsName(def: ReportDefinition): string {
  return `${def.name}_totals`;
}

/** The columns after the key column and `date`; metric types as the source says (GA4's when `at` is a schema or absent). */
export function reportColumns(def: ReportDefinition, at: TablesArg = 'ga4'): ReportColumns {
  const { metricType } = tablesOf(at);
  return {
    dims: def.dimensions.map(columnName),
    metrics: def.metrics.map(columnName),
    metricTypes: def.metrics.map((m) => metricType(m)),
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

/**
 * Creates or extends every given report's relation now (tools and benchmarks that write without a
 * job). The daemon does this per job, just before the first write (ensureReportTable).
 */
export async function ensureReportTables(pool: Pool, schema: TablesArg, defs: ReportDefinition[], logger?: Logger): Promise<void> {
  const session = await connect(pool);
  try {
    for (const def of defs) await ensureReportTable(session.client, schema, def, logger);
  } finally {
    session.release();
  }
}

/**
 * Makes the report's relation and its totals hold every column of `def`, and records `def` in
 * `report_definitions` as the definition the relation is written with. Runs DDL only when
 * something is missing (DDL takes a lock that blocks readers of the table, however briefly), in
 * one transaction under the schema's migration lock, so two daemons never race on it. Returns the
 * columns it added ('*' for a new relation).
 */
export async function ensureReportTable(client: PoolClient, at: TablesArg, def: ReportDefinition, logger?: Logger): Promise<string[]> {
  const tables = tablesOf(at);
  const { schema } = tables;
  const cols = reportColumns(def, tables);
  const wanted = [...cols.dims, ...cols.metrics];
  const totalsKind = hasTotals(def, tables) ? 'r' : 'v';
  const have = await relationColumns(client, schema, def.name);
  const totals = await relationColumns(client, schema, totalsName(def));
  const totalsOk =
    !tables.totals ||
    (totals !== null &&
      (hasTotals(def, tables)
        ? totals.kind === 'r' && cols.metrics.every((c) => totals.columns.includes(c))
        : totals.kind !== 'v' || totals.columns.join(',') === ['property_id', 'date', ...cols.metrics].join(',')));
  const recorded = await client.query<{ dimensions: string[]; metrics: string[] }>(
    `SELECT dimensions, metrics FROM ${qualified(schema, 'report_definitions')} WHERE report = $1`,
    [def.name],
  );
  const same = recorded.rows[0] && sameList(recorded.rows[0].dimensions, def.dimensions) && sameList(recorded.rows[0].metrics, def.metrics);
  if (have !== null && wanted.every((c) => have.columns.includes(c)) && totalsOk && same) return [];

  const added = await withTransaction(
    client,
    async () => {
      // the transaction-scoped form of the schema's migration lock: two daemons never race on DDL
      await lockUntilTransactionEnds(client, migrateLockKey(schema));
      const columns = await ddl(client, tables, def, totalsKind);
      await client.query(
        `INSERT INTO ${qualified(schema, 'report_definitions')} (report, dimensions, metrics, updated_at) VALUES ($1, $2, $3, now())
         ON CONFLICT (report) DO UPDATE SET dimensions = EXCLUDED.dimensions, metrics = EXCLUDED.metrics, updated_at = now()`,
        [def.name, def.dimensions, def.metrics],
      );
      return columns;
    },
    DDL_TIMEOUTS,
  );
  if (added.length) {
    logger?.info({ event: 'report_table_changed', table: def.name, added }, added[0] === '*' ? 'report table created' : 'report table extended');
  }
  return added;
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** A relation's kind ('r' table, 'v' view) and column names in order; null when it does not exist. */
async function relationColumns(client: PoolClient, schema: string, name: string): Promise<{ kind: string; columns: string[] } | null> {
  const { rows } = await client.query<{ kind: string; columns: string[] | null }>(
    `SELECT c.relkind::text AS kind,
            array(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS columns
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`,
    [schema, name],
  );
  const r = rows[0];
  return r ? { kind: r.kind, columns: r.columns ?? [] } : null;
}

/** Only the statements something is missing for (each is idempotent); the caller holds the lock and the transaction. */
async function ddl(client: PoolClient, tables: SourceTables, def: ReportDefinition, totalsKind: 'r' | 'v'): Promise<string[]> {
  const { schema } = tables;
  const table = qualified(schema, def.name);
  const cols = reportColumns(def, tables);
  const before = await relationColumns(client, schema, def.name);
  const added: string[] = [];
  if (before === null) {
    await client.query(
      `CREATE TABLE ${table} (
         ${ident(tables.key)} text NOT NULL,
         date date NOT NULL
         ${cols.dims.map((c) => `, ${ident(c)} text`).join('')}
         ${cols.metrics.map((c, i) => `, ${ident(c)} ${cols.metricTypes[i]}`).join('')}
       )`,
    );
    await client.query(`CREATE INDEX IF NOT EXISTS ${ident(reportRelationNames(def.name)[2]!)} ON ${table} (${ident(tables.key)}, date)`);
    added.push('*');
  } else {
    const types = [...cols.dims.map(() => 'text'), ...cols.metricTypes];
    for (const [i, c] of [...cols.dims, ...cols.metrics].entries()) {
      if (before.columns.includes(c)) continue;
      await client.query(`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS ${ident(c)} ${types[i]}`);
      added.push(c);
    }
  }
  // Search Console has no per-date totals of its own: no totals relation
  if (!tables.totals) return added;
  const totals = qualified(schema, totalsName(def));
  const existing = await relationColumns(client, schema, totalsName(def));
  if (totalsKind === 'v') {
    // A report by date alone is its own per-date total: the relation is a view of it, so every
    // report has a `<report>_totals` to query. (A totals table left by an earlier definition stays.)
    const viewColumns = ['property_id', 'date', ...cols.metrics];
    if (existing === null || (existing.kind === 'v' && existing.columns.join(',') !== viewColumns.join(','))) {
      await client.query(`DROP VIEW IF EXISTS ${totals}`);
      await client.query(`CREATE VIEW ${totals} AS SELECT property_id, date, ${cols.metrics.map(ident).join(', ')} FROM ${table}`);
    }
  } else {
    if (existing?.kind === 'v') await client.query(`DROP VIEW ${totals}`);
    if (existing === null || existing.kind === 'v') {
      await client.query(
        `CREATE TABLE ${totals} (
           property_id text NOT NULL,
           date date NOT NULL
           ${cols.metrics.map((c, i) => `, ${ident(c)} ${cols.metricTypes[i]}`).join('')},
           PRIMARY KEY (property_id, date)
         )`,
      );
    } else {
      for (const [i, c] of cols.metrics.entries()) {
        if (!existing.columns.includes(c)) await client.query(`ALTER TABLE ${totals} ADD COLUMN IF NOT EXISTS ${ident(c)} ${cols.metricTypes[i]}`);
      }
    }
  }
  return added;
}
