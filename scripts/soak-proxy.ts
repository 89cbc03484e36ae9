/**
 * For the soak harness (soak.ts): an HTTP proxy in front of the fake Google's Data API that adds
 * latency to every request and, on demand, stalls one runReport response mid-body: it passes the
 * status, the headers (with the full content-length) and half of the first chunk of the body,
 * then sends nothing more until the client gives up and closes the connection. The fake's own
 * `hang` fault covers a request that is accepted and never answered; this covers a body that
 * stops arriving, which only a deadline on the whole call (not on the headers) can end.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export class StallProxy {
  private server: http.Server | null = null;
  private readonly agent = new http.Agent({ keepAlive: true });
  private readonly open = new Set<http.ServerResponse>();
  private stallNext = false;
  /** when the stalled response was cut (ms since epoch), and when its client closed it */
  stalledAt: number | null = null;
  stallClosedAt: number | null = null;
  requests = 0;

  constructor(
    private readonly upstream: URL,
    private readonly latencyMs: number,
  ) {}

  async start(): Promise<void> {
    const server = http.createServer((req, res) => this.forward(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  /** The root URL to give the daemon as google.apiRootUrl. */
  get url(): string {
    const a = this.server!.address() as AddressInfo;
    return `http://127.0.0.1:${a.port}/`;
  }

  /** The next runReport response is cut mid-body and held. */
  stallNextReport(): void {
    this.stallNext = true;
  }

  async stop(): Promise<void> {
    for (const res of this.open) res.destroy();
    this.agent.destroy();
    const s = this.server;
    this.server = null;
    if (s) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.requests++;
    this.open.add(res);
    res.on('close', () => this.open.delete(res));
    const report = /:runReport(\?|$)/.test(req.url ?? '');
    setTimeout(() => {
      if (res.destroyed) return;
      const up = http.request(
        { host: this.upstream.hostname, port: this.upstream.port, method: req.method, path: req.url, headers: req.headers, agent: this.agent },
        (ur) => {
          if (report && this.stallNext && ur.statusCode === 200) {
            this.stallNext = false;
            res.writeHead(ur.statusCode, ur.headers);
            ur.once('data', (chunk: Buffer) => {
              res.write(chunk.subarray(0, Math.max(1, chunk.length >> 1)));
              this.stalledAt = Date.now();
              ur.destroy();
            });
            res.on('close', () => (this.stallClosedAt ??= Date.now()));
            return;
          }
          res.writeHead(ur.statusCode ?? 502, ur.headers);
          ur.pipe(res);
        },
      );
      // a client that gives up (a hung fake, a stall) releases the upstream request too
      res.on('close', () => {
        if (!res.writableFinished) up.destroy();
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    }, this.latencyMs);
  }
}
