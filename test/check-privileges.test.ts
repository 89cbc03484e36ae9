/**
 * `ga-collector check` names a missing privilege, and the GRANT that gives it, instead of "run
 * migrate" (which would only fail with it), for a role this test creates with limited privileges
 * and drops afterwards. `run` as that role stops with one line and exit 2.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { checkAll, formatTable, type CheckRow } from '../src/check.js';
import { loadConfig } from '../src/config/index.js';
import { createLogger } from '../src/log.js';
import { migrate } from '../src/store/migrations.js';
import { ensureReportTables } from '../src/store/reportTables.js';
import { runCli, startFake, testDb, writeConfig, type FakeSetup, type TestDb } from './helpers.js';

const P = '930001';
const logger = createLogger('silent');
const reports = { daily: { metrics: ['sessions'], startDate: '3daysAgo' } };

describe('ga-collector check names a missing privilege', () => {
  let db: TestDb;
  let g: FakeSetup;
  const role = `t_limited_${crypto.randomBytes(3).toString('hex')}`;
  let asRole: TestDb;
  let database: string;

  before(async () => {
    db = await testDb('privileges');
    g = await startFake([{ id: P, timeZone: 'UTC' }]);
    await db.query(`CREATE ROLE ${role} LOGIN`);
    const u = new URL(db.url);
    database = u.pathname.slice(1);
    u.username = role;
    u.password = '';
    asRole = { ...db, url: u.toString() };
  });
  after(async () => {
    await db.query(`DROP SCHEMA IF EXISTS "${db.schema}" CASCADE`).catch(() => undefined);
    await db.query(`DROP OWNED BY ${role}`).catch(() => undefined);
    await db.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
    await g.stop();
    await db.drop();
  });

  async function databaseRow(): Promise<CheckRow> {
    const file = writeConfig(g.dir, asRole, g, { properties: [{ id: P }], reports });
    const rows = await checkAll(loadConfig({ file, env: {} }), logger, { timeoutMs: 5_000 });
    const row = rows.find((r) => r.what === 'database');
    assert.ok(row, formatTable(rows));
    return row;
  }

  it('no schema yet, and the role may not create one in the database', async () => {
    const can = await db.query<{ ok: boolean }>(`SELECT has_database_privilege($1, current_database(), 'CREATE') AS ok`, [role]);
    assert.equal(can[0]!.ok, false, 'precondition: a fresh role may not create schemas');
    const row = await databaseRow();
    assert.equal(row.status, 'FAIL');
    assert.match(row.detail, new RegExp(`role ${role} may not create the schema ${db.schema} in database ${database}`));
    assert.match(
      row.fix!,
      new RegExp(`GRANT CREATE ON DATABASE ${database} TO ${role}; or create it for the role: CREATE SCHEMA ${db.schema} AUTHORIZATION ${role}`),
    );
    assert.doesNotMatch(row.detail, /pending/);
  });

  it('the schema exists, the role may use it but not CREATE in it', async () => {
    await db.query(`CREATE SCHEMA "${db.schema}"`);
    await db.query(`GRANT USAGE ON SCHEMA "${db.schema}" TO ${role}`);
    const row = await databaseRow();
    assert.equal(row.status, 'FAIL');
    assert.match(row.detail, new RegExp(`role ${role} may not CREATE in schema ${db.schema}`));
    assert.match(row.fix!, new RegExp(`GRANT CREATE ON SCHEMA ${db.schema} TO ${role}`));
    assert.doesNotMatch(row.detail, /pending/);
  });

  it('`run` as that role: one line naming the refusal, exit 2', async () => {
    const file = writeConfig(g.dir, asRole, g, { properties: [{ id: P }], reports, http: { port: 0 } });
    const r = await runCli(['run', '--config', file], { timeoutMs: 50_000 });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`^ga-collector: database: .*permission denied for schema ${db.schema} \\(\`ga-collector check\` names the missing privilege`),
    );
  });

  it('migrated by an administrator: the role lacks privileges on the tables, and does not own the report table', async () => {
    await migrate(db.pool, db.schema, logger);
    await ensureReportTables(db.pool, db.schema, [{ name: 'daily', dimensions: [], metrics: ['sessions'], startDate: '3daysAgo', refreshDays: 3 }], logger);
    await db.query(`GRANT CREATE ON SCHEMA "${db.schema}" TO ${role}`);
    const row = await databaseRow();
    assert.equal(row.status, 'FAIL');
    assert.match(row.detail, new RegExp(`role ${role} lacks SELECT, INSERT, UPDATE, DELETE on ${db.schema}\\.fetch_days`));
    assert.match(row.detail, new RegExp(`role ${role} does not own ${db.schema}\\.daily \\(owner postgres\\)`));
    assert.match(row.fix!, new RegExp(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${db.schema} TO ${role}`));
    assert.match(row.fix!, new RegExp(`ALTER TABLE ${db.schema}\\.daily OWNER TO ${role}`));
    assert.match(row.detail, new RegExp(`role ${role} lacks USAGE on ${db.schema}\\.report_definition_versions_id_seq`));
    assert.match(row.fix!, new RegExp(`GRANT USAGE ON ALL SEQUENCES IN SCHEMA ${db.schema} TO ${role}`));
  });

  it('with every privilege granted the row is ok, and the daemon starts as that role', async () => {
    await db.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "${db.schema}" TO ${role}`);
    await db.query(`GRANT USAGE ON ALL SEQUENCES IN SCHEMA "${db.schema}" TO ${role}`);
    await db.query(`ALTER TABLE "${db.schema}".daily OWNER TO ${role}`);
    await db.query(`ALTER VIEW "${db.schema}".daily_totals OWNER TO ${role}`);
    const row = await databaseRow();
    assert.equal(row.status, 'ok', `${row.detail}\n${row.fix ?? ''}`);
    const file = writeConfig(g.dir, asRole, g, { properties: [{ id: P }], reports });
    const r = await runCli(['run', '--once', '--config', file], { timeoutMs: 50_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await db.query(`SELECT 1 FROM "${db.schema}".fetch_days`)).length, 3);
  });
});
