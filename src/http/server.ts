/**
 * The HTTP side: Prometheus metrics, liveness, readiness, the status page and its JSON.
 * Nothing here writes; every handler is a read of the daemon's state.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { renderStatusPage } from './statusPage.js';

export interface StatusSource {
  status(): Promise<StatusDocument>;
  readiness(): Promise<{ ready: boolean; reasons: string[] }>;
}

export interface StatusDocument {
  generatedAt: string;
  version: string;
  database: { reachable: boolean; error?: string };
  tokens: Array<{ account: string; keyId: string; valid: boolean; expiresAt: string | null; failingSince: string | null; lastError: string | null }>;
  reports: Array<{
    property: string;
    report: string;
    timeZone: string | null;
    running: boolean;
    lastSuccess: string | null;
    lastRun: string | null;
    dataThrough: string | null;
    firstDate: string | null;
    storedDays: number;
    gaps: number;
    datesPending: number | null;
    nextRun: string | null;
    lastError: string | null;
    lastErrorAt: string | null;
  }>;
  recentFailures: Array<{ at: string; property: string; report: string; error: string }>;
  series: Array<{ property: string; report: string; metric: string; points: Array<{ date: string; value: number }> }>;
}

export class HttpServer {
  private server: http.Server | null = null;

  constructor(
    private readonly opts: { host: string; port: number; metrics: Metrics; source: StatusSource; logger: Logger },
  ) {}

  async start(): Promise<void> {
    const server = http.createServer((req, res) => {
      this.handle(req, res).catch((err) => {
        this.opts.logger.error({ event: 'http_error', path: req.url, err: String(err) }, 'HTTP handler failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('internal error\n');
      });
    });
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => resolve());
    });
    this.server = server;
    this.opts.logger.info({ event: 'http_listening', url: this.url }, 'HTTP server listening');
  }

  get url(): string {
    const a = this.server?.address() as AddressInfo | null;
    if (!a) return '';
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `http://${host}:${a.port}`;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    switch (path) {
      case '/metrics': {
        const body = await this.opts.metrics.text();
        res.writeHead(200, { 'content-type': this.opts.metrics.contentType }).end(body);
        return;
      }
      case '/healthz':
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        return;
      case '/readyz': {
        const r = await this.opts.source.readiness();
        res.writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(r.ready ? { ready: true } : { ready: false, reasons: r.reasons }) + '\n');
        return;
      }
      case '/api/status': {
        const doc = await this.opts.source.status();
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc, null, 2) + '\n');
        return;
      }
      case '/': {
        const doc = await this.opts.source.status();
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(renderStatusPage(doc));
        return;
      }
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  }
}
