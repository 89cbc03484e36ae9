/**
 * The demo writes simulated properties and reports. In the embedded database that harms nothing;
 * pointed at a real database (DATABASE_URL) it must never mix them into collected data. So the
 * demo works only in a schema it created itself: a new schema is created and marked with a
 * comment, and an existing one is used only when it carries that mark. Anything else, even an
 * empty schema (someone made it for something), is refused.
 */
import pg from 'pg';
import { UsageError } from '../errors.js';
import { ident } from '../store/identifiers.js';

/** How a demo schema's comment begins; nothing else marks a schema as the demo's. */
export const DEMO_SCHEMA_MARK = 'ga-collector demo:';

/**
 * Creates and marks `schema`, or accepts it when it is already marked as the demo's and its ledger
 * holds no property but the demo's own (`demoProperties`).
 * @returns 'created' or 'reused'
 * @throws UsageError (exit 2) when the schema exists without the mark
 */
export async function claimDemoSchema(url: string, schema: string, demoProperties: readonly string[]): Promise<'created' | 'reused'> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    for (let attempt = 0; ; attempt++) {
      const { rows } = await client.query<{ comment: string | null }>(
        `SELECT obj_description(oid, 'pg_namespace') AS comment FROM pg_namespace WHERE nspname = $1`,
        [schema],
      );
      if (rows[0]) {
        if (rows[0].comment?.startsWith(DEMO_SCHEMA_MARK)) {
          // marked, but a real collector may have been pointed at it since: then it is not the demo's any more
          const others = await foreignProperties(client, schema, demoProperties);
          if (others.length) {
            throw new UsageError(
              `schema ${schema} is marked as the demo's but holds data of other properties (${others.slice(0, 5).join(', ')}${others.length > 5 ? ', ...' : ''}); the demo will not write into it: set GA_COLLECTOR_DB_SCHEMA to a new name`,
            );
          }
          return 'reused';
        }
        throw new UsageError(
          `schema ${schema} already exists and is not the demo's (it may hold collected data); the demo writes simulated data only into a schema it creates: set GA_COLLECTOR_DB_SCHEMA to a new name`,
        );
      }
      try {
        await client.query('BEGIN');
        await client.query(`CREATE SCHEMA ${ident(schema)}`);
        await client.query(`COMMENT ON SCHEMA ${ident(schema)} IS ${literal(`${DEMO_SCHEMA_MARK} simulated data of \`ga-collector demo\`; remove it with DROP SCHEMA ${ident(schema)} CASCADE`)}`);
        await client.query('COMMIT');
        return 'created';
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        // created meanwhile by another demo: look again (once)
        if ((err as { code?: string }).code !== '42P06' || attempt > 0) throw err;
      }
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Property ids in the schema's ledger other than the demo's; none when it has no ledger yet. */
async function foreignProperties(client: pg.Client, schema: string, demoProperties: readonly string[]): Promise<string[]> {
  const { rows: ledger } = await client.query<{ found: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS found`, [`${ident(schema)}.fetch_days`]);
  if (!ledger[0]?.found) return [];
  const { rows } = await client.query<{ property_id: string }>(
    `SELECT DISTINCT property_id FROM ${ident(schema)}.fetch_days WHERE NOT (property_id = ANY($1::text[])) ORDER BY property_id LIMIT 6`,
    [demoProperties],
  );
  return rows.map((r) => r.property_id);
}

/** A string literal for a statement that takes no parameters (COMMENT ON). */
function literal(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}
