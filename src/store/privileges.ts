/**
 * What the database role may not do that ga-collector needs, found from the catalog without
 * trying (for `ga-collector check`, which writes nothing). What it needs, and why:
 *
 * - the schema: CREATE on the database when the schema does not exist yet (migrations create it);
 *   USAGE and CREATE on it when it does (the per-report tables are created, and checked with
 *   `CREATE TABLE IF NOT EXISTS`, at every start, which PostgreSQL refuses without CREATE even
 *   when the table exists);
 * - its own tables: SELECT, INSERT, UPDATE, DELETE (the ledger is written and, for a changed report,
 *   cleared);
 * - the per-report tables and views: ownership, since new columns are added with ALTER TABLE and
 *   the views of date-only reports are replaced.
 */
import { ownRelationNames } from './reservedNames.js';
import type { Pool, PoolClient } from './pool.js';

export interface PrivilegeProblem {
  /** "role ga may not CREATE in schema ga4" */
  problem: string;
  /** the statement that fixes it, to be run by the owner or a superuser */
  grant: string;
}

const PLAIN = /^[a-z_][a-z0-9_$]*$/;

/** An identifier as it is best written in a statement for a human: quoted only when it must be. */
function sqlName(name: string): string {
  return PLAIN.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

/**
 * The privileges the connected role lacks for ga-collector in `schema`, given the relation names
 * of the configured reports (reportRelationNames); empty when it has them all.
 */
export async function missingPrivileges(db: Pool | PoolClient, schema: string, reportRelations: readonly string[]): Promise<PrivilegeProblem[]> {
  const problems: PrivilegeProblem[] = [];
  const who = await db.query<{ role: string; db: string; db_create: boolean }>(
    `SELECT current_user AS role, current_database() AS db, has_database_privilege(current_database(), 'CREATE') AS db_create`,
  );
  const { role, db: database, db_create: dbCreate } = who.rows[0]!;
  const r = sqlName(role);
  const s = sqlName(schema);
  const ns = await db.query<{ usage: boolean; create: boolean }>(
    `SELECT has_schema_privilege(n.oid, 'USAGE') AS usage, has_schema_privilege(n.oid, 'CREATE') AS create FROM pg_namespace n WHERE n.nspname = $1`,
    [schema],
  );
  const nsRow = ns.rows[0];
  if (!nsRow) {
    if (!dbCreate) {
      problems.push({
        problem: `role ${role} may not create the schema ${schema} in database ${database}`,
        grant: `GRANT CREATE ON DATABASE ${sqlName(database)} TO ${r}; or create it for the role: CREATE SCHEMA ${s} AUTHORIZATION ${r}`,
      });
    }
    return problems;
  }
  const missing = [...(nsRow.usage ? [] : ['USAGE']), ...(nsRow.create ? [] : ['CREATE'])];
  if (missing.length) {
    problems.push({
      problem: `role ${role} may not ${missing.includes('USAGE') ? 'use' : 'CREATE in'} schema ${schema}${missing.length === 2 ? ' (nor CREATE in it)' : ''}`,
      grant: `GRANT ${missing.join(', ')} ON SCHEMA ${s} TO ${r}`,
    });
  }
  if (!nsRow.usage) return problems; // nothing in it can be used either way
  const own = [...ownRelationNames()];
  const rels = await db.query<{ name: string; kind: string; owner: string; owned: boolean; sel: boolean; ins: boolean; upd: boolean; del: boolean }>(
    `SELECT c.relname AS name, c.relkind AS kind, pg_get_userbyid(c.relowner) AS owner, pg_has_role(c.relowner, 'USAGE') AS owned,
            has_table_privilege(c.oid, 'SELECT') AS sel, has_table_privilege(c.oid, 'INSERT') AS ins,
            has_table_privilege(c.oid, 'UPDATE') AS upd, has_table_privilege(c.oid, 'DELETE') AS del
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v') AND c.relname = ANY($2::text[])
      ORDER BY c.relname`,
    [schema, [...own, ...reportRelations]],
  );
  const lacking: string[] = [];
  for (const rel of rels.rows) {
    if (own.includes(rel.name)) {
      const need =
        rel.name === 'schema_migrations' ? { SELECT: rel.sel, INSERT: rel.ins } : { SELECT: rel.sel, INSERT: rel.ins, UPDATE: rel.upd, DELETE: rel.del };
      const no = Object.entries(need)
        .filter(([, ok]) => !ok)
        .map(([p]) => p);
      if (no.length) lacking.push(`${no.join(', ')} on ${schema}.${rel.name}`);
    } else if (!rel.owned) {
      const what = rel.kind === 'v' ? 'VIEW' : 'TABLE';
      problems.push({
        problem: `role ${role} does not own ${schema}.${rel.name} (owner ${rel.owner}), so it cannot add the report's new columns`,
        grant: `ALTER ${what} ${s}.${sqlName(rel.name)} OWNER TO ${r}`,
      });
    }
  }
  if (lacking.length) {
    problems.push({
      problem: `role ${role} lacks ${lacking.join('; ')}`,
      grant: `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${s} TO ${r}`,
    });
  }
  // the collector's own tables with serial ids draw from sequences: INSERT needs USAGE on them
  const seqs = await db.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind = 'S'
        -- CASE: the planner may test rows of other kinds first, and the function refuses those
        AND CASE WHEN c.relkind = 'S' THEN NOT has_sequence_privilege(c.oid, 'USAGE') ELSE false END
      ORDER BY c.relname`,
    [schema],
  );
  if (seqs.rows.length) {
    problems.push({
      problem: `role ${role} lacks USAGE on ${seqs.rows.map((q) => `${schema}.${q.name}`).join(', ')}`,
      grant: `GRANT USAGE ON ALL SEQUENCES IN SCHEMA ${s} TO ${r}`,
    });
  }
  return problems;
}
