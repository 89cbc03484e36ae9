/**
 * Test support: a Data API stand-in that answers runReport with scripted pages, and the real
 * Ga4Client pointed at it, so the page loop is tested with the client's own retry policy,
 * deadline and request slots (the fake Google serves real reports; this serves any page a test
 * needs: inconsistent listings, odd values, rows in any order).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';
import { Ga4Client } from '../src/ga4/client.js';
import { Limiter } from '../src/ga4/limiter.js';
import type { CallContext } from '../src/ga4/callContext.js';
import { createLogger } from '../src/log.js';
import { Metrics } from '../src/metrics.js';

export interface PageRequest {
  offset: number;
  limit: number;
  /** 0-based count of runReport requests so far */
  call: number;
  body: Record<string, unknown>;
}

/**
 * What to answer: a JSON value (sent as JSON), a raw body with a status and content type, `hang`
 * (never answer), or `stall` (headers and the first half of this JSON value, then nothing).
 */
export type Answer = Record<string, unknown> | { raw: string | Buffer; status?: number; contentType?: string } | { stall: Record<string, unknown> } | 'hang';

export interface ScriptedApi {
  client: Ga4Client;
  /** the client's request slots */
  limiter: Limiter;
  ctx: CallContext;
  metrics: Metrics;
  requests: PageRequest[];
  stop(): Promise<void>;
}

export async function scriptedApi(
  answer: (req: PageRequest) => Answer | Promise<Answer>,
  opts: { maxAttempts?: number; timeoutMs?: number; propertyId?: string; concurrency?: number } = {},
): Promise<ScriptedApi> {
  const requests: PageRequest[] = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
        const r: PageRequest = { offset: Number(body['offset'] ?? 0), limit: Number(body['limit'] ?? 0), call: requests.length, body };
        requests.push(r);
        const a = await answer(r);
        if (a === 'hang') return;
        if ('stall' in a && typeof a.stall === 'object') {
          const json = Buffer.from(JSON.stringify(a.stall));
          res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8', 'content-length': json.length });
          res.write(json.subarray(0, json.length >> 1));
          return;
        }
        if ('raw' in a && (typeof a.raw === 'string' || Buffer.isBuffer(a.raw))) {
          const r = a as { raw: string | Buffer; status?: number; contentType?: string };
          const raw = Buffer.isBuffer(r.raw) ? r.raw : Buffer.from(r.raw);
          res.writeHead(r.status ?? 200, { 'content-type': r.contentType ?? 'application/json; charset=UTF-8', 'content-length': raw.length });
          res.end(raw);
          return;
        }
        const json = Buffer.from(JSON.stringify(a));
        res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8', 'content-length': json.length });
        res.end(json);
      })();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const metrics = new Metrics({ defaultMetrics: false });
  const limiter = new Limiter(opts.concurrency ?? 4);
  const client = new Ga4Client({
    apiRootUrl: `http://127.0.0.1:${port}/`,
    timeoutMs: opts.timeoutMs ?? 5_000,
    maxAttempts: opts.maxAttempts ?? 4,
    limiter,
    metrics,
    backoffBaseMs: 1,
    backoffCapMs: 5,
  });
  const tokens = { account: 'test@example.iam.gserviceaccount.com', getToken: async () => 'token', invalidate: async () => undefined };
  const ctx: CallContext = {
    propertyId: opts.propertyId ?? '1',
    tokens: tokens as never,
    logger: createLogger(process.env['TEST_LOG_LEVEL'] ?? 'silent'),
    report: 'r',
  };
  return {
    client,
    limiter,
    ctx,
    metrics,
    requests,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
