/**
 * A PostgreSQL of a test's own, on its own port, that the test can stop and start again (the
 * embedded server of src/demo/embeddedPostgres.ts on a kept data directory). Never the shared
 * server: stopping that would break every other test running beside this one.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { EmbeddedPostgres } from '../src/demo/embeddedPostgres.js';

export class RestartablePostgres {
  private server: EmbeddedPostgres | null;

  private constructor(
    private readonly base: string,
    server: EmbeddedPostgres,
  ) {
    this.server = server;
  }

  /** initdb and start, on a free port. */
  static async create(): Promise<RestartablePostgres> {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'gac-own-pg-'));
    // the server may run as another user (as root: postgres), who must reach the data directory
    fs.chmodSync(base, 0o755);
    const server = await EmbeddedPostgres.start({ dataDir: path.join(base, 'data') });
    return new RestartablePostgres(base, server);
  }

  /** the data directory (pg_hba.conf, postgresql.conf) */
  get dataDir(): string {
    return path.join(this.base, 'data');
  }

  get port(): number {
    return this.server?.port ?? this.lastPort;
  }

  private lastPort = 0;

  /** postgres://postgres@127.0.0.1:<port>/postgres (trust authentication) */
  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  get running(): boolean {
    return this.server !== null;
  }

  /** Fast shutdown: open transactions roll back, every connection is terminated (57P01). */
  async stop(): Promise<void> {
    if (!this.server) return;
    this.lastPort = this.server.port;
    await this.server.stop();
    this.server = null;
  }

  /** Starts again on the same port and data. */
  async start(): Promise<void> {
    if (this.server) return;
    this.server = await EmbeddedPostgres.start({ dataDir: path.join(this.base, 'data'), port: this.lastPort });
  }

  /** One statement on a connection of its own (null when the server does not answer). */
  async query<T extends pg.QueryResultRow>(sql: string, params: unknown[] = [], database = 'postgres'): Promise<T[]> {
    const c = new pg.Client({ connectionString: this.url.replace(/\/postgres$/, `/${database}`), connectionTimeoutMillis: 3_000 });
    c.on('error', () => undefined);
    try {
      await c.connect();
      return (await c.query<T>(sql, params)).rows;
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  /** Stops the server and removes its data. */
  async destroy(): Promise<void> {
    await this.stop();
    fs.rmSync(this.base, { recursive: true, force: true });
  }
}
