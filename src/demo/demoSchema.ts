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
import { createSchemaWithComment, otherLedgerProperties, schemaComment } from '../store/schemas.js';

/** How a demo schema's comment begins; nothing else marks a schema as the demo's. */
const DEMO_SCHEMA_MARK = 'ga-collector demo:';

/**
 * Creates and marks `schema`, or accepts it when it is already marked as the demo's and its ledger
 * holds no property but the demo's own (`demoProperties`).
 * @returns 'created' or 'reused'
 * @throws UsageError (exit 2) when the schema exists without the mark
 */
export async function claimDemoSchema(
  url: string,
  schema: string,
  demoProperties: readonly string[],
  key: 'property_id' | 'site_url' = 'property_id',
): Promise<'created' | 'reused'> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    for (let attempt = 0; ; attempt++) {
      const existing = await schemaComment(client, schema);
      if (existing) {
        if (existing.comment?.startsWith(DEMO_SCHEMA_MARK)) {
          // marked, but a real collector may have been pointed at it since: then it is not the demo's any more
          const others = await otherLedgerProperties(client, schema, demoProperties, key);
          if (others.length) {
            throw new UsageError(
              `schema ${schema} is marked as the demo's but holds data of other ${key === 'site_url' ? 'sites' : 'properties'} (${others.slice(0, 5).join(', ')}${others.length > 5 ? ', ...' : ''}); the demo will not write into it: set GA_COLLECTOR_DB_SCHEMA to a new name`,
            );
          }
          return 'reused';
        }
        throw new UsageError(
          `schema ${schema} already exists and is not the demo's (it may hold collected data); the demo writes simulated data only into a schema it creates: set GA_COLLECTOR_DB_SCHEMA to a new name`,
        );
      }
      try {
        await createSchemaWithComment(
          client,
          schema,
          `${DEMO_SCHEMA_MARK} simulated data of \`ga-collector demo\`${key === 'site_url' ? ' (Search Console)' : ''}; remove it with DROP SCHEMA ${ident(schema)} CASCADE`,
        );
        return 'created';
      } catch (err) {
        // created meanwhile by another demo: look again (once)
        if ((err as { code?: string }).code !== '42P06' || attempt > 0) throw err;
      }
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}
