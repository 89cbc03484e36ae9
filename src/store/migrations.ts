/**
 * Numbered SQL files in `migrations/`, applied in order, each in its own transaction, recorded in
 * `schema_migrations`, under an advisory lock so two daemons starting together do not race.
 * A database migrated by a newer ga-collector is refused rather than written with old assumptions.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DatabaseTooNewError, MigrationError } from '../errors.js';
import type { Logger } from '../log.js';
import { ident } from './identifiers.js';
import { connect, type Pool, type PoolClient } from './pool.js';
import { lockKey, withAdvisoryLock } from './locks.js';
import { withTransaction, type TransactionOptions } from './transaction.js';

export const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../migrations');

/**
 * Schema changes (migrations and the report relations) take ACCESS EXCLUSIVE locks, and while one
 * waits for its lock every later reader of that table queues behind it: 10 s is as long as a
 * dashboard should stall. Giving up is safe: nothing is applied, and start-up tries again (a
 * lock timeout is a database that is busy, not broken). A migration that rewrites a large table
 * may legitimately take minutes, so its statements get 30 minutes instead of the pool's five.
 */
export const DDL_TIMEOUTS: TransactionOptions = { lockTimeoutMs: 10_000, statementTimeoutMs: 30 * 60_000 };

/** How often a daemon waiting for another's migrations looks again (ms). */
const MIGRATE_LOCK_POLL_MS = 500;

/**
 * The record of applied migrations, created by the code rather than by a migration (it must exist
 * before the first one runs). Exported so that the names it takes are reserved like those of the
 * migrations (reservedNames.ts).
 */
export const SCHEMA_MIGRATIONS_TABLE = 'schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function listMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return fs
    .readdirSync(dir)
    .filter((f) => /^\d+_[\w-]+\.sql$/.test(f))
    .map((f) => ({ version: Number(f.split('_')[0]), name: f, sql: fs.readFileSync(path.join(dir, f), 'utf8') }))
    .sort((a, b) => a.version - b.version);
}

/** The lock every schema change of `schema` (migrations, report relations) holds. */
export function migrateLockKey(schema: string): string {
  return lockKey(schema, 'migrate');
}

/** Applies pending migrations; returns the versions applied. */
export async function migrate(pool: Pool, schema: string, logger: Logger, dir = MIGRATIONS_DIR): Promise<number[]> {
  const migrations = listMigrations(dir);
  const session = await connect(pool);
  const client = session.client;
  const applied: number[] = [];
  try {
    await withAdvisoryLock(
      session,
      migrateLockKey(schema),
      async () => {
        await ensureSchemaAndLedger(client, schema);
        const { rows } = await client.query<{ version: number }>(`SELECT version FROM ${ident(schema)}.schema_migrations`);
        const done = new Set(rows.map((r) => r.version));
        const newest = Math.max(0, ...migrations.map((m) => m.version));
        const unknown = [...done].filter((v) => v > newest);
        if (unknown.length) {
          throw new DatabaseTooNewError(
            `schema ${schema} has migration ${Math.max(...unknown)} but this ga-collector knows only up to ${newest}: upgrade ga-collector`,
          );
        }
        for (const m of migrations) {
          if (done.has(m.version)) continue;
          try {
            await withTransaction(
              client,
              async () => {
                await client.query(`SET LOCAL search_path TO ${ident(schema)}`);
                await client.query(m.sql);
                await client.query(`INSERT INTO ${ident(schema)}.schema_migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
              },
              DDL_TIMEOUTS,
            );
          } catch (err) {
            // the SQLSTATE stays on the error, so start-up can tell a busy database from a bad migration
            throw new MigrationError(`migration ${m.name} failed: ${(err as Error).message}`, (err as { code?: string }).code, { cause: err });
          }
          applied.push(m.version);
          logger.info({ event: 'migration_applied', version: m.version, name: m.name, schema }, 'migration applied');
        }
      },
      { pollMs: MIGRATE_LOCK_POLL_MS },
    );
  } finally {
    session.release();
  }
  return applied;
}

/**
 * The schema and `schema_migrations`, each created only when missing: `CREATE ... IF NOT EXISTS`
 * checks the privilege to create before it looks, so a role that was handed a ready schema (and
 * may not create one in the database) would be refused for nothing.
 */
async function ensureSchemaAndLedger(client: PoolClient, schema: string): Promise<void> {
  const { rows } = await client.query<{ ns: string | null; t: string | null }>(`SELECT to_regnamespace($1)::text AS ns, to_regclass($2)::text AS t`, [
    ident(schema),
    `${ident(schema)}.schema_migrations`,
  ]);
  if (!rows[0]?.ns) await client.query(`CREATE SCHEMA IF NOT EXISTS ${ident(schema)}`);
  if (!rows[0]?.t) {
    await client.query(`CREATE TABLE IF NOT EXISTS ${ident(schema)}.${SCHEMA_MIGRATIONS_TABLE}`);
  }
}

/** Pending and applied counts, for `check` and /readyz. */
export async function migrationState(pool: Pool, schema: string, dir = MIGRATIONS_DIR): Promise<{ current: number; latest: number }> {
  const latest = Math.max(0, ...listMigrations(dir).map((m) => m.version));
  const exists = await pool.query(`SELECT to_regclass($1) AS t`, [`${ident(schema)}.schema_migrations`]);
  if (!exists.rows[0].t) return { current: 0, latest };
  const { rows } = await pool.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${ident(schema)}.schema_migrations`);
  return { current: rows[0]?.v ?? 0, latest };
}
