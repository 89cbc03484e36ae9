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

/** A string literal for a statement that takes no parameters. */
function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}
