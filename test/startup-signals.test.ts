/**
 * Signals during start-up. The handlers are in place before the daemon waits for its database or
 * for a first token exchange, so a SIGTERM then is a prompt, clean stop (exit 0, logged), not the
 * end of the process by the signal's default action; a SIGHUP then is applied once started.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { logLines, startCli, startFake, testDb, waitFor, writeConfig, type FakeSetup, type TestDb } from './helpers.js';
import { TcpProxy } from './ops-helpers.js';

const P = '930001';
const reports = { daily: { metrics: ['sessions'], startDate: '3daysAgo' } };

/** A port that accepts connections and never answers: a token endpoint that hangs. */
async function silentServer(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/token`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A database URL whose port refuses connections until `proxy.open()`. */
async function closedDatabase(url: string): Promise<{ url: string; proxy: TcpProxy }> {
  const target = new URL(url);
  const proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
  await proxy.open();
  await proxy.close();
  const through = new URL(url);
  through.hostname = '127.0.0.1';
  through.port = String(proxy.port);
  return { url: through.toString(), proxy };
}

describe('signals during start-up', () => {
  let g: FakeSetup;
  let db: TestDb;
  before(async () => {
    g = await startFake([{ id: P, timeZone: 'UTC' }]);
    db = await testDb('startsignals');
  });
  after(async () => {
    await g.stop();
    await db.drop();
  });

  it('SIGTERM while waiting for a database that is down: exit 0 at once, logged as a stop during start-up', async () => {
    const { url, proxy } = await closedDatabase(db.url);
    const config = writeConfig(g.dir, { ...db, url }, g, { properties: [{ id: P }], reports, http: { port: 0 } });
    const d = startCli(['run', '--config', config]);
    try {
      await waitFor(() => logLines(d.out.stdout).some((l) => l['event'] === 'database_unavailable') || d.child.exitCode !== null, {
        timeoutMs: 30_000,
        what: 'waiting for the database',
      });
      assert.equal(d.child.exitCode, null, d.out.stderr);
      const sentAt = Date.now();
      d.child.kill('SIGTERM');
      const exit = await d.exited;
      assert.equal(exit.code, 0, d.out.stderr);
      // the wait would have gone on for a minute; the stop does not wait for it
      assert.ok(Date.now() - sentAt < 20_000, `exited ${Date.now() - sentAt} ms after SIGTERM`);
      const events = logLines(d.out.stdout).map((l) => l['event']);
      assert.ok(events.includes('startup_interrupted'), events.join(' '));
      assert.ok(events.includes('stopped'), events.join(' '));
      assert.ok(!events.includes('started'), 'never started');
      assert.equal(d.out.stderr, '');
    } finally {
      if (d.child.exitCode === null) d.child.kill('SIGKILL');
      await proxy.close();
    }
  });

  it('SIGTERM during a first token exchange that hangs: exit 0 long before the exchange deadline', async () => {
    const silent = await silentServer();
    // the exchange's deadline is 30 s: a stop that waited for it would take that long
    const config = writeConfig(g.dir, db, g, {
      properties: [{ id: P }],
      reports,
      http: { port: 0 },
      google: { credentials: g.keyFile, tokenUrl: silent.url, apiRootUrl: g.fake.apiRootUrl },
    });
    const d = startCli(['run', '--config', config]);
    try {
      await waitFor(() => logLines(d.out.stdout).some((l) => l['event'] === 'http_listening') || d.child.exitCode !== null, {
        timeoutMs: 30_000,
        what: 'HTTP up, token exchange under way',
      });
      assert.equal(d.child.exitCode, null, d.out.stderr);
      const sentAt = Date.now();
      d.child.kill('SIGTERM');
      const exit = await d.exited;
      assert.equal(exit.code, 0, d.out.stderr);
      assert.ok(Date.now() - sentAt < 20_000, `exited ${Date.now() - sentAt} ms after SIGTERM`);
      const events = logLines(d.out.stdout).map((l) => l['event']);
      assert.ok(events.includes('startup_interrupted') && events.includes('stopped'), events.join(' '));
      assert.ok(!events.includes('token_refresh_failed'), 'the stopped exchange is not counted as the endpoint failing');
    } finally {
      if (d.child.exitCode === null) d.child.kill('SIGKILL');
      await silent.close();
    }
  });

  it('SIGHUP while waiting for the database: applied once the daemon has started, not fatal', async () => {
    const { url, proxy } = await closedDatabase(db.url);
    const config = writeConfig(g.dir, { ...db, url }, g, { properties: [{ id: P }], reports, http: { port: 0 } });
    const d = startCli(['run', '--config', config]);
    try {
      await waitFor(() => logLines(d.out.stdout).some((l) => l['event'] === 'database_unavailable') || d.child.exitCode !== null, {
        timeoutMs: 30_000,
        what: 'waiting for the database',
      });
      d.child.kill('SIGHUP');
      await waitFor(() => logLines(d.out.stdout).some((l) => l['event'] === 'reload_deferred') || d.child.exitCode !== null, { what: 'the reload put off' });
      assert.equal(d.child.exitCode, null, `SIGHUP ended the process: ${d.out.stderr}`);
      await proxy.open();
      await waitFor(() => logLines(d.out.stdout).some((l) => l['event'] === 'reloaded'), { timeoutMs: 30_000, what: 'reloaded after start-up' });
      const events = logLines(d.out.stdout).map((l) => l['event']);
      assert.ok(events.indexOf('started') < events.indexOf('reloaded'), events.join(' '));
      d.child.kill('SIGTERM');
      assert.equal((await d.exited).code, 0, d.out.stderr);
    } finally {
      if (d.child.exitCode === null) d.child.kill('SIGKILL');
      await proxy.close();
    }
  });
});
