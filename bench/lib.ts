/**
 * Benchmark plumbing: a database of its own, the built CLI as a child process with its RSS and
 * CPU sampled from /proc, psql, and the rows every measurement shares.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { generateReport } from '@ga-collector/fake-google';
import type { ReportDefinition } from '../src/config/index.js';
import type { PeerArgs, PeerResult } from './peer.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = path.join(ROOT, 'dist', 'main.js');
const PEER = path.join(ROOT, 'bench', 'peer.ts');
const CLK_TCK = 100; // Linux USER_HZ, what /proc/<pid>/stat counts in

/** A database created for the benchmark and dropped after it (falls back to a schema when CREATE DATABASE is refused). */
export class BenchDb {
  readonly url: string;
  private constructor(
    private readonly adminUrl: string,
    readonly name: string | null,
    url: string,
    readonly pool: pg.Pool,
  ) {
    this.url = url;
  }

  static async create(adminUrl: string): Promise<BenchDb> {
    const name = `ga_collector_bench_${process.pid}`;
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${name}`);
      const u = new URL(adminUrl);
      u.pathname = `/${name}`;
      const url = u.toString();
      return new BenchDb(adminUrl, name, url, newPool(url));
    } catch {
      // no CREATEDB right: schemas in the given database, each dropped at the end
      return new BenchDb(adminUrl, null, adminUrl, newPool(adminUrl));
    } finally {
      await admin.end();
    }
  }

  /** A schema name unique to this run. */
  schema(label: string): string {
    return `bench_${label}_${process.pid}`;
  }

  async query<T extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<T[]> {
    return (await this.pool.query<T>(sql, params)).rows;
  }

  async drop(): Promise<void> {
    if (this.name === null) {
      const schemas = await this.query<{ nspname: string }>(`SELECT nspname FROM pg_namespace WHERE nspname LIKE $1`, [`bench\\_%\\_${process.pid}`]);
      for (const s of schemas) await this.pool.query(`DROP SCHEMA "${s.nspname}" CASCADE`).catch(() => undefined);
      await this.pool.end();
      return;
    }
    await this.pool.end();
    const admin = new pg.Client({ connectionString: this.adminUrl });
    await admin.connect();
    try {
      await admin.query(`DROP DATABASE IF EXISTS ${this.name} WITH (FORCE)`);
    } finally {
      await admin.end();
    }
  }
}

function newPool(url: string): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on('error', () => undefined);
  return pool;
}

export interface Sample {
  /** peak resident set size (VmHWM), bytes */
  peakRss: number;
  /** resident set size at the last sample, bytes */
  rss: number;
  /** user + system CPU time, ms */
  cpuMs: number;
}

/** Reads a process's memory and CPU from /proc; null once it has exited. */
export function sample(pid: number): Sample | null {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
    // fields after the command name, which is in parentheses and may contain spaces
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(rest[11]) + Number(rest[12]);
    return { peakRss: kb('VmHWM'), rss: kb('VmRSS'), cpuMs: (ticks * 1000) / CLK_TCK };
  } catch {
    return null;
  }
}

export interface CliRun {
  code: number | null;
  wallMs: number;
  peakRss: number;
  cpuMs: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI (`dist/main.js ...`, startCli) to its end, sampling its peak RSS (VmHWM is monotonic, so the last sample is the peak). */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, opts: { bare?: boolean } = {}): Promise<CliRun> {
  const child = startCli(args, env, opts);
  return child.done;
}

export interface CliProcess {
  child: ChildProcess;
  started: number;
  out: { stdout: string; stderr: string };
  last: Sample | null;
  done: Promise<CliRun>;
}

/**
 * The Node options dist/main.js's first line starts it with (`#!/usr/bin/env -S node ...`), as
 * `ga-collector` runs when installed, and as the systemd unit and the Docker image run it.
 */
export function launchFlags(): string[] {
  if (!flags) {
    const first = fs.readFileSync(MAIN, 'utf8').split('\n', 1)[0]!;
    const words = first
      .replace(/^#!\S*env\s+(-S\s+)?/, '')
      .split(/\s+/)
      .filter(Boolean);
    flags = words[0] === 'node' ? words.slice(1) : [];
  }
  return flags;
}

/** launchFlags, read once: dist/main.js does not change during a run */
let flags: string[] | undefined;

/**
 * Starts the CLI as installed (launchFlags), or with `bare`, as `node dist/main.js` without them.
 */
export function startCli(args: string[], env: NodeJS.ProcessEnv = {}, opts: { bare?: boolean } = {}): CliProcess {
  const started = performance.now();
  // BENCH_NODE_ARGS (e.g. --cpu-prof) go to the collector's processes, for profiling
  const nodeArgs = [...(opts.bare ? [] : launchFlags()), ...(process.env['BENCH_NODE_ARGS'] ?? '').split(' ').filter(Boolean)];
  const child = spawn(process.execPath, [...nodeArgs, MAIN, ...args], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'], HOME: process.env['HOME'], TZ: 'UTC', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const handle: CliProcess = { child, started, out: { stdout: '', stderr: '' }, last: null, done: null as unknown as Promise<CliRun> };
  child.stdout!.on('data', (d) => (handle.out.stdout += d));
  child.stderr!.on('data', (d) => (handle.out.stderr += d));
  const timer = setInterval(() => {
    const s = sample(child.pid!);
    // an exited process that is not yet reaped has no memory lines: keep what was seen alive
    if (s && s.rss > 0) handle.last = s;
  }, 25);
  handle.done = new Promise<CliRun>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      clearInterval(timer);
      resolve({
        code,
        wallMs: performance.now() - started,
        peakRss: handle.last?.peakRss ?? 0,
        cpuMs: handle.last?.cpuMs ?? 0,
        stdout: handle.out.stdout,
        stderr: handle.out.stderr,
      });
    });
  });
  children.add(child);
  void handle.done.finally(() => children.delete(child));
  return handle;
}

const children = new Set<ChildProcess>();

/** Runs the peer (peer.ts, Google's official client) as a child process; resolves with what it printed. */
export function runPeer(args: PeerArgs): Promise<PeerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', PEER, JSON.stringify(args)], {
      cwd: ROOT,
      env: { PATH: process.env['PATH'], HOME: process.env['HOME'], TZ: 'UTC' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      children.delete(child);
      if (code === 0) resolve(JSON.parse(stdout.trim().split('\n').at(-1)!) as PeerResult);
      else reject(new Error(`peer exited ${code}: ${stderr.trim().split('\n').slice(0, 3).join(' / ')}`));
    });
  });
}

/** Kills the children still running (a benchmark that failed half-way). */
export function killChildren(): void {
  for (const c of children) c.kill('SIGKILL');
}

/** JSON log lines of a CLI run. */
export function logLines(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Runs psql with a command; resolves with the wall time. */
export function psql(url: string, command: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', command], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(performance.now() - started) : reject(new Error(`psql: ${stderr.trim()}`))));
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function isoDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The rows the fake serves for a property and date range, as generateReport makes them. */
export function* benchRows(
  propertyId: string,
  def: ReportDefinition,
  dates: string[],
  rowsPerDay: number,
): Generator<{ date: string; dims: string[]; values: number[] }> {
  for (const date of dates) {
    for (const r of generateReport({ propertyId, date, dimensions: def.dimensions, metrics: def.metrics, rowsPerDay })) yield { date, ...r };
  }
}

/** CSV of the rows, as psql's \copy reads it. */
export async function writeCsv(file: string, propertyId: string, rows: Iterable<{ date: string; dims: string[]; values: number[] }>): Promise<number> {
  const out = fs.createWriteStream(file);
  const quote = (s: string) => `"${s.replace(/"/g, '""')}"`;
  let n = 0;
  let buf = '';
  for (const r of rows) {
    buf += `${propertyId},${r.date},${r.dims.map(quote).join(',')},${r.values.join(',')}\n`;
    n++;
    if (buf.length > 1 << 20) {
      if (!out.write(buf)) await new Promise<void>((res) => out.once('drain', () => res()));
      buf = '';
    }
  }
  out.end(buf);
  await new Promise<void>((res, rej) => out.on('finish', () => res()).on('error', rej));
  return n;
}
