/**
 * The HTTP server holds its ground: connections that never send a byte are closed after the idle
 * deadline, slow senders after the header deadline, past the connection cap new connections are
 * closed at once (and /healthz answers again once the idle ones are gone); every response carries
 * security headers and the page a CSP without 'unsafe-inline'; a busy port or a foreign address is
 * one line naming the setting.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HttpServer } from '../src/http/server.js';
import { createLogger } from '../src/log.js';
import { Metrics } from '../src/metrics.js';
import { runCli, startFake, testDb, waitFor, writeConfig, type FakeSetup, type TestDb } from './helpers.js';
import { source } from './http-helpers.js';

const logger = createLogger('silent');

/** A client socket that sends nothing; `closedAt` is set when the server closes it. */
function idleSocket(port: number): Promise<{ socket: net.Socket; openedAt: number; closedAt: number | null }> {
  return new Promise((resolve, reject) => {
    const s = { socket: net.connect(port, '127.0.0.1'), openedAt: 0, closedAt: null as number | null };
    s.socket.on('error', () => undefined);
    s.socket.on('close', () => (s.closedAt = Date.now()));
    s.socket.once('connect', () => {
      s.openedAt = Date.now();
      resolve(s);
    });
    s.socket.once('error', reject);
  });
}

const healthz = (url: string) =>
  fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) }).then(
    (r) => r.status,
    () => 'refused' as const,
  );

describe('HTTP server deadlines and connection cap', () => {
  it(
    'closes connections that never send a byte after the idle deadline; past the cap refuses new ones; /healthz answers once they are gone',
    { timeout: 60_000 },
    async () => {
      const IDLE_MS = 1_500;
      const CAP = 100;
      const server = new HttpServer({
        host: '127.0.0.1',
        port: 0,
        metrics: new Metrics({ defaultMetrics: false }),
        source,
        logger,
        limits: { idleTimeoutMs: IDLE_MS, maxConnections: CAP },
      });
      await server.start();
      const port = Number(new URL(server.url).port);
      const sockets: Array<Awaited<ReturnType<typeof idleSocket>>> = [];
      try {
        for (let i = 0; i < CAP; i++) sockets.push(await idleSocket(port));
        await waitFor(async () => (await server.connections()) === CAP, { what: `${CAP} connections held by the server` });
        // past the cap: closed as they come, long before the idle deadline
        const extra = await Promise.all(Array.from({ length: 20 }, () => idleSocket(port)));
        await waitFor(() => extra.every((s) => s.closedAt !== null), { timeoutMs: 10_000, what: 'connections past the cap closed' });
        assert.ok(
          extra.every((s) => s.closedAt! - s.openedAt < IDLE_MS),
          'refused at once, not left to idle',
        );
        assert.equal(await healthz(server.url), 'refused', '/healthz cannot get in while the cap is reached');
        assert.ok(
          sockets.every((s) => s.closedAt === null),
          'the first ones are still open',
        );
        // the idle deadline: every one of them closed, none before its time
        await waitFor(() => sockets.every((s) => s.closedAt !== null), { timeoutMs: 20_000, what: 'idle connections closed' });
        const held = sockets.map((s) => s.closedAt! - s.openedAt);
        process.stderr.write(`idle connections held ${Math.min(...held)}–${Math.max(...held)} ms (deadline ${IDLE_MS} ms)\n`);
        assert.ok(Math.min(...held) >= IDLE_MS - 100, `none closed before the deadline: ${Math.min(...held)} ms`);
        assert.equal(await server.connections(), 0);
        assert.equal(await healthz(server.url), 200);
      } finally {
        for (const s of sockets) s.socket.destroy();
        await server.stop();
      }
    },
  );

  it('closes a connection whose headers trickle in slower than the header deadline', { timeout: 30_000 }, async () => {
    const server = new HttpServer({
      host: '127.0.0.1',
      port: 0,
      metrics: new Metrics({ defaultMetrics: false }),
      source,
      logger,
      limits: { headersTimeoutMs: 1_000 },
    });
    await server.start();
    const s = await idleSocket(Number(new URL(server.url).port));
    let answer = '';
    s.socket.on('data', (d) => (answer += d));
    s.socket.write('GET / HTTP/1.1\r\nHost: x\r\n');
    // a header byte every 100 ms keeps the connection busy, so only the header deadline ends it
    const drip = setInterval(() => s.socket.writable && s.socket.write('X-Slow: y\r\n'), 100);
    try {
      await waitFor(() => s.closedAt !== null, { timeoutMs: 15_000, what: 'slow sender cut off' });
      assert.ok(s.closedAt! - s.openedAt >= 900, `not before the deadline: ${s.closedAt! - s.openedAt} ms`);
      assert.match(answer, /^HTTP\/1\.1 408/);
    } finally {
      clearInterval(drip);
      s.socket.destroy();
      await server.stop();
    }
  });
});

describe('security headers', () => {
  let server: HttpServer;
  before(async () => {
    server = new HttpServer({ host: '127.0.0.1', port: 0, metrics: new Metrics({ defaultMetrics: false }), source, logger });
    await server.start();
  });
  after(() => server.stop());

  it('are on every response: nosniff, no framing, no referrer, a CSP', async () => {
    const requests: Array<[string, RequestInit, number]> = [
      ['/', {}, 200],
      ['/api/status', {}, 200],
      ['/metrics', {}, 200],
      ['/healthz', {}, 200],
      ['/readyz', {}, 200],
      ['/nothing-here', {}, 404],
      ['/', { method: 'POST' }, 405],
      ['/?page=0', {}, 400],
    ];
    for (const [p, init, status] of requests) {
      const res = await fetch(`${server.url}${p}`, init);
      await res.arrayBuffer();
      const what = `${init.method ?? 'GET'} ${p}`;
      assert.equal(res.status, status, what);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', what);
      assert.equal(res.headers.get('x-frame-options'), 'DENY', what);
      assert.equal(res.headers.get('referrer-policy'), 'no-referrer', what);
      assert.match(res.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/, what);
      assert.doesNotMatch(res.headers.get('content-security-policy') ?? '', /unsafe-inline|unsafe-eval/, what);
    }
  });

  it("lets the page's own stylesheet in by its hash, and nothing else", async () => {
    const res = await fetch(`${server.url}/`);
    const html = await res.text();
    const csp = res.headers.get('content-security-policy')!;
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
    const hash = crypto.createHash('sha256').update(style).digest('base64');
    assert.match(csp, /^default-src 'none'; /);
    assert.ok(csp.includes(`style-src 'sha256-${hash}'`), csp);
    assert.doesNotMatch(html, /<script|\sstyle="|\son[a-z]+="/i, 'no script, no inline style attribute, no handler');
    assert.equal((html.match(/<style>/g) ?? []).length, 1);
  });
});

describe('HTTP address problems at start-up', () => {
  let db: TestDb;
  let g: FakeSetup;
  before(async () => {
    db = await testDb('httplisten');
    g = await startFake([{ id: '123', timeZone: 'UTC' }]);
  });
  after(async () => {
    await g?.stop();
    await db?.drop();
  });

  it('a port in use is one line naming http.port and the address, exit 1', async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', () => resolve()));
    const port = (busy.address() as net.AddressInfo).port;
    try {
      const config = writeConfig(g.dir, db, g, { properties: [{ id: '123' }], http: { host: '127.0.0.1', port } });
      const r = await runCli(['run', '--config', config]);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stderr, `ga-collector: http.port ${port} on 127.0.0.1 is already in use\n`);
    } finally {
      busy.close();
    }
  });

  it('an http.host that is not an address of this machine is a configuration error, exit 2', async () => {
    const config = writeConfig(g.dir, db, g, { properties: [{ id: '123' }], http: { host: '192.0.2.1', port: 0 } });
    const r = await runCli(['run', '--config', config]);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, 'ga-collector: http.host 192.0.2.1 is not an address of this machine\n');
  });

  it('a web config file that does not exist is one line, exit 2', async () => {
    const config = writeConfig(g.dir, db, g, { properties: [{ id: '123' }], http: { port: 0 } });
    const missing = path.join(g.dir, 'no-such-web.yml');
    const r = await runCli(['run', '--config', config], { env: { GA_COLLECTOR_WEB_CONFIG_FILE: missing } });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, `ga-collector: http.webConfigFile: ${missing}: does not exist\n`);
  });
});
