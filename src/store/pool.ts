/** The connection pool. A lost connection is an event to log, never a crash. */
import pg from 'pg';
import type { Logger } from '../log.js';

// bigint (int8) stays a string in JavaScript: row counts and sums can exceed 2^53.
export function createPool(url: string, logger: Logger, max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 10_000, application_name: 'ga-collector' });
  pool.on('error', (err) => {
    // an idle client lost its connection (server restart, network): the pool replaces it
    logger.error({ event: 'db_connection_lost', err: err.message }, 'idle database connection lost');
  });
  return pool;
}

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
