/**
 * Schemas as a whole, by their comment: the demo keeps its simulated data in a schema it created
 * and marked (demo/demoSchema.ts says why). Only its SQL lives here.
 */
import type pg from 'pg';
import { ident } from './identifiers.js';
import { withTransaction } from './transaction.js';

/**
 * Whether `schema` exists, and its comment (`COMMENT ON SCHEMA`), null when it has none.
 * @returns null when there is no such schema
 */
export async function schemaComment(client: pg.ClientBase, schema: string): Promise<{ comment: string | null } | null> {
  const { rows } = await client.query<{ comment: string | null }>(
    `SELECT obj_description(oid, 'pg_namespace') AS comment FROM pg_namespace WHERE nspname = $1`,
    [schema],
  );
  return rows[0] ?? null;
}

/**
 * Creates `schema` with `comment`, both or neither (one transaction), so no schema is ever seen
 * without its mark.
 * @throws the driver's error; SQLSTATE 42P06 when the schema exists already (created meanwhile)
 */
export async function createSchemaWithComment(client: pg.ClientBase, schema: string, comment: string): Promise<void> {
  await withTransaction(client, async () => {
    await client.query(`CREATE SCHEMA ${ident(schema)}`);
    // COMMENT ON takes no parameters: the comment goes in as a quoted literal
    await client.query(`COMMENT ON SCHEMA ${ident(schema)} IS ${literal(comment)}`);
  });
}

/**
 * Property ids (or, with `key` site_url, Search Console site URLs) in `schema`'s ledger
 * (`fetch_days`) other than `known`, at most 6; none when the schema has no ledger yet.
 */
export async function otherLedgerProperties(
  client: pg.ClientBase,
  schema: string,
  known: readonly string[],
  key: 'property_id' | 'site_url' = 'property_id',
): Promise<string[]> {
  const { rows: ledger } = await client.query<{ found: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS found`, [`${ident(schema)}.fetch_days`]);
  if (!ledger[0]?.found) return [];
  const { rows } = await client.query<{ id: string }>(
    `SELECT DISTINCT ${ident(key)} AS id FROM ${ident(schema)}.fetch_days WHERE NOT (${ident(key)} = ANY($1::text[])) ORDER BY 1 LIMIT 6`,
    [known],
  );
  return rows.map((r) => r.id);
}

/** A string literal for a statement that takes no parameters. */
function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/** Whether every one of `names` exists in `schema` (as a table or view). */
export async function tablesExist(pool: pg.ClientBase | pg.Pool, schema: string, names: string[]): Promise<boolean> {
  const { rows } = await pool.query<{ n: number }>(
    `SELECT count(to_regclass(quote_ident($1) || '.' || quote_ident(t)))::int AS n FROM unnest($2::text[]) AS t`,
    [schema, names],
  );
  return rows[0]?.n === names.length;
}
