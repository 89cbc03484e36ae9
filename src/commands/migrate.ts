/**
 * `ga-collector migrate`: applies pending migrations and says in one line on stdout what it
 * applied, or that the schema was current. The migrations log each step too (`migration_applied`).
 */
import type { Config } from '../config/index.js';
import type { Logger } from '../log.js';
import { classifyDbError, describeDbError } from '../store/dbErrors.js';
import { listMigrations, migrate, migrationState } from '../store/migrations.js';
import { SEARCH_CONSOLE_MIGRATIONS_DIR, migrateSearchConsole } from '../store/sourceTables.js';
import { commandPool } from './common.js';

/** Exit 0 when the schema is current afterwards; 2 for a database setting that cannot work; 1 otherwise. */
export async function runMigrate(config: Config, logger: Logger): Promise<number> {
  const schema = config.database.schema;
  const pool = commandPool(config, logger);
  try {
    const applied = await migrate(pool, schema, logger);
    const state = await migrationState(pool, schema);
    if (applied.length === 0) {
      process.stdout.write(`migrate: schema ${schema} is current (migration ${state.current}); nothing to apply\n`);
    } else {
      const names = listMigrations()
        .filter((m) => applied.includes(m.version))
        .map((m) => m.name);
      process.stdout.write(`migrate: schema ${schema}: applied ${names.join(', ')}; now at migration ${state.current}\n`);
    }
    // the Search Console schema has migrations of its own, applied once a site is configured (as `run` does)
    if (config.searchConsole.sites.length) {
      const scSchema = config.searchConsole.schema;
      const scApplied = await migrateSearchConsole(pool, scSchema, logger);
      const scState = await migrationState(pool, scSchema, SEARCH_CONSOLE_MIGRATIONS_DIR);
      process.stdout.write(
        scApplied.length === 0
          ? `migrate: Search Console schema ${scSchema} is current (migration ${scState.current}); nothing to apply\n`
          : `migrate: Search Console schema ${scSchema}: applied ${listMigrations(SEARCH_CONSOLE_MIGRATIONS_DIR)
              .filter((m) => scApplied.includes(m.version))
              .map((m) => m.name)
              .join(', ')}; now at migration ${scState.current}\n`,
      );
    }
    return 0;
  } catch (err) {
    // a setting (no such database, a refused login, a missing privilege) is exit 2, which systemd does not restart
    const kind = classifyDbError(err);
    const message = describeDbError(err, config.database.url);
    logger.fatal({ event: 'startup_failed', err: message, kind }, 'cannot prepare the database');
    process.stderr.write(`ga-collector: database: ${message}\n`);
    return kind === 'config' ? 2 : 1;
  } finally {
    await pool.end().catch(() => undefined);
  }
}
