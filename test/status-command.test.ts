/**
 * `ga-collector status`: from the database alone (Google is stopped for it), per property and
 * report: data through, gaps, last fetch, dates still revising, flagged dates, a failing run;
 * exit 1 on a gap or a failing run, 0 otherwise.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { StatusOutput } from '../src/commands/status.js';
import { addDays, localDate } from '../src/time.js';
import { SA_EMAIL, runCli, startFake, testDb, writeConfig, type FakeSetup, type TestDb } from './helpers.js';

const A = '640001';
const DENIED = '640002';

describe('ga-collector status', () => {
  let db: TestDb;
  let g: FakeSetup;
  let config: string;
  const yesterday = addDays(localDate(Date.now(), 'UTC'), -1);
  before(async () => {
    db = await testDb('statuscmd');
    g = await startFake([
      { id: A, timeZone: 'UTC' },
      { id: DENIED, timeZone: 'UTC', grant: false },
    ]);
    config = writeConfig(g.dir, db, g, {
      properties: [{ id: A }, { id: DENIED }],
      reports: { daily: { metrics: ['sessions'], startDate: '9daysAgo', refreshDays: 2 } },
    });
  });
  after(async () => {
    await g.stop();
    await db.drop();
  });

  const status = async (args: string[] = []) => runCli(['status', '--config', config, ...args], { env: {} });

  it('before anything ran: the schema is not there, every property is never fetched, exit 1', async () => {
    const r = await status();
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /schema \S+ not created yet: nothing stored/);
    assert.match(r.stdout, new RegExp(`^${A} +daily +\\? +- +all +never$`, 'm'));
    assert.match(r.stdout, /never fetched: time zone not known yet/);
    const counts = await db.query<{ s: string | null }>('SELECT to_regnamespace($1)::text AS s', [db.schema]);
    assert.equal(counts[0]!.s, null, 'status created nothing');
  });

  it('after a run: data through yesterday, revising dates, the failing property with its error; exit 1', async () => {
    const run = await runCli(['run', '--once', '--config', config]);
    assert.equal(run.code, 1, 'the denied property fails the run');
    await g.stop(); // status reads the database alone
    const r = await status();
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, new RegExp(`^${A} +daily +UTC +${yesterday} +0 +\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$`, 'm'));
    assert.match(r.stdout, new RegExp(`still revising: ${addDays(yesterday, -1)} to ${yesterday}`));
    assert.match(
      r.stdout,
      new RegExp(`failing \\(at [^)]+, will not heal by itself\\): .*${SA_EMAIL.replace(/\./g, '\\.')} has no access to GA4 property ${DENIED}`),
    );
    assert.match(r.stdout, /1 report with gaps|2 reports: \d with gaps, 1 failing/);

    const json = await status(['--json']);
    assert.equal(json.code, 1);
    const doc = JSON.parse(json.stdout) as StatusOutput;
    const a = doc.reports.find((x) => x.property === A)!;
    assert.equal(a.dataThrough, yesterday);
    assert.equal(a.storedDays, 9);
    assert.deepEqual(a.gaps, { days: 0, runs: [] });
    assert.equal(a.revising.days, 2);
    assert.equal(a.failure, null);
    const d = doc.reports.find((x) => x.property === DENIED)!;
    assert.equal(d.failure?.permanent, true);
    assert.equal(doc.summary.failing, 1);
    assert.equal(doc.ok, false);
  });

  it('lists gaps and flagged dates as date ranges, and data that left the configuration', async () => {
    const s = `"${db.schema}"`;
    const gap = [addDays(yesterday, -6), addDays(yesterday, -5), addDays(yesterday, -3)];
    await db.query(`DELETE FROM ${s}.fetch_days WHERE property_id = $1 AND date = ANY($2::date[])`, [A, gap]);
    await db.query(`UPDATE ${s}.fetch_days SET subject_to_thresholding = true WHERE property_id = $1 AND date = $2`, [A, addDays(yesterday, -7)]);
    await db.query(`UPDATE ${s}.fetch_days SET data_loss_from_other_row = true WHERE property_id = $1 AND date = $2`, [A, addDays(yesterday, -8)]);
    await db.query(`INSERT INTO ${s}.fetch_days (property_id, report, date, fetched_at, row_count, settled) VALUES ('999', 'daily', $1, now(), 1, true)`, [
      addDays(yesterday, -20),
    ]);
    const r = await status();
    assert.equal(r.code, 1);
    assert.match(r.stdout, new RegExp(`gaps: 3 dates: ${gap[0]} to ${gap[1]}, ${gap[2]}`));
    assert.match(r.stdout, new RegExp(`thresholding: 1 date: ${addDays(yesterday, -7)}`));
    assert.match(r.stdout, new RegExp(`\\(other\\) row: 1 date: ${addDays(yesterday, -8)}`));
    assert.match(r.stdout, /stored, but no longer configured .*prune.*\n +property 999 report daily: 1 date through/);
    const doc = JSON.parse((await status(['--json'])).stdout) as StatusOutput;
    const a = doc.reports.find((x) => x.property === A)!;
    assert.deepEqual(a.gaps, {
      days: 3,
      runs: [
        { from: gap[0], to: gap[1] },
        { from: gap[2], to: gap[2] },
      ],
    });
    assert.deepEqual(a.flagged.thresholding.runs, [{ from: addDays(yesterday, -7), to: addDays(yesterday, -7) }]);
    assert.deepEqual(doc.unconfigured, [{ kind: 'ga4', property: '999', report: 'daily', storedDays: 1, lastDate: addDays(yesterday, -20) }]);
  });

  it('exits 0 once the gaps are filled and the failing property is gone; a later success clears a failure', async () => {
    // the failing property leaves the configuration, a run fills the gaps
    g = await startFake([
      { id: A, timeZone: 'UTC' },
      { id: DENIED, timeZone: 'UTC', grant: false },
    ]);
    const reports = { daily: { metrics: ['sessions'], startDate: '9daysAgo', refreshDays: 2 } };
    const only = writeConfig(g.dir, db, g, { properties: [{ id: A }], reports });
    config = writeConfig(g.dir, db, g, { properties: [{ id: A }, { id: DENIED }], reports });
    const run = await runCli(['run', '--once', '--config', only]);
    assert.equal(run.code, 0, run.stderr);
    const r = await runCli(['status', '--config', only]);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /1 report: 0 with gaps, 0 failing/);
    // the denied property, granted now, succeeds: its failure is cleared
    g.fake.grant(SA_EMAIL, DENIED);
    assert.equal((await runCli(['run', '--once', '--config', config])).code, 0);
    const [{ n }] = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${db.schema}".job_failures`)) as [{ n: number }];
    assert.equal(n, 0, 'no failure left recorded');
    const all = await status();
    assert.equal(all.code, 0, all.stdout);
  });

  it('a database that refuses the login: one line, exit 2', async () => {
    const u = new URL(db.url);
    u.username = 'no_such_role_for_status';
    const r = await runCli(['status'], { env: { DATABASE_URL: u.toString(), GA_COLLECTOR_DB_SCHEMA: db.schema, GA_COLLECTOR_PROPERTIES: A } });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^ga-collector: database: role "no_such_role_for_status" does not exist/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });
});
