/**
 * Numbered SQL files in `migrations/`, applied in order, each in its own transaction, recorded in
 * `schema_migrations`, under an advisory lock so two daemons starting together do not race.
 * A database migrated by a newer ga-collector is refused rather than written with old assumptions.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../log.js';
import { ident } from './identifiers.js';
import type { Pool } from './pool.js';
import { lockKey } from './locks.js';

export const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../migrations');

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

export class DatabaseTooNewError extends Error {
  override name = 'DatabaseTooNewError';
}

/** Applies pending migrations; returns the versions applied. */
export async function migrate(pool: Pool, schema: string, logger: Logger, dir = MIGRATIONS_DIR): Promise<number[]> {
  const migrations = listMigrations(dir);
  const client = await pool.connect();
  const applied: number[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [lockKey(schema, 'migrate')]);
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${ident(schema)}`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${ident(schema)}.schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
      );
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
        await client.query('BEGIN');
        try {
          await client.query(`SET LOCAL search_path TO ${ident(schema)}`);
          await client.query(m.sql);
          await client.query(`INSERT INTO ${ident(schema)}.schema_migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw new Error(`migration ${m.name} failed: ${(err as Error).message}`);
        }
        applied.push(m.version);
        logger.info({ event: 'migration_applied', version: m.version, name: m.name, schema }, 'migration applied');
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [lockKey(schema, 'migrate')]).catch(() => undefined);
    }
  } finally {
    client.release();
  }
  return applied;
}

/** Pending and applied counts, for `check` and /readyz. */
export async function migrationState(pool: Pool, schema: string, dir = MIGRATIONS_DIR): Promise<{ current: number; latest: number }> {
  const latest = Math.max(0, ...listMigrations(dir).map((m) => m.version));
  const exists = await pool.query(`SELECT to_regclass($1) AS t`, [`${ident(schema)}.schema_migrations`]);
  if (!exists.rows[0].t) return { current: 0, latest };
  const { rows } = await pool.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${ident(schema)}.schema_migrations`);
  return { current: rows[0]?.v ?? 0, latest };
}
