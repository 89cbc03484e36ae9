/**
 * `ga-collector demo` as a new user runs it: no DATABASE_URL, so it starts its embedded
 * PostgreSQL; data must arrive, be queryable at the printed address, agree across reports as GA's
 * does, and a Ctrl-C must stop everything, remove the database's directory and say so. Given a
 * DATABASE_URL, the demo works only in a schema of its own: it refuses one that holds anything
 * else, and on stop says what it leaves behind and how to drop it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import path from 'node:path';
import pg from 'pg';
import { ROOT, runCli, startCli, testDb, waitFor } from './helpers.js';

/** The SQL examples of README.md, one statement each. */
function readmeSql(): string[] {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks
    .flatMap((b) => b.split(/;\s*\n/))
    .map((s) => s.replace(/^--.*$/gm, '').trim())
    .filter(Boolean);
}

describe('ga-collector demo', () => {
  it('starts an embedded PostgreSQL, fetches 90 days for two properties, stops cleanly on SIGINT', { timeout: 90_000 }, async () => {
    const started = Date.now();
    const demo = startCli(['demo'], { env: { GA_COLLECTOR_HTTP_PORT: '0' } });
    try {
      await waitFor(() => /data is in after/.test(demo.out.stdout), { timeoutMs: 60_000, what: `data\n${demo.out.stdout}${demo.out.stderr}` });
      const tookMs = Date.now() - started;
      const out = demo.out.stdout;
      const dataDir = /data in (\S+)\)/.exec(out)?.[1];
      assert.ok(dataDir && fs.existsSync(dataDir), out);
      const query = /query:\s+psql '([^']+)' -c '([^']+)'/.exec(out);
      assert.ok(query, out);
      assert.match(query[1]!, /^postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/);
      const client = new pg.Client(query[1]);
      await client.connect();
      try {
        const { rows } = await client.query<{ property_id: string; n: string }>('SELECT property_id, count(*) AS n FROM ga4.daily GROUP BY 1 ORDER BY 1');
        assert.deepEqual(
          rows.map((r) => [r.property_id, Number(r.n)]),
          [
            ['100001', 90],
            ['100002', 90],
          ],
        );
        // the same metric agrees across reports, as in GA: a report by date alone, the totals of a
        // report by device and country, and the sum of its rows (sessions add up; users would not)
        const disagree = await client.query(
          `SELECT d.property_id, d.date, d.sessions AS daily, t.sessions AS totals, r.sessions AS rows
             FROM ga4.daily d
             JOIN ga4.devices_totals t USING (property_id, date)
             JOIN (SELECT property_id, date, sum(sessions)::bigint AS sessions, sum(engaged_sessions)::bigint AS engaged FROM ga4.devices GROUP BY 1, 2) r USING (property_id, date)
            WHERE d.sessions <> t.sessions OR t.sessions <> r.sessions OR t.engaged_sessions <> r.engaged`,
        );
        assert.deepEqual(disagree.rows, [], 'daily.sessions = devices_totals.sessions = sum of devices rows, every date');
        const compared = await client.query('SELECT count(*)::int AS n FROM ga4.daily d JOIN ga4.devices_totals t USING (property_id, date)');
        assert.equal(compared.rows[0].n, 180, 'every date of both properties compared');
        const printed = await client.query(query[2]!);
        assert.equal(printed.rows.length, 10, 'the printed query works');
        // the Search Console site: every Pacific date from 90 days ago through today-3, and the printed query
        const site = await client.query<{ site_url: string; n: number }>('SELECT site_url, count(*)::int AS n FROM gsc.fetch_days GROUP BY 1');
        assert.deepEqual(site.rows, [{ site_url: 'sc-domain:example.com', n: 88 }]);
        const siteQuery = /^\s+psql '[^']+' -c '([^']+gsc\.performance[^']+)'/m.exec(out);
        assert.ok(siteQuery, out);
        assert.equal((await client.query(siteQuery[1]!)).rows.length, 10, 'the printed Search Console query works');
        const examples = readmeSql();
        assert.ok(examples.length >= 4, `${examples.length} README examples`);
        for (const sql of examples) {
          const res = await client.query(sql).catch((err: Error) => assert.fail(`README example fails: ${err.message}\n${sql}`));
          if (!/missing/.test(sql)) assert.ok(res.rows.length > 0, `README example returns rows:\n${sql}`);
        }
      } finally {
        await client.end();
      }
      const status = (await (await fetch(`${/status page:\s+(\S+)/.exec(out)![1]}api/status`)).json()) as {
        reports: Array<{ kind: string; property: string; gaps: number; storedDays: number }>;
      };
      assert.equal(status.reports.length, 5);
      const ga4 = status.reports.filter((r) => r.kind === 'ga4');
      assert.ok(ga4.length === 4 && ga4.every((r) => r.gaps === 0 && r.storedDays === 90), JSON.stringify(status.reports));
      assert.deepEqual(
        status.reports.filter((r) => r.kind === 'searchConsole').map((r) => [r.property, r.gaps, r.storedDays]),
        [['sc-domain:example.com', 0, 88]],
      );
      assert.match(out, /data is in after [\d.]+ s: 360 property-days and 88 site-days over 5 report tables/);
      process.stderr.write(`demo: data in ${tookMs} ms from start\n`);

      demo.child.kill('SIGINT');
      const exit = await demo.exited;
      assert.equal(exit.code, 0, demo.out.stderr);
      assert.match(demo.out.stdout, /demo stopped/);
      assert.equal(fs.existsSync(dataDir), false, 'data directory removed');
      assert.ok(demo.out.stdout.includes(`left behind: nothing (the embedded database and its data directory ${dataDir} were removed)`), demo.out.stdout);
      assert.doesNotMatch(demo.out.stdout + demo.out.stderr, /PRIVATE KEY|ya29\./);
    } finally {
      if (demo.child.exitCode === null) demo.child.kill('SIGKILL');
    }
  });

  it('refuses a schema that holds anything but demo data: one line, exit 2, the schema untouched', { timeout: 60_000 }, async () => {
    const db = await testDb('demorefuse');
    try {
      // a schema with collected data in it (the demo cannot know what; anything unmarked is refused)
      await db.query(`CREATE SCHEMA "${db.schema}"`);
      await db.query(`CREATE TABLE "${db.schema}".daily (property_id text, date date, sessions bigint)`);
      await db.query(`INSERT INTO "${db.schema}".daily VALUES ('123456', '2026-01-01', 42)`);
      const r = await runCli(['demo'], { env: { DATABASE_URL: db.url, GA_COLLECTOR_DB_SCHEMA: db.schema, GA_COLLECTOR_HTTP_PORT: '0' } });
      assert.equal(r.code, 2, r.stderr);
      assert.equal(
        r.stderr,
        `ga-collector demo: schema ${db.schema} already exists and is not the demo's (it may hold collected data); the demo writes simulated data only into a schema it creates: set GA_COLLECTOR_DB_SCHEMA to a new name\n`,
      );
      const tables = await db.query<{ table_name: string }>('SELECT table_name FROM information_schema.tables WHERE table_schema = $1', [db.schema]);
      assert.deepEqual(
        tables.map((t) => t.table_name),
        ['daily'],
        'nothing created',
      );
      assert.deepEqual(await db.query(`SELECT property_id, sessions::int FROM "${db.schema}".daily`), [{ property_id: '123456', sessions: 42 }]);
      // an empty schema someone made is not the demo's either
      await db.query(`CREATE SCHEMA "${db.schema}_empty"`);
      const empty = await runCli(['demo'], { env: { DATABASE_URL: db.url, GA_COLLECTOR_DB_SCHEMA: `${db.schema}_empty`, GA_COLLECTOR_HTTP_PORT: '0' } });
      assert.equal(empty.code, 2, empty.stderr);
    } finally {
      await db.query(`DROP SCHEMA IF EXISTS "${db.schema}_empty"`).catch(() => undefined);
      await db.drop();
    }
  });

  it("in a database of the user's, makes a schema of its own, and on stop says it is left behind and how to drop it", { timeout: 90_000 }, async () => {
    const db = await testDb('demoleft');
    const env = { DATABASE_URL: db.url, GA_COLLECTOR_DB_SCHEMA: db.schema, GA_COLLECTOR_HTTP_PORT: '0' };
    try {
      const first = startCli(['demo'], { env });
      await waitFor(() => /status page:/.test(first.out.stdout), { timeoutMs: 30_000, what: `the demo running\n${first.out.stdout}${first.out.stderr}` });
      assert.match(first.out.stdout, new RegExp(`schema ${db.schema}: created for the demo`));
      first.child.kill('SIGINT');
      assert.equal((await first.exited).code, 0, first.out.stderr);
      assert.match(first.out.stdout, new RegExp(`schema ${db.schema}_gsc \\(Search Console\\): created for the demo`));
      assert.ok(first.out.stdout.includes(`left behind: the demo's simulated data in schema ${db.schema} of postgres://`), first.out.stdout);
      assert.ok(first.out.stdout.includes(`(Search Console's in ${db.schema}_gsc)`), first.out.stdout);
      assert.ok(first.out.stdout.includes(`remove it with: DROP SCHEMA "${db.schema}", "${db.schema}_gsc" CASCADE`), first.out.stdout);
      const [mark] = await db.query<{ comment: string }>(`SELECT obj_description(oid, 'pg_namespace') AS comment FROM pg_namespace WHERE nspname = $1`, [
        db.schema,
      ]);
      assert.match(mark!.comment, /^ga-collector demo: /);

      // a second demo recognises the schema as the demo's own
      const second = startCli(['demo'], { env });
      await waitFor(() => /status page:/.test(second.out.stdout), {
        timeoutMs: 30_000,
        what: `the second demo running\n${second.out.stdout}${second.out.stderr}`,
      });
      assert.match(second.out.stdout, new RegExp(`schema ${db.schema}: the demo's, from an earlier run`));
      second.child.kill('SIGINT');
      assert.equal((await second.exited).code, 0, second.out.stderr);
      // a real collector pointed at it since: its data is not the demo's, so the demo stays out
      await db.query(
        `INSERT INTO "${db.schema}".fetch_days (property_id, report, date, fetched_at, row_count, time_zone) VALUES ('123456789', 'daily', '2024-01-01', now(), 0, 'UTC')`,
      );
      const third = await runCli(['demo'], { env, timeoutMs: 60_000 });
      assert.equal(third.code, 2, third.stderr);
      assert.match(
        third.stderr,
        new RegExp(`^ga-collector demo: schema ${db.schema} is marked as the demo's but holds data of other properties \\(123456789\\)`),
      );
      assert.equal(third.stderr.trim().split('\n').length, 1);
      await db.query(`DELETE FROM "${db.schema}".fetch_days WHERE property_id = '123456789'`);

      // the printed statement removes it
      await db.query(/remove it with: (DROP SCHEMA .*)$/m.exec(second.out.stdout)![1]!);
      assert.deepEqual(await db.query('SELECT 1 FROM pg_namespace WHERE nspname = ANY($1)', [[db.schema, `${db.schema}_gsc`]]), []);
    } finally {
      await db.query(`DROP SCHEMA IF EXISTS "${db.schema}_gsc" CASCADE`).catch(() => undefined);
      await db.drop();
    }
  });

  it('an http.host that is not an address of this machine: one line naming it, exit 2, nothing left running', { timeout: 60_000 }, async () => {
    const db = await testDb('demohost');
    try {
      // TEST-NET-1 (RFC 5737): never an address of this machine
      const r = await runCli(['demo'], {
        env: { DATABASE_URL: db.url, GA_COLLECTOR_DB_SCHEMA: db.schema, GA_COLLECTOR_HTTP_HOST: '192.0.2.1', GA_COLLECTOR_HTTP_PORT: '9' },
      });
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr, 'ga-collector demo: http.host 192.0.2.1 is not an address of this machine\n');
    } finally {
      await db.query(`DROP SCHEMA IF EXISTS "${db.schema}_gsc" CASCADE`).catch(() => undefined);
      await db.drop();
    }
  });

  it('refuses an unknown flag with one line and exit 2', async () => {
    const r = await runCli(['demo', '--bogus']);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, 'ga-collector: demo: unknown flag --bogus (flags: --keep, --data-dir, --help)\n');
  });
});
