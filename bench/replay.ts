/**
 * A recording proxy in front of the fake Google, so a timed run measures the collector and
 * PostgreSQL, not the fake. The fake builds and renders every report in this (the benchmark's)
 * process, on the same small machine: at 1,000,000 rows that is more CPU than the collector
 * spends. Google does that work on its own machines. So the benchmark first runs the same fetch
 * once through this proxy, which keeps every 200 answer of the Data API, and the timed run gets
 * them back from memory: Google at zero latency and zero local cost.
 *
 * Token requests always go through to the fake (every process signs a new assertion), so token
 * counts stay the fake's. Only Data API answers are kept, by method, path and request body.
 */
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

interface Kept {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

async function readAll(stream: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export class ReplayProxy {
  private server: Server | undefined;
  private readonly kept = new Map<string, Kept>();
  /** answered from memory / passed to the fake */
  hits = 0;
  misses = 0;

  constructor(private readonly target: string) {}

  async start(): Promise<string> {
    const target = new URL(this.target);
    this.server = createServer((req, res) => {
      void (async () => {
        const body = await readAll(req);
        const path = req.url ?? '/';
        const key = `${req.method} ${path} ${body.toString('utf8')}`;
        const cacheable = !path.startsWith('/token');
        const hit = cacheable ? this.kept.get(key) : undefined;
        if (hit) {
          this.hits++;
          res.writeHead(hit.status, { ...hit.headers, 'content-length': hit.body.length });
          res.end(hit.body);
          return;
        }
        this.misses++;
        const headers = { ...req.headers, host: target.host };
        const up = request({ host: target.hostname, port: target.port, method: req.method, path, headers }, (upRes) => {
          void readAll(upRes).then((data) => {
            const h: Record<string, string> = {};
            for (const [k, v] of Object.entries(upRes.headers))
              if (typeof v === 'string' && k !== 'content-length' && k !== 'connection' && k !== 'keep-alive') h[k] = v;
            if (cacheable && upRes.statusCode === 200) this.kept.set(key, { status: 200, headers: h, body: data });
            res.writeHead(upRes.statusCode ?? 502, { ...h, 'content-length': data.length });
            res.end(data);
          });
        });
        up.on('error', () => res.destroy());
        up.end(body);
      })();
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Forget what was kept (memory), keep serving. */
  clear(): void {
    this.kept.clear();
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }
}
