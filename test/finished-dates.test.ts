/**
 * Dates Google has not finished are never stored as finished: a backfill that ends after the
 * property's yesterday is refused (exit 2, naming that yesterday); no path — backfill, catch-up,
 * a clock that jumped ahead or back — writes today or a later date; and the status numbers count
 * finished dates only, also when an older version stored unfinished ones.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../src/config/index.js';
import { Daemon } from '../src/daemon.js';
import { createLogger } from '../src/log.js';
import { addDays, localDate } from '../src/time.js';
import { runCli, startFake, testDb, writeConfig, type FakeSetup, type TestDb } from './helpers.js';

const LA = '630001';
const TOKYO = '630002';
const DAY = 86_400_000;

/** The property's yesterday now, and the one a moment later (a test may straddle its midnight). */
function yesterdays(tz: string): Set<string> {
  return new Set([addDays(localDate(Date.now(), tz), -1), addDays(localDate(Date.now() + 120_000, tz), -1)]);
}

async function storedDates(db: TestDb, property: string): Promise<string[]> {
  const rows = await db.query<{ d: string }>(`SELECT to_char(date,'YYYY-MM-DD') AS d FROM "${db.schema}".fetch_days WHERE property_id = $1 ORDER BY 1`, [
    property,
  ]);
  return rows.map((r) => r.d);
}

describe('backfill refuses dates Google has not finished', () => {
  let db: TestDb;
  let g: FakeSetup;
  let config: string;
  before(async () => {
    db = await testDb('unfinished');
    g = await startFake([
      { id: LA, timeZone: 'America/Los_Angeles' },
      { id: TOKYO, timeZone: 'Asia/Tokyo' },
    ]);
    config = writeConfig(g.dir, db, g, { properties: [{ id: LA }, { id: TOKYO }], reports: { daily: { metrics: ['sessions'], startDate: '10daysAgo' } } });
  });
  after(async () => {
    await g.stop();
    await db.drop();
  });

  it("a range ending after the property's yesterday: exit 2, one line naming that yesterday; the time zone learned first", async () => {
    const ys = yesterdays('America/Los_Angeles');
    const y = [...ys][0]!;
    const from = addDays(y, -3);
    const to = addDays(y, 7);
    const r = await runCli(['backfill', '--config', config, '--property', LA, '--from', from, '--to', to]);
    assert.equal(r.code, 2, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    const m =
      /^ga-collector: backfill: --to (\S+) is after property 630001's yesterday, (\S+) \(America\/Los_Angeles\): Google has not finished later dates; end the range at \2 \(--to yesterday\)$/.exec(
        lines[0]!,
      );
    assert.ok(m, lines[0]);
    assert.equal(m[1], to);
    assert.ok(ys.has(m[2]!), `names the property's yesterday (${m[2]})`);
    assert.deepEqual(await storedDates(db, LA), [], 'nothing stored');
    // a property never seen: one tiny report told its time zone, which is kept
    const zones = await db.query<{ time_zone: string }>(`SELECT time_zone FROM "${db.schema}".properties WHERE property_id = $1`, [LA]);
    assert.deepEqual(
      zones.map((z) => z.time_zone),
      ['America/Los_Angeles'],
    );
    const probes = g.fake.events.filter((e) => e.kind === 'runReport' && e.property === LA);
    assert.equal(probes.length, 1);
    assert.equal(probes[0]!.limit, 1);

    // known now: refused again without a request
    const again = await runCli(['backfill', '--config', config, '--property', LA, '--from', 'yesterday', '--to', addDays(y, 1)]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /is after property 630001's yesterday/);
    assert.equal(g.fake.events.filter((e) => e.kind === 'runReport' && e.property === LA).length, 1);
  });

  it('today is never a backfill date; --from after --to is exit 2', async () => {
    for (const [from, to, message] of [
      [
        '3daysAgo',
        'today',
        /^ga-collector: backfill: --to today: GA has not finished today, so it is never stored; the newest date to ask for is yesterday\n$/,
      ],
      ['0daysAgo', 'yesterday', /^ga-collector: backfill: --from 0daysAgo: GA has not finished today/],
      ['yesterday', '3daysAgo', /^ga-collector: backfill: --from yesterday is after --to 3daysAgo\n$/],
      ['2026-02-10', '2026-02-01', /^ga-collector: backfill: --from 2026-02-10 is after --to 2026-02-01\n$/],
      ['2026-02-30', '2026-03-01', /^ga-collector: backfill: --from must be a date as YYYY-MM-DD, NdaysAgo or yesterday, got "2026-02-30"\n$/],
      ['last week', 'yesterday', /^ga-collector: backfill: --from must be a date as YYYY-MM-DD, NdaysAgo or yesterday, got "last week"\n$/],
    ] as const) {
      const r = await runCli(['backfill', '--config', config, '--property', TOKYO, '--from', from, '--to', to]);
      assert.equal(r.code, 2, `${from}..${to}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    // a date and a relative one are compared in the property's calendar
    const y = [...yesterdays('Asia/Tokyo')][0]!;
    const r = await runCli(['backfill', '--config', config, '--property', TOKYO, '--from', y, '--to', '3daysAgo']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`^ga-collector: backfill: --from ${y} is after --to 3daysAgo \\(\\d{4}-\\d{2}-\\d{2}\\)\\n$`));
    assert.deepEqual(await storedDates(db, TOKYO), []);
  });

  it("NdaysAgo and yesterday are the property's own dates; --to is included", async () => {
    const before = yesterdays('Asia/Tokyo');
    const r = await runCli(['backfill', '--config', config, '--property', TOKYO, '--from', '3daysAgo', '--to', 'yesterday']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^backfill 630002\/daily: 3 dates, \d+ rows \(\d{4}-\d{2}-\d{2} to \d{4}-\d{2}-\d{2}\)$/m);
    const dates = await storedDates(db, TOKYO);
    assert.equal(dates.length, 3);
    assert.ok(before.has(dates[2]!) || yesterdays('Asia/Tokyo').has(dates[2]!), `ends at Tokyo's yesterday (${dates[2]})`);
    assert.equal(dates[0], addDays(dates[2]!, -2));
  });
});

describe('no path writes an unfinished date', () => {
  let db: TestDb;
  let g: FakeSetup;
  let file: string;
  const tz = 'UTC';
  const P = '630010';
  before(async () => {
    db = await testDb('nofuture');
    g = await startFake([{ id: P, timeZone: tz }]);
    file = writeConfig(g.dir, db, g, { properties: [{ id: P }], reports: { daily: { metrics: ['sessions'], startDate: '6daysAgo', refreshDays: 2 } } });
  });
  after(async () => {
    await g.stop();
    await db.drop();
  });

  /** A daemon whose clock is `offsetMs` away from the real one (Google and the database keep the real time). */
  async function daemonAt(offsetMs: number): Promise<Daemon> {
    const daemon = new Daemon({ config: loadConfig({ file, env: {} }), logger: createLogger('silent'), now: () => Date.now() + offsetMs });
    await daemon.start({ upTo: 'services' });
    return daemon;
  }

  const realYesterday = () => addDays(localDate(Date.now(), tz), -1);

  it('a backfill asked past yesterday in-process stores through yesterday only', async () => {
    const daemon = await daemonAt(0);
    try {
      const y = realYesterday();
      const property = daemon.currentConfig.properties[0]!;
      const r = await daemon.scheduler.backfill(property, 'daily', addDays(y, -2), addDays(y, 5));
      assert.equal(r.ok, true, r.error);
      assert.equal(r.dates, 3);
      const dates = await storedDates(db, P);
      assert.ok(
        dates.every((d) => d <= realYesterday()),
        dates.join(' '),
      );
      assert.equal(dates.at(-1), y);
    } finally {
      await daemon.stop(0);
    }
  });

  it('a clock three days ahead plans and stores nothing after the real yesterday, and the status counts no future date', async () => {
    await db.query(`DELETE FROM "${db.schema}".fetch_days`);
    const daemon = await daemonAt(3 * DAY);
    try {
      const [r] = await daemon.scheduler.runOnce();
      assert.equal(r!.ok, true, r!.error);
      const dates = await storedDates(db, P);
      assert.equal(dates.at(-1), realYesterday());
      assert.equal(dates.length, 6);
      const st = (await daemon.statusDocument()).reports[0]!;
      assert.equal(st.dataThrough, realYesterday());
      assert.equal(st.storedDays, 6);
      assert.equal(st.gaps, 0);
    } finally {
      await daemon.stop(0);
    }
  });

  it('a clock four days behind writes nothing after its yesterday, and the status counts only dates through it', async () => {
    const daemon = await daemonAt(-4 * DAY);
    try {
      const [r] = await daemon.scheduler.runOnce();
      assert.equal(r!.ok, true, r!.error);
      const behindYesterday = addDays(localDate(Date.now() - 4 * DAY, tz), -1);
      const dates = await storedDates(db, P);
      assert.ok(
        dates.every((d) => d <= realYesterday()),
        dates.join(' '),
      );
      const st = (await daemon.statusDocument()).reports[0]!;
      assert.equal(st.dataThrough, behindYesterday);
      assert.equal(st.storedDays, dates.filter((d) => d <= behindYesterday).length);
    } finally {
      await daemon.stop(0);
    }
  });

  it('unfinished dates an older version stored: not counted, and fetched again once finished', async () => {
    await db.query(`DELETE FROM "${db.schema}".fetch_days`);
    const daemon = await daemonAt(0);
    try {
      const [first] = await daemon.scheduler.runOnce();
      assert.equal(first!.ok, true, first!.error);
      const y = realYesterday();
      const today = addDays(y, 1);
      // as an older ga-collector left them: today's partial day, six future dates, and yesterday
      // fetched while it was still yesterday
      await db.query(
        `INSERT INTO "${db.schema}".fetch_days (property_id, report, date, fetched_at, row_count, time_zone)
           SELECT $1, 'daily', d::date, now(), 0, 'UTC' FROM generate_series($2::date, $2::date + 6, '1 day') AS d`,
        [P, today],
      );
      await db.query(
        `UPDATE "${db.schema}".fetch_days SET fetched_at = $2::date + interval '12 hours', row_count = 0 WHERE property_id = $1 AND date = $2::date`,
        [P, y],
      );
      const st = (await daemon.statusDocument()).reports[0]!;
      assert.equal(st.dataThrough, addDays(y, -1), 'neither today, a future date nor a partial yesterday is data');
      assert.equal(st.storedDays, 5);
      assert.equal(st.gaps, 1, 'the partial yesterday is a gap');
      const [again] = await daemon.scheduler.runOnce();
      assert.equal(again!.ok, true, again!.error);
      const [row] = await db.query<{ row_count: number; finished: boolean }>(
        `SELECT row_count, fetched_at >= $2::date + interval '1 day' AS finished FROM "${db.schema}".fetch_days WHERE property_id = $1 AND date = $2::date`,
        [P, y],
      );
      assert.equal(row!.finished, true, 'yesterday fetched again');
      assert.ok(row!.row_count > 0);
      const after = (await daemon.statusDocument()).reports[0]!;
      assert.equal(after.dataThrough, y);
      assert.equal(after.storedDays, 6);
      assert.equal(after.gaps, 0);
    } finally {
      await daemon.stop(0);
    }
  });
});
