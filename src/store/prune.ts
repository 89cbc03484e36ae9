/**
 * Removing what a GA4 property, a Search Console site or a report left behind once it is out of
 * the configuration: its rows in the report relations, its ledger (`fetch_days`), its recorded
 * failures, and for a whole report its relations and definitions. Both sources are stored the
 * same way (sourceTables.ts); the source's tables are a parameter: its schema and key column
 * (`property_id` or `site_url`). `prunePlan` only counts; `prune` does it all in one transaction,
 * while holding the jobs' advisory locks (so no daemon that still fetches the pair writes
 * meanwhile) and, when it drops relations, the schema's migration lock (as every schema change).
 */
import { ident, qualified } from './identifiers.js';
import { lockKey, tryLock, unlock } from './locks.js';
import { migrateLockKey } from './migrations.js';
import { connect, type Pool, type Queryable } from './pool.js';
import { reportRelationNames } from './reportTables.js';
import { tablesOf, type SourceTables, type TablesArg } from './sourceTables.js';
import { withTransaction } from './transaction.js';

/** A property or site, a report, or (both) one report of a property or site. */
export interface PruneTarget {
  /** a GA4 property id or a Search Console site URL: the value of the source's key column */
  id?: string;
  report?: string;
}

/** One thing prune does: delete rows of a relation, or drop a relation (with the rows it holds). */
export interface PruneStep {
  /** the schema the relation is in (database.schema or searchConsole.schema) */
  schema: string;
  /** the relation's name in the schema */
  relation: string;
  action: 'delete' | 'drop';
  /** `r` table, `v` view */
  kind: 'table' | 'view';
  /** rows it deletes (or the dropped table held) */
  rows: number;
  /** the rows a delete removes */
  where: { sql: string; params: string[] };
}

export class PruneBusyError extends Error {
  override name = 'PruneBusyError';
}

/** The report names the schema has anything of: relations built (report_definitions) and ledger rows. */
async function storedReports(db: Queryable, schema: string, target: PruneTarget): Promise<string[]> {
  if (target.report) return [target.report];
  const { rows } = await db.query<{ report: string }>(
    `SELECT report FROM ${qualified(schema, 'report_definitions')} UNION SELECT DISTINCT report FROM ${qualified(schema, 'fetch_days')} ORDER BY 1`,
  );
  return rows.map((r) => r.report);
}

async function relationKind(db: Queryable, schema: string, name: string): Promise<'table' | 'view' | null> {
  const { rows } = await db.query<{ kind: string }>(
    `SELECT c.relkind AS kind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`,
    [schema, name],
  );
  const kind = rows[0]?.kind;
  return kind === 'r' || kind === 'p' ? 'table' : kind === 'v' ? 'view' : null;
}

/** `WHERE` of the rows of the target in a relation with the key column (and `report`, for the collector's own tables). */
function where(tables: SourceTables, target: PruneTarget, withReport: boolean): { sql: string; params: string[] } {
  const conds: string[] = [];
  const params: string[] = [];
  if (target.id) conds.push(`${ident(tables.key)} = $${params.push(target.id)}`);
  if (withReport && target.report) conds.push(`report = $${params.push(target.report)}`);
  return { sql: conds.length ? `WHERE ${conds.join(' AND ')}` : '', params };
}

async function count(db: Queryable, schema: string, relation: string, cond: { sql: string; params: string[] }): Promise<number> {
  const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${qualified(schema, relation)} ${cond.sql}`, cond.params);
  return Number(rows[0]?.n ?? 0);
}

/**
 * What prune would do in the source's tables (`at`: a schema stands for GA4's), with row counts,
 * in the order it does it. Empty when nothing is stored. A whole report's relations are dropped;
 * for a property or site, its rows are deleted from every report relation. The collector's own
 * tables lose the target's rows (GA4's `properties` only for a whole property;
 * `report_definitions` and `report_definition_versions` only for a whole report). The schema
 * must be migrated (migrations.ts migrationState).
 */
export async function prunePlan(db: Queryable, at: TablesArg, target: PruneTarget): Promise<PruneStep[]> {
  const tables = tablesOf(at);
  const { schema } = tables;
  const steps: PruneStep[] = [];
  const wholeReport = target.report !== undefined && target.id === undefined;
  for (const report of await storedReports(db, schema, target)) {
    const [table, totals] = reportRelationNames(report) as [string, string];
    // the totals first: without dimensions they are a view of the table (Search Console has none)
    for (const relation of tables.totals ? [totals, table] : [table]) {
      const kind = await relationKind(db, schema, relation);
      if (!kind) continue;
      const all = { sql: '', params: [] };
      if (wholeReport) {
        steps.push({ schema, relation, action: 'drop', kind, rows: kind === 'table' ? await count(db, schema, relation, all) : 0, where: all });
      } else if (kind === 'table') {
        const cond = where(tables, target, false);
        steps.push({ schema, relation, action: 'delete', kind, rows: await count(db, schema, relation, cond), where: cond });
      }
    }
  }
  const own: string[] = ['fetch_days', 'job_failures'];
  if (!target.report && tables.key === 'property_id') own.push('properties');
  if (wholeReport) own.push('report_definitions', 'report_definition_versions');
  for (const relation of own) {
    if ((await relationKind(db, schema, relation)) !== 'table') continue;
    const cond =
      relation === 'properties'
        ? where(tables, target, false)
        : relation.startsWith('report_definition')
          ? where(tables, { report: target.report! }, true)
          : where(tables, target, true);
    steps.push({ schema, relation, action: 'delete', kind: 'table', rows: await count(db, schema, relation, cond), where: cond });
  }
  return steps.some((s) => s.rows > 0 || s.action === 'drop') ? steps : [];
}

/**
 * Does what prunePlan says for each source's tables (GA4's, Search Console's, or both for a
 * report name, which is unique across them), in one transaction, and returns the steps done with
 * the rows each removed. Throws PruneBusyError when a daemon is fetching one of the target's pairs
 * right now (it still has them in its configuration); anything else the database says, as it says it.
 */
export async function prune(pool: Pool, at: TablesArg | TablesArg[], target: PruneTarget): Promise<PruneStep[]> {
  const sources = (Array.isArray(at) ? at : [at]).map(tablesOf);
  const session = await connect(pool);
  const client = session.client;
  const held: string[] = [];
  try {
    const plan: PruneStep[] = [];
    const locks: Array<{ key: string; what: string }> = [];
    for (const tables of sources) {
      const { schema } = tables;
      const steps = await prunePlan(client, tables, target);
      if (steps.length === 0) continue;
      plan.push(...steps);
      const cond = where(tables, target, true);
      const key = ident(tables.key);
      const { rows: pairs } = await client.query<{ id: string; report: string }>(
        `SELECT DISTINCT ${key} AS id, report FROM ${qualified(schema, 'fetch_days')} ${cond.sql}`,
        cond.params,
      );
      const noun = tables.key === 'site_url' ? 'site' : 'property';
      locks.push(...pairs.map((p) => ({ key: lockKey(schema, 'job', p.id, p.report), what: `${noun} ${p.id} report ${p.report}` })));
      if (steps.some((s) => s.action === 'drop'))
        locks.push({ key: migrateLockKey(schema), what: `schema ${schema} (a migration or a report table change is running)` });
    }
    if (plan.length === 0) return [];
    for (const lock of locks) {
      if (!(await tryLock(client, lock.key))) {
        throw new PruneBusyError(
          `${lock.what} is being worked on by a running ga-collector; reload it (SIGHUP) with the configuration that no longer has it, then prune again`,
        );
      }
      held.push(lock.key);
    }
    return await withTransaction(
      client,
      async () => {
        const done: PruneStep[] = [];
        for (const step of plan) {
          if (step.action === 'drop') {
            await client.query(`DROP ${step.kind === 'view' ? 'VIEW' : 'TABLE'} IF EXISTS ${qualified(step.schema, step.relation)}`);
            done.push(step);
            continue;
          }
          const res = await client.query(`DELETE FROM ${qualified(step.schema, step.relation)} ${step.where.sql}`, step.where.params);
          done.push({ ...step, rows: res.rowCount ?? 0 });
        }
        return done;
      },
      // a table another session holds (a long query, a dump) fails the prune rather than queueing every reader behind it
      { lockTimeoutMs: 10_000 },
    );
  } finally {
    for (const key of held) {
      if (!(await unlock(client, key).catch(() => false))) session.discard();
    }
    session.release();
  }
}
