/**
 * The connection pool, and the one way to hold a connection: `connect()`. A lost connection is an
 * event to log and act on, never a crash.
 *
 * pg-pool listens for a client's `'error'` only while the client is idle in the pool; it removes
 * that listener while the client is checked out, and a socket that dies then (PostgreSQL
 * restarting, a failover, `pg_terminate_backend`, `idle_session_timeout`) emits `'error'` on a
 * client nobody listens to: Node ends the process. So every client gets a listener of ours when it
 * is checked out (the pool's `acquire` event, whoever checks it out: `connect()`, `pool.query()`,
 * a bare `pool.connect()`), and loses it when it goes back.
 */
import net from 'node:net';
import pg from 'pg';
import type { Logger } from '../log.js';
import { describeDbError } from './dbErrors.js';

/**
 * Session settings for every connection, set once when it is opened. Sent as a `SET` rather than
 * as startup parameters, which PgBouncer refuses unless told to ignore them.
 */
const SESSION_SETTINGS = [
  // The longest statements the collector runs on purpose are a batch's DELETE and COPY (at most
  // 20,000 rows, well under a second) and the status page's summary of fetch_days (a second on
  // millions of rows). Five minutes only cuts a runaway, which would otherwise hold a job slot and
  // its connection for good. Writes and migrations set their own (dayWriter.ts, migrations.ts).
  'SET statement_timeout = 300000',
  // Readers (ACCESS SHARE) never block our writes; only DDL and maintenance do (ALTER, LOCK TABLE,
  // VACUUM FULL, REINDEX). A minute behind one of those means the table is held for maintenance:
  // give up, fail the job as retryable and come back, rather than sit on a connection.
  'SET lock_timeout = 60000',
  // Our transactions never wait on anything but the database (rows are fetched before BEGIN), so
  // one idle in a transaction for a minute belongs to a wedged process and holds row locks.
  'SET idle_in_transaction_session_timeout = 60000',
  // A job's connection is idle by design while the job fetches from Google: it holds the job's
  // advisory lock, which must live exactly as long as the job. A server-wide idle_session_timeout
  // (PostgreSQL 14+) would drop it mid-job, every time a fetch takes longer than the timeout.
  // (The pool closes connections that are really idle after 30 s itself.)
  "SELECT set_config('idle_session_timeout', '0', false) WHERE current_setting('server_version_num')::int >= 140000",
].join('; ');

/** After a cancel request, how long a statement may take to notice before its socket is cut. */
const CANCEL_FALLBACK_MS = 3_000;

export interface PoolOptions {
  /** shown in pg_stat_activity.application_name as `ga-collector/<schema>`, so a DBA (and a test) can tell instances apart */
  schema?: string;
}

/**
 * A pool for `url` with at most `max` connections. Every connection gets the session settings
 * above and `application_name` `ga-collector/<schema>` (a URL's own `application_name` wins); every
 * checked-out client has an `'error'` listener (see the module comment). bigint (int8) stays a
 * string in JavaScript: row counts and sums can exceed 2^53.
 */
export function createPool(url: string, logger: Logger, max = 10, opts: PoolOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 10_000,
    application_name: opts.schema ? `ga-collector/${opts.schema}`.slice(0, 63) : 'ga-collector',
    // a peer that vanished without a FIN/RST (a failover, a cut network) is noticed by TCP keepalive
    keepAlive: true,
    keepAliveInitialDelayMillis: 30_000,
    // awaited by the pool before it hands the new connection out
    onConnect: async (client) => {
      await client.query(SESSION_SETTINGS);
    },
  });
  pool.on('error', (err) => {
    // an idle client lost its connection (server restart, network): the pool replaces it
    logger.warn({ event: 'db_connection_lost', idle: true, err: describeDbError(err, url) }, 'idle database connection lost');
  });
  const listeners = new WeakMap<pg.PoolClient, (err: Error) => void>();
  pool.on('acquire', (client) => {
    let told = false;
    const onError = (err: Error) => {
      if (told) return;
      told = true;
      // whoever holds the client sees the failure on its next (or current) statement; connect()
      // also aborts its session's `lost` signal
      logger.warn({ event: 'db_connection_lost', idle: false, err: describeDbError(err, url) }, 'database connection lost while in use');
    };
    listeners.set(client, onError);
    client.on('error', onError);
  });
  pool.on('release', (_err: Error | undefined, client: pg.PoolClient) => {
    const onError = listeners.get(client);
    if (onError) client.removeListener('error', onError);
    listeners.delete(client);
  });
  return pool;
}

export interface ConnectOptions {
  /**
   * Aborting it cancels the statement in flight (PostgreSQL's cancel request, as psql's Ctrl-C),
   * cuts the socket should the statement not end within a few seconds, and discards the
   * connection on release.
   */
  signal?: AbortSignal;
}

/**
 * A connection held from the pool: `client` for queries; `lost` aborts (reason: the error) when the
 * connection fails, and with it whatever the connection held (its transaction, its advisory
 * locks); `release()` returns it to the pool, or closes it when it was lost, discarded or its work
 * aborted, so the pool never hands out a connection in an unknown state.
 */
export class DbSession {
  private readonly lostController = new AbortController();
  private discarded = false;
  private released = false;
  private fallback: NodeJS.Timeout | undefined;

  constructor(
    readonly client: pg.PoolClient,
    private readonly signal?: AbortSignal,
  ) {
    client.on('error', this.onError);
    if (signal?.aborted) this.onAbort();
    else signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Aborted, with the connection's error as the reason, when the connection is lost. */
  get lost(): AbortSignal {
    return this.lostController.signal;
  }

  /** The error the connection was lost with, if it was. */
  get lostError(): Error | undefined {
    return this.lost.aborted ? (this.lost.reason as Error) : undefined;
  }

  /** Close the connection on release instead of returning it (e.g. it may still hold a lock). */
  discard(): void {
    this.discarded = true;
  }

  /** Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    clearTimeout(this.fallback);
    this.signal?.removeEventListener('abort', this.onAbort);
    this.client.removeListener('error', this.onError);
    const lost = this.lostError;
    this.client.release(lost ?? (this.discarded ? true : undefined));
  }

  private readonly onError = (err: Error) => {
    if (!this.lost.aborted) this.lostController.abort(err);
  };

  private readonly onAbort = () => {
    if (this.released) return;
    this.discarded = true;
    void cancelRequest(this.client);
    // a server out of reach never answers the cancel: cut the socket, which fails the statement
    this.fallback = setTimeout(() => {
      if (!this.released) (this.client as unknown as { connection?: { stream?: net.Socket } }).connection?.stream?.destroy();
    }, CANCEL_FALLBACK_MS);
  };
}

/**
 * A connection from `pool`, with an error listener of its own for as long as it is held (see
 * DbSession). Every caller that holds a connection across statements uses this, never
 * `pool.connect()`.
 *
 * @throws the driver's error when no connection can be had (see dbErrors.ts for its kind)
 */
export async function connect(pool: pg.Pool, opts: ConnectOptions = {}): Promise<DbSession> {
  const client = await pool.connect();
  return new DbSession(client, opts.signal);
}

/**
 * PostgreSQL's CancelRequest for whatever `client`'s backend is running (protocol message 80877102
 * with the backend's pid and secret key, on a connection of its own). Unlike `pg_cancel_backend()`
 * it needs no free connection slot and no login, and it reaches the right backend through a
 * pooler such as PgBouncer. A backend that is idle ignores it. Never throws.
 */
function cancelRequest(client: pg.ClientBase): Promise<void> {
  const c = client as unknown as { processID: number | null; secretKey: number | null; host?: string; port?: number };
  if (!c.processID || c.secretKey === null || c.secretKey === undefined) return Promise.resolve();
  const message = Buffer.alloc(16);
  message.writeInt32BE(16, 0);
  message.writeInt32BE(80877102, 4);
  message.writeInt32BE(c.processID, 8);
  message.writeInt32BE(c.secretKey, 12);
  return new Promise((resolve) => {
    const port = c.port ?? 5432;
    const host = c.host ?? 'localhost';
    const socket = host.startsWith('/') ? net.connect(`${host}/.s.PGSQL.${port}`) : net.connect(port, host);
    socket.setTimeout(5_000, () => socket.destroy());
    socket.once('connect', () => socket.end(message));
    socket.on('error', () => undefined);
    socket.once('close', () => resolve());
  });
}

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
/** What a read or a statement outside a transaction runs on: the pool, or a client taken from it. */
export type Queryable = Pool | PoolClient;
