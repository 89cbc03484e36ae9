/**
 * Test support: an isolated schema per test in a real PostgreSQL, temporary files, a daemon
 * process runner, and waitFor() instead of fixed sleeps.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const MAIN = path.join(ROOT, 'dist', 'main.js');

/** Where a local server is looked for when no URL is given (overridable, e.g. to prove the fallback). */
export const DEFAULT_DATABASE_URL = process.env['TEST_DEFAULT_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

let baseUrl: Promise<string> | undefined;

/**
 * The server tests use: TEST_DATABASE_URL, else DATABASE_URL, else the local server at
 * DEFAULT_DATABASE_URL when it answers, else an embedded PostgreSQL (the one `ga-collector demo`
 * runs) started once for this test process and stopped when it exits. So `npm test` passes on a
 * machine without PostgreSQL. TEST_DATABASE_URL=embedded asks for the embedded server outright.
 */
export function baseDatabaseUrl(): Promise<string> {
  baseUrl ??= (async () => {
    const given = process.env['TEST_DATABASE_URL'] ?? process.env['DATABASE_URL'];
    if (given && given !== 'embedded') return given;
    if (given !== 'embedded') {
      const problem = await unreachable(DEFAULT_DATABASE_URL);
      if (!problem) return DEFAULT_DATABASE_URL;
      process.stderr.write(`tests: no PostgreSQL at ${DEFAULT_DATABASE_URL} (${problem}) and no TEST_DATABASE_URL; starting an embedded one\n`);
    }
    const { EmbeddedPostgres } = await import('../src/demo/embeddedPostgres.js');
    const server = await EmbeddedPostgres.start();
    // the test process exits when its tests are done; the server must not keep it alive
    server.unref();
    process.on('exit', () => server.stopSync());
    return server.url;
  })();
  return baseUrl;
}

async function unreachable(url: string): Promise<string | null> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.query('SELECT 1');
    return null;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  } finally {
    await c.end().catch(() => undefined);
  }
}

export interface TestDb {
  url: string;
  schema: string;
  pool: pg.Pool;
  query<T extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<T[]>;
  drop(): Promise<void>;
}

/** A fresh schema name; the schema is dropped by drop(). */
export async function testDb(label: string): Promise<TestDb> {
  const schema = `t_${label
    .replace(/[^a-z0-9]/gi, '_')
    .toLowerCase()
    .slice(0, 30)}_${crypto.randomBytes(4).toString('hex')}`;
  const url = await baseDatabaseUrl();
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on('error', () => undefined);
  return {
    url,
    schema,
    pool,
    async query(sql, params) {
      return (await pool.query(sql, params as unknown[])).rows;
    },
    async drop() {
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
      await pool.end();
    },
  };
}

export function tmpDir(label: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `gac-${label}-`));
}

export function writeJson(file: string, value: unknown): string {
  fs.writeFileSync(file, JSON.stringify(value, null, 2), { mode: 0o600 });
  return file;
}

export async function waitFor<T>(fn: () => T | Promise<T>, opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`waitFor timed out: ${opts.what ?? 'condition'}${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
}

/**
 * Waits until a schedule that fires every second (`* * * * * *`) has fired after now, by the
 * clock the fetch times are stamped with: a run started then finds the refresh window due again.
 */
export async function untilScheduleFired(): Promise<void> {
  const nextFiring = Math.floor(Date.now() / 1000) * 1000 + 1000;
  await waitFor(() => Date.now() > nextFiring, { intervalMs: 20, what: 'the every-second schedule fired' });
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI to completion. */
export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      cwd: opts.cwd ?? ROOT,
      env: { PATH: process.env['PATH'], HOME: process.env['HOME'], TZ: process.env['TZ'] ?? 'UTC', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Starts the built CLI in the background (a daemon); returns the handle and its captured output. */
export function startCli(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
  const child = spawn(process.execPath, [MAIN, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { PATH: process.env['PATH'], HOME: process.env['HOME'], TZ: process.env['TZ'] ?? 'UTC', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d) => (out.stdout += d));
  child.stderr.on('data', (d) => (out.stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return { child, out, exited };
}

/** Parsed JSON log lines of a daemon's stdout. */
export function logLines(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

import { FakeGoogle, type FakeGoogleOptions } from '@ga-collector/fake-google';

export const SA_EMAIL = 'collector@test-project.iam.gserviceaccount.com';

export interface FakeSetup {
  fake: FakeGoogle;
  dir: string;
  keyFile: string;
  stop(): Promise<void>;
}

/** A running fake Google with one service account (key written to a file) and the given properties. */
export async function startFake(properties: Array<{ id: string; timeZone: string; grant?: boolean }>, opts: FakeGoogleOptions = {}): Promise<FakeSetup> {
  const fake = new FakeGoogle(opts);
  await fake.start();
  const dir = tmpDir('fake');
  const key = fake.createAccount(SA_EMAIL);
  const keyFile = writeJson(path.join(dir, 'key.json'), key);
  for (const p of properties) {
    fake.addProperty({ id: p.id, timeZone: p.timeZone });
    if (p.grant !== false) fake.grant(SA_EMAIL, p.id);
  }
  return { fake, dir, keyFile, stop: () => fake.stop() };
}

/** Writes a config file for a test: database schema, the fake's URLs, the key. */
export function writeConfig(dir: string, db: TestDb, setup: FakeSetup, extra: Record<string, unknown>): string {
  const file = path.join(dir, `config-${crypto.randomBytes(3).toString('hex')}.json`);
  return writeJson(file, {
    database: { url: db.url, schema: db.schema },
    google: { credentials: setup.keyFile, tokenUrl: setup.fake.tokenUrl, apiRootUrl: setup.fake.apiRootUrl },
    log: { level: 'info' },
    ...extra,
  });
}

import { loadConfig } from '../src/config/index.js';
import { Daemon, type DaemonOptions, type StartStage } from '../src/daemon.js';
import { createLogger } from '../src/log.js';

/**
 * An in-process daemon for the given config keys, started as far as `upTo` (daemon.ts): by default
 * `services` (migrated, tokens obtained, no schedule), for tests that hand the scheduler their jobs.
 */
export async function makeDaemon(
  db: TestDb,
  setup: FakeSetup,
  extra: Record<string, unknown>,
  opts: Partial<Omit<DaemonOptions, 'config' | 'logger'>> & { upTo?: StartStage } = {},
): Promise<Daemon> {
  const file = writeConfig(setup.dir, db, setup, extra);
  const config = loadConfig({ file, env: {} });
  const { upTo = 'services', ...daemonOpts } = opts;
  const daemon = new Daemon({ config, logger: createLogger(process.env['TEST_LOG_LEVEL'] ?? 'silent'), ...daemonOpts });
  await daemon.start({ upTo });
  return daemon;
}

/** The sum of a metric family's samples in a Prometheus exposition whose labels include `labels`. */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let total = 0;
  for (const line of text.split('\n')) {
    if ((line.startsWith(`${name}{`) || line.startsWith(`${name} `)) && want.every((w) => line.includes(w)))
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}
