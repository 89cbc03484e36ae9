/**
 * The daemon under soak (soak.ts): `node dist/main.js run` as a child process, its log written to
 * a file and tallied by event, and what the harness samples of it (/proc, /metrics).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const MAIN = path.join(ROOT, 'dist', 'main.js');

/** The daemon as a child process, its JSON log written to a file and tallied by event. */
export class DaemonChild {
  readonly child: ChildProcess;
  readonly events = new Map<string, number>();
  exit: { code: number | null; signal: NodeJS.Signals | null; at: number } | null = null;
  url: string | null = null;
  /** the start of what it wrote to stderr: how it died, if it did */
  stderrHead = '';
  private readonly exited: Promise<void>;
  private partial = '';

  constructor(config: string, logFile: string) {
    const log = fs.createWriteStream(logFile);
    this.child = spawn(process.execPath, [MAIN, 'run', '--config', config], {
      cwd: ROOT,
      env: { PATH: process.env['PATH'], HOME: process.env['HOME'], TZ: 'UTC' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (d: Buffer) => {
      log.write(d);
      this.tally(d.toString());
    });
    this.child.stderr!.on('data', (d: Buffer) => {
      log.write(d);
      if (this.stderrHead.length < 4096) this.stderrHead += d.toString();
    });
    this.exited = new Promise((resolve) =>
      this.child.on('close', (code, signal) => {
        this.exit = { code, signal, at: Date.now() };
        log.end();
        resolve();
      }),
    );
  }

  private tally(text: string): void {
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      try {
        const l = JSON.parse(line) as Record<string, unknown>;
        const event = typeof l['event'] === 'string' ? l['event'] : `(${String(l['level'])})`;
        this.events.set(event, (this.events.get(event) ?? 0) + 1);
        if (event === 'http_listening') this.url = String(l['url']);
      } catch {
        // a line cut by a crash
      }
    }
  }

  get alive(): boolean {
    return this.exit === null;
  }

  /** SIGTERM, then SIGKILL after timeoutMs (as systemd's TimeoutStopSec in deploy/systemd). */
  async stop(timeoutMs = 45_000): Promise<void> {
    if (this.exit) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(t);
  }
}

/** ga_collector_fetch_runs_total{outcome="success"} per property from /metrics; null when it does not answer in 5 s. */
export async function scrapeSuccesses(url: string | null): Promise<Record<string, number> | null> {
  if (!url) return null;
  try {
    const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) });
    const text = await res.text();
    const out: Record<string, number> = {};
    for (const m of text.matchAll(/^ga_collector_fetch_runs_total\{([^}]*)\} (\S+)$/gm)) {
      if (!/outcome="success"/.test(m[1]!)) continue;
      const property = /property="([^"]*)"/.exec(m[1]!)?.[1] ?? '?';
      out[property] = (out[property] ?? 0) + Number(m[2]);
    }
    return out;
  } catch {
    return null;
  }
}

/** RSS (/proc/PID/status VmRSS, bytes) and open descriptors (/proc/PID/fd) of a process; nulls when it is gone. */
export function sampleProcess(pid: number | undefined): { rss: number | null; fds: number | null } {
  if (!pid) return { rss: null, fds: null };
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
    return { rss: Number.isFinite(kb) ? kb * 1024 : null, fds: fs.readdirSync(`/proc/${pid}/fd`).length };
  } catch {
    return { rss: null, fds: null };
  }
}
