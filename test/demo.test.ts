/**
 * `ga-collector demo` as a new user runs it: no DATABASE_URL, so it starts its embedded
 * PostgreSQL; data must arrive, be queryable at the printed address, and a Ctrl-C must stop
 * everything and remove the database's directory.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import path from 'node:path';
import pg from 'pg';
import { ROOT, runCli, startCli, waitFor } from './helpers.js';

/** The SQL examples of README.md, one statement each. */
function readmeSql(): string[] {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks.flatMap((b) => b.split(/;\s*\n/)).map((s) => s.replace(/^--.*$/gm, '').trim()).filter(Boolean);
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
        assert.deepEqual(rows.map((r) => [r.property_id, Number(r.n)]), [['100001', 90], ['100002', 90]]);
        const printed = await client.query(query[2]!);
        assert.equal(printed.rows.length, 10, 'the printed query works');
        const examples = readmeSql();
        assert.ok(examples.length >= 4, `${examples.length} README examples`);
        for (const sql of examples) {
          const res = await client.query(sql).catch((err: Error) => assert.fail(`README example fails: ${err.message}\n${sql}`));
          if (!/missing/.test(sql)) assert.ok(res.rows.length > 0, `README example returns rows:\n${sql}`);
        }
      } finally {
        await client.end();
      }
      const status = await (await fetch(`${/status page:\s+(\S+)/.exec(out)![1]}api/status`)).json() as { reports: Array<{ gaps: number; storedDays: number }> };
      assert.equal(status.reports.length, 4);
      assert.ok(status.reports.every((r) => r.gaps === 0 && r.storedDays === 90), JSON.stringify(status.reports));
      process.stderr.write(`demo: data in ${tookMs} ms from start\n`);

      demo.child.kill('SIGINT');
      const exit = await demo.exited;
      assert.equal(exit.code, 0, demo.out.stderr);
      assert.match(demo.out.stdout, /demo stopped/);
      assert.equal(fs.existsSync(dataDir), false, 'data directory removed');
      assert.doesNotMatch(demo.out.stdout + demo.out.stderr, /PRIVATE KEY|ya29\./);
    } finally {
      if (demo.child.exitCode === null) demo.child.kill('SIGKILL');
    }
  });

  it('refuses an unknown flag with one line and exit 2', async () => {
    const r = await runCli(['demo', '--bogus']);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, 'ga-collector: demo: unknown flag --bogus (allowed: --keep, --data-dir)\n');
  });
});
