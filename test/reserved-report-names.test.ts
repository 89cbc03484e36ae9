/**
 * Report names that collide with ga-collector's own relations, or with another report's, are
 * refused when the configuration is loaded: one line, exit 2, before any database work. The
 * reserved names are read from the migrations, and this file checks them against what a migrated
 * schema really holds, so the two cannot drift apart.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../src/config/index.js';
import { UsageError } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import { migrate } from '../src/store/migrations.js';
import { ensureReportTables, reportRelationNames } from '../src/store/reportTables.js';
import { ownRelationNames, relationNamesIn } from '../src/store/reservedNames.js';
import { runCli, testDb, tmpDir, writeJson, type TestDb } from './helpers.js';

const logger = createLogger('silent');

function configWith(reports: Record<string, unknown>, dir: string): string {
  const key = path.join(dir, 'key.json');
  if (!fs.existsSync(key))
    writeJson(key, { type: 'service_account', client_email: 'x@y.iam.gserviceaccount.com', private_key: 'unused', token_uri: 'http://127.0.0.1:9/token' });
  return writeJson(path.join(dir, `config-${Object.keys(reports).join('-')}.json`), {
    database: { url: 'postgres://nobody@127.0.0.1:9/none', schema: 'ga4' },
    properties: [{ id: '123', credentials: key }],
    reports,
  });
}

function refusal(reports: Record<string, unknown>, dir: string): string {
  try {
    loadConfig({ file: configWith(reports, dir), env: {}, requireCredentials: false });
  } catch (err) {
    assert.ok(err instanceof UsageError, `a UsageError, got ${String(err)}`);
    return err.message;
  }
  assert.fail(`accepted: ${Object.keys(reports).join(', ')}`);
}

const def = { metrics: ['sessions'] };
const withDims = { dimensions: ['country'], metrics: ['sessions'] };

describe('reserved report names', () => {
  let db: TestDb;
  let dir: string;
  before(async () => {
    db = await testDb('reserved');
    dir = tmpDir('reserved');
  });
  after(async () => {
    await db.drop();
  });

  it('the reserved names are exactly the relations a migrated schema holds', async () => {
    await migrate(db.pool, db.schema, logger);
    const actual = (
      await db.query<{ relname: string }>(`SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1`, [db.schema])
    ).map((r) => r.relname);
    assert.deepEqual([...ownRelationNames()].sort(), actual.sort());
    assert.ok(ownRelationNames().has('report_definitions'), 'the table the hand-kept list missed');
    assert.ok(!ownRelationNames().has('fetch_claims'), 'the table the hand-kept list invented');
  });

  it("a report's relations are exactly those reportRelationNames() names (table, totals, their indexes)", async () => {
    await ensureReportTables(
      db.pool,
      db.schema,
      [{ name: 'countries', dimensions: ['country'], metrics: ['sessions'], startDate: '3daysAgo', refreshDays: 1 }],
      logger,
    );
    const rels = (
      await db.query<{ relname: string }>(
        `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname LIKE 'countries%'`,
        [db.schema],
      )
    ).map((r) => r.relname);
    assert.deepEqual(rels.sort(), reportRelationNames('countries').sort());
  });

  for (const name of ['report_definitions', 'fetch_days', 'properties', 'schema_migrations', 'fetch_days_pkey']) {
    it(`a report named ${name} is refused, naming the key`, () => {
      const message = refusal({ [name]: def }, dir);
      assert.match(
        message,
        new RegExp(
          `^config: reports\\.${name}: ${name} is a name ga-collector's own relations take in the schema \\(fetch_days, job_failures, properties, quota_seen, quota_state, report_definition_versions, report_definitions, schema_migrations and their indexes\\); choose another report name$`,
        ),
      );
    });
  }

  it("a report named daily_totals next to a report daily is refused (its table would be daily's per-date totals)", () => {
    assert.equal(
      refusal({ daily: def, daily_totals: def }, dir),
      "config: reports.daily_totals: daily_totals is also the name of report daily's per-date totals; choose another report name",
    );
    assert.match(
      refusal({ daily_totals: def, daily: withDims }, dir),
      /^config: reports\.daily: its per-date totals would be daily_totals, which is also the name of report daily_totals's table; choose another report name$/,
    );
  });

  it("a report named after another report's index is refused", () => {
    assert.match(refusal({ daily: def, daily_property_date_idx: def }, dir), /^config: reports\.daily_property_date_idx: .*report daily's index/);
  });

  it('names that collide with nothing are accepted: a lone weekly_totals, and fetch_claims (no such table)', () => {
    const config = loadConfig({ file: configWith({ weekly_totals: def, fetch_claims: withDims, daily: def }, dir), env: {}, requireCredentials: false });
    assert.deepEqual(Object.keys(config.reports).sort(), ['daily', 'fetch_claims', 'weekly_totals']);
  });

  it('names taken by what a migration creates or implies are read from its SQL (indexes, sequences, constraints, renames)', () => {
    const names = relationNamesIn(`
      -- CREATE TABLE commented_out (a int);
      CREATE TABLE IF NOT EXISTS jobs (id bigserial PRIMARY KEY, key text UNIQUE, n int CONSTRAINT n_positive CHECK (n > 0), UNIQUE (key, n));
      CREATE INDEX ON jobs (n);
      CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS jobs_by_key ON jobs (key);
      CREATE OR REPLACE VIEW job_view AS SELECT 1;
      CREATE MATERIALIZED VIEW job_counts AS SELECT count(*) FROM jobs;
      CREATE SEQUENCE ticket_seq;
      DO $$ BEGIN EXECUTE 'CREATE TABLE dynamic (a int)'; END $$;
      ALTER TABLE jobs ADD COLUMN seq int GENERATED ALWAYS AS IDENTITY;
      ALTER TABLE jobs ADD CONSTRAINT jobs_n_check CHECK (n < 10);
      ALTER TABLE job_counts RENAME TO job_totals;`);
    assert.deepEqual(
      [...names].sort(),
      [
        'job_counts',
        'job_totals',
        'job_view',
        'jobs',
        'jobs_by_key',
        'jobs_id_seq',
        'jobs_key_key',
        'jobs_key_n_key',
        'jobs_n_check',
        'jobs_n_idx',
        'jobs_pkey',
        'jobs_seq_seq',
        'n_positive',
        'ticket_seq',
      ].sort(),
    );
  });

  it('ga-collector run with a report named report_definitions: one line, exit 2, before touching the database', async () => {
    const r = await runCli(['run', '--config', configWith({ report_definitions: def }, dir)], { timeoutMs: 30_000 });
    assert.equal(r.code, 2, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^ga-collector: config: reports\.report_definitions: report_definitions is a name ga-collector's own relations take/);
    assert.doesNotMatch(r.stderr + r.stdout, /property_id|at \S+ \(/);
  });
});
