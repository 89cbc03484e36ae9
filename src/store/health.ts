/** Whether the database answers at all: the probe behind /readyz and the embedded server's start. */
import type pg from 'pg';

/** Anything that runs a statement: the pool, a held connection, a bare client. */
type Queryable = Pick<pg.ClientBase, 'query'> | pg.Pool;

/**
 * One trivial statement. Through the pool it takes a connection the pool has checked (or a new
 * one), so a database that came back answers again at the next call.
 *
 * @throws the driver's error when the database does not answer (dbErrors.ts sorts it)
 */
export async function ping(db: Queryable): Promise<void> {
  await db.query('SELECT 1');
}
