/**
 * Exit codes that let systemd and scripts decide. A database setting that waiting will not fix
 * (no such database, a role that may not log in or does not exist, a wrong password, an unknown
 * host) is one line on stderr and exit 2 at once, never with the password in it; the unit does not
 * restart on 2. A database that is merely down (connection refused, "the database system is
 * starting up") is waited for, and the daemon starts when it comes.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { classifyDbError } from '../src/store/dbErrors.js';
import { ROOT, logLines, runCli, startCli, startFake, testDb, waitFor, writeJson, type FakeSetup, type TestDb } from './helpers.js';
import { TcpProxy } from './ops-helpers.js';
import { RestartablePostgres } from './restartable-postgres.js';

const P = '920001';

/** "the database system is starting up": what PostgreSQL answers while it recovers or starts */
async function startingUpServer(): Promise<{ port: number; close(): Promise<void> }> {
  const field = (t: string, v: string) => Buffer.concat([Buffer.from(t), Buffer.from(v), Buffer.from([0])]);
  const body = Buffer.concat([
    field('S', 'FATAL'),
    field('V', 'FATAL'),
    field('C', '57P03'),
    field('M', 'the database system is starting up'),
    Buffer.from([0]),
  ]);
  const head = Buffer.alloc(5);
  head.write('E', 0);
  head.writeInt32BE(body.length + 4, 1);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.once('data', () => s.end(Buffer.concat([head, body])));
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('database settings: exit 2 at once; a database that is down: wait', () => {
  let g: FakeSetup;
  let db: TestDb;
  const role = `t_nologin_${crypto.randomBytes(3).toString('hex')}`;

  before(async () => {
    g = await startFake([{ id: P, timeZone: 'UTC' }]);
    db = await testDb('exit2');
    await db.query(`CREATE ROLE ${role} NOLOGIN`);
  });
  after(async () => {
    await db.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
    await g.stop();
    await db.drop();
  });

  function config(url: string, extra: Record<string, unknown> = {}): string {
    return writeJson(path.join(g.dir, `config-${crypto.randomBytes(3).toString('hex')}.json`), {
      database: { url, schema: db.schema },
      google: { credentials: g.keyFile, tokenUrl: g.fake.tokenUrl, apiRootUrl: g.fake.apiRootUrl },
      properties: [{ id: P }],
      reports: { daily: { metrics: ['sessions'], startDate: '3daysAgo' } },
      http: { port: 0 },
      ...extra,
    });
  }

  /** `run` (the patient command, which waits for a database that is down) must not wait for this one. */
  async function exitsTwoAtOnce(url: string, line: RegExp, secret?: string): Promise<void> {
    const t0 = Date.now();
    const r = await runCli(['run', '--config', config(url)], { timeoutMs: 50_000 });
    assert.equal(r.code, 2, `exit ${r.code}\n${r.stderr}`);
    assert.ok(Date.now() - t0 < 30_000, `took ${Date.now() - t0} ms: retried instead of giving up`);
    assert.ok(!logLines(r.stdout).some((l) => l['event'] === 'database_unavailable'), 'not retried as if the database were down');
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, line);
    assert.doesNotMatch(r.stderr, /at \S+ \(|node_modules/, 'no stack trace');
    if (secret) assert.ok(!(r.stderr + r.stdout).includes(secret), 'the password appears nowhere');
  }

  const base = () => new URL(db.url);

  it('a database that does not exist (3D000): one line, exit 2', async () => {
    const u = base();
    u.pathname = `/${db.schema}_missing`;
    await exitsTwoAtOnce(
      u.toString(),
      new RegExp(`^ga-collector: database: database "${db.schema}_missing" does not exist \\(create the database, or fix the database name in database\\.url`),
    );
  });

  it('a role that may not log in (28000): one line, exit 2; `migrate` too', async () => {
    const u = base();
    u.username = role;
    await exitsTwoAtOnce(u.toString(), new RegExp(`^ga-collector: database: role "${role}" is not permitted to log in \\(the role must exist and have LOGIN`));
    const m = await runCli(['migrate', '--config', config(u.toString())]);
    assert.equal(m.code, 2, m.stderr);
  });

  it('a role that does not exist (28000): one line, exit 2', async () => {
    const u = base();
    u.username = `${role}_nobody`;
    await exitsTwoAtOnce(u.toString(), new RegExp(`^ga-collector: database: role "${role}_nobody" does not exist`));
  });

  it('a host name that does not resolve (ENOTFOUND): one line, exit 2', async () => {
    const u = base();
    u.hostname = 'db.ga-collector-test.invalid';
    await exitsTwoAtOnce(u.toString(), /^ga-collector: database: getaddrinfo ENOTFOUND db\.ga-collector-test\.invalid \(fix the host name in database\.url/);
  });

  it('a wrong password (28P01) on a server that asks for one: one line, exit 2, the password nowhere', async () => {
    const own = await RestartablePostgres.create();
    try {
      await own.query(`CREATE ROLE app LOGIN PASSWORD 'right-password'`);
      fs.writeFileSync(path.join(own.dataDir, 'pg_hba.conf'), 'host all all 127.0.0.1/32 scram-sha-256\n');
      await own.query('SELECT pg_reload_conf()');
      const secret = 'wr0ng-Pa55word-xyz';
      await exitsTwoAtOnce(
        `postgres://app:${secret}@127.0.0.1:${own.port}/postgres`,
        /^ga-collector: database: password authentication failed for user "app" \(fix the user name or password/,
        secret,
      );
    } finally {
      await own.destroy();
    }
  });

  it('a database that is down (connection refused) is waited for, and the daemon starts when it comes', async () => {
    const target = base();
    const proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    await proxy.open();
    await proxy.close();
    const u = base();
    u.hostname = '127.0.0.1';
    u.port = String(proxy.port);
    const d = startCli(['run', '--config', config(u.toString())]);
    try {
      await waitFor(() => logLines(d.out.stdout).filter((l) => l['event'] === 'database_unavailable').length >= 2 || d.child.exitCode !== null, {
        timeoutMs: 30_000,
        what: 'two attempts while the database is down',
      });
      assert.equal(d.child.exitCode, null, d.out.stderr);
      assert.match(String(logLines(d.out.stdout).find((l) => l['event'] === 'database_unavailable')!['err']), /ECONNREFUSED/);
      await proxy.open();
      await waitFor(() => logLines(d.out.stdout).some((l) => l['event'] === 'started'), { timeoutMs: 30_000, what: 'started once the database answered' });
      d.child.kill('SIGTERM');
      assert.equal((await d.exited).code, 0, d.out.stderr);
    } finally {
      if (d.child.exitCode === null) d.child.kill('SIGKILL');
      await proxy.close();
    }
  });

  it('a database that is starting up (57P03) is waited for, not refused', async () => {
    const server = await startingUpServer();
    const d = startCli(['run', '--config', config(`postgres://postgres@127.0.0.1:${server.port}/postgres`)]);
    try {
      await waitFor(() => logLines(d.out.stdout).filter((l) => l['event'] === 'database_unavailable').length >= 2 || d.child.exitCode !== null, {
        timeoutMs: 30_000,
        what: 'two attempts while the database starts',
      });
      assert.equal(d.child.exitCode, null, `exited: ${d.out.stderr}`);
      assert.match(String(logLines(d.out.stdout).find((l) => l['event'] === 'database_unavailable')!['err']), /starting up/);
    } finally {
      d.child.kill('SIGKILL');
      await d.exited;
      await server.close();
    }
  });

  it('errors are sorted by SQLSTATE and socket code', () => {
    const e = (props: Record<string, unknown>) => Object.assign(new Error(String(props['message'] ?? 'x')), props);
    for (const code of ['3D000', '28P01', '28000', '42501', 'ENOTFOUND']) assert.equal(classifyDbError(e({ code })), 'config', code);
    for (const code of ['57P01', '57P03', '53300', '08006', '55P03', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EAI_AGAIN'])
      assert.equal(classifyDbError(e({ code })), 'unavailable', code);
    assert.equal(classifyDbError(new Error('Connection terminated unexpectedly')), 'unavailable');
    assert.equal(classifyDbError(new Error('timeout exceeded when trying to connect')), 'unavailable');
    assert.equal(classifyDbError(e({ code: '42703', message: 'column "property_id" does not exist' })), 'other');
    // Node's connect to "localhost" tries ::1 and 127.0.0.1 and fails with both
    assert.equal(classifyDbError(Object.assign(new AggregateError([e({ code: 'ECONNREFUSED' }), e({ code: 'ECONNREFUSED' })], ''), {})), 'unavailable');
  });

  it('the systemd unit restarts on failure but not on exit 2', () => {
    const unit = fs.readFileSync(path.join(ROOT, 'deploy/systemd/ga-collector.service'), 'utf8');
    assert.match(unit, /^Restart=on-failure$/m);
    assert.match(unit, /^RestartPreventExitStatus=2$/m);
  });
});
