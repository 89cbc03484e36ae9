/**
 * Support for the operations tests (metrics, scrape, secrets): a daemon started as a child process
 * on a free port, a parser for the Prometheus text format, promtool, and a TCP proxy that can cut
 * the daemon off from PostgreSQL.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { logLines, startCli, waitFor } from './helpers.js';

export interface DaemonProcess {
  url: string;
  out: { stdout: string; stderr: string };
  child: ReturnType<typeof startCli>['child'];
  exited: ReturnType<typeof startCli>['exited'];
  /** JSON log lines so far */
  logs(): Array<Record<string, unknown>>;
  /** SIGTERM and wait; SIGKILL after timeoutMs. Returns the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
}

/**
 * `ga-collector run --config FILE` in the background; resolves once its HTTP server listens (the
 * config should say `http: { port: 0 }`: the URL is read from the `http_listening` log line).
 */
export async function startDaemon(config: string, env: NodeJS.ProcessEnv = {}, timeoutMs = 20_000): Promise<DaemonProcess> {
  const d = startCli(['run', '--config', config], { env });
  let exit: { code: number | null } | null = null;
  void d.exited.then((e) => (exit = e));
  const logs = () => logLines(d.out.stdout);
  const url = await waitFor(
    () => {
      if (exit) throw new Error(`daemon exited with ${exit.code}: ${d.out.stderr}${d.out.stdout}`);
      return logs().find((l) => l['event'] === 'http_listening')?.['url'] as string | undefined;
    },
    { timeoutMs, what: 'daemon HTTP server listening' },
  ).catch((err: unknown) => {
    d.child.kill('SIGKILL');
    throw err;
  });
  return {
    url,
    out: d.out,
    child: d.child,
    exited: d.exited,
    logs,
    async stop(stopTimeoutMs = 15_000) {
      if (d.child.exitCode !== null || d.child.signalCode !== null) return d.child.exitCode;
      d.child.kill('SIGTERM');
      const t = setTimeout(() => d.child.kill('SIGKILL'), stopTimeoutMs);
      const { code } = await d.exited;
      clearTimeout(t);
      return code;
    },
  };
}

export async function get(url: string): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: string;
  help: string;
  samples: Sample[];
}

/** A small parser of the Prometheus text format (version 0.0.4), enough for prom-client's output. */
export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { name, type: 'untyped', help: '', samples: [] }));
    return f;
  };
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      const f = family(meta[2]!);
      if (meta[1] === 'HELP') f.help = meta[3]!;
      else f.type = meta[3]!;
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    if (!m) throw new Error(`unparseable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g;
    for (let l; (l = re.exec(m[2] ?? ''));) labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    const name = m[1]!;
    const base = families.has(name) ? name : name.replace(/_(bucket|sum|count|total|created)$/, '');
    const owner = families.get(name) ?? families.get(base) ?? family(name);
    owner.samples.push({ name, labels, value: Number(m[3]) });
  }
  return families;
}

/** The value of the one sample of a family with exactly these label values (among others). */
export function valueOf(families: Map<string, Family>, name: string, labels: Record<string, string>): number | undefined {
  const f = families.get(name);
  const s = f?.samples.find((x) => Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s?.value;
}

/** Runs promtool with text on stdin. Fails the test with a clear message when promtool is missing. */
export function promtool(args: string[], stdin?: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('promtool', args, { input: stdin ?? '', encoding: 'utf8', timeout: 20_000 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new Error('promtool not found: install the Debian package "prometheus" (apt-get install -y prometheus)');
  }
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A TCP proxy to a fixed upstream that can be closed (dropping every connection) and opened again on the same port. */
export class TcpProxy {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(
    private readonly upstreamHost: string,
    private readonly upstreamPort: number,
  ) {}

  async open(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.upstreamPort, this.upstreamHost);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    for (const sock of this.sockets) sock.destroy();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

/** Which executable is at this path, if any. */
export function executable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Spawns a long-running tool with its output captured. */
export function spawnTool(cmd: string, args: string[], opts: { cwd?: string } = {}) {
  const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { text: '' };
  child.stdout.on('data', (d) => (out.text += d));
  child.stderr.on('data', (d) => (out.text += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, out, exited };
}
