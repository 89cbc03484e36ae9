import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ReportDefinition } from '../src/config/index.js';
import { previousFire } from '../src/schedule/cron.js';
import { coversDefinition, plan, toRanges } from '../src/schedule/planner.js';
import { nearest } from '../src/ga4/fieldNames.js';
import { localDate } from '../src/time.js';

const def: ReportDefinition = { name: 'daily', dimensions: [], metrics: ['sessions'], startDate: '2024-01-01', refreshDays: 3 };
const at = (iso: string) => new Date(iso);
const stored = (date: string, fetchedAt: string, settled = false, definition: { dimensions: string[]; metrics: string[] } | null = null) => ({
  date,
  fetchedAt: at(fetchedAt),
  settled,
  definition,
});

describe('planner', () => {
  it('plans every date from startDate through yesterday on an empty ledger, as one range', () => {
    const p = plan({ def, timeZone: 'UTC', now: at('2024-01-11T10:00:00Z'), lastFire: at('2024-01-11T04:00:00Z'), ledger: [], maxDays: 400 });
    assert.equal(p.yesterday, '2024-01-10');
    assert.equal(p.due.length, 10);
    assert.deepEqual(p.ranges, [['2024-01-01', '2024-01-10']]);
  });

  it('refetches gaps and the refresh window only when fetched before the last firing', () => {
    const ledger = ['01', '02', '03', '05', '06', '07', '08', '09', '10'].map((d) => stored(`2024-01-${d}`, '2024-01-11T04:01:00Z', d < '08'));
    const p = plan({ def, timeZone: 'UTC', now: at('2024-01-11T10:00:00Z'), lastFire: at('2024-01-11T04:00:00Z'), ledger, maxDays: 400 });
    assert.deepEqual(p.due, ['2024-01-04'], 'window fetched after the firing: only the gap');
    const later = plan({ def, timeZone: 'UTC', now: at('2024-01-12T10:00:00Z'), lastFire: at('2024-01-12T04:00:00Z'), ledger, maxDays: 400 });
    assert.deepEqual(later.ranges, [
      ['2024-01-04', '2024-01-04'],
      ['2024-01-09', '2024-01-11'],
    ]);
    assert.equal(later.windowStart, '2024-01-09');
  });

  it('settles a date that left the window after its final refresh, refetches one that missed it', () => {
    const ledger = [
      stored('2024-01-07', '2024-01-10T04:00:00Z'), // fetched when it was 3 days old: final refresh done
      stored('2024-01-08', '2024-01-09T04:00:00Z'), // fetched when 1 day old, then the daemon was down
    ];
    const localDef = { ...def, startDate: '2024-01-07' };
    const p = plan({ def: localDef, timeZone: 'UTC', now: at('2024-01-13T10:00:00Z'), lastFire: at('2024-01-13T04:00:00Z'), ledger, maxDays: 400 });
    assert.deepEqual(p.settleOnly, ['2024-01-07']);
    assert.ok(p.due.includes('2024-01-08'));
  });

  it('bounds a backlog per run but always includes the refresh window', () => {
    const p = plan({ def: { ...def, startDate: '2023-01-01' }, timeZone: 'UTC', now: at('2024-01-11T10:00:00Z'), lastFire: null, ledger: [], maxDays: 30 });
    const fetched = p.ranges.reduce((n, [a, b]) => n + (Date.parse(b) - Date.parse(a)) / 86_400_000 + 1, 0);
    assert.equal(fetched, 30);
    assert.deepEqual(p.ranges, [
      ['2023-01-01', '2023-01-27'],
      ['2024-01-08', '2024-01-10'],
    ]);
    assert.equal(p.due.length, 375);
  });

  it("uses the property's own calendar: yesterday differs across time zones at the same instant", () => {
    const now = at('2024-03-10T11:30:00Z'); // 00:30 on the 11th in Auckland, 04:30 on the 10th in Los Angeles
    assert.equal(localDate(now.getTime(), 'Pacific/Auckland'), '2024-03-11');
    assert.equal(localDate(now.getTime(), 'America/Los_Angeles'), '2024-03-10');
    const nz = plan({ def, timeZone: 'Pacific/Auckland', now, lastFire: null, ledger: [], maxDays: 400 });
    const la = plan({ def, timeZone: 'America/Los_Angeles', now, lastFire: null, ledger: [], maxDays: 400 });
    assert.equal(nz.yesterday, '2024-03-10');
    assert.equal(la.yesterday, '2024-03-09');
  });

  it('never plans today or a later date, whatever the ledger holds', () => {
    const ledger = ['2024-01-11', '2024-01-12', '2024-01-15'].map((d) => stored(d, '2024-01-11T09:00:00Z'));
    const p = plan({ def, timeZone: 'UTC', now: at('2024-01-11T10:00:00Z'), lastFire: null, ledger, maxDays: 400 });
    assert.equal(p.due.at(-1), '2024-01-10');
    assert.ok(p.ranges.every(([, b]) => b <= '2024-01-10'));
  });

  it("fetches again a date stored before it was over (in the property's calendar)", () => {
    const ledger = [
      stored('2024-01-09', '2024-01-10T00:30:00Z', true), // fetched after its end: finished
      stored('2024-01-10', '2024-01-10T22:00:00Z', true), // fetched on the day itself: partial
    ];
    const p = plan({
      def: { ...def, startDate: '2024-01-09', refreshDays: 0 },
      timeZone: 'UTC',
      now: at('2024-01-12T10:00:00Z'),
      lastFire: null,
      ledger,
      maxDays: 400,
    });
    assert.deepEqual(p.due, ['2024-01-10', '2024-01-11']);
    assert.equal(p.unfinished, 1);
    // the same instant is still the 10th in Los Angeles: then that fetch was on the day itself too
    const la = plan({
      def: { ...def, startDate: '2024-01-09', refreshDays: 0 },
      timeZone: 'America/Los_Angeles',
      now: at('2024-01-12T10:00:00Z'),
      lastFire: null,
      ledger,
      maxDays: 400,
    });
    assert.equal(la.unfinished, 2);
  });

  it('a changed definition makes due only dates stored without one of its fields', () => {
    const old = { dimensions: [], metrics: ['sessions', 'totalUsers'] };
    const ledger = ['05', '06', '07', '08'].map((d) =>
      stored(`2024-01-${d}`, '2024-01-10T04:01:00Z', true, d < '07' ? old : { dimensions: [], metrics: ['sessions', 'newUsers'] }),
    );
    const grown = { ...def, startDate: '2024-01-05', refreshDays: 0, metrics: ['sessions', 'newUsers'] };
    const p = plan({ def: grown, timeZone: 'UTC', now: at('2024-01-09T10:00:00Z'), lastFire: at('2024-01-09T04:00:00Z'), ledger, maxDays: 400 });
    assert.deepEqual(p.due, ['2024-01-05', '2024-01-06']);
    assert.equal(p.stale, 2);
    assert.equal(coversDefinition(old, { dimensions: [], metrics: ['totalUsers'] }), true, 'a removed metric leaves a date as it is');
    assert.equal(
      coversDefinition({ dimensions: ['country', 'city'], metrics: ['sessions'] }, { dimensions: ['city', 'country'], metrics: ['sessions'] }),
      true,
    );
    assert.equal(
      coversDefinition({ dimensions: ['country', 'city'], metrics: ['sessions'] }, { dimensions: ['country'], metrics: ['sessions'] }),
      false,
      'another grain',
    );
  });

  it('suggests the nearest known name for a typo, and none for a stranger', () => {
    const metrics = ['sessions', 'totalUsers', 'screenPageViews', 'newUsers', 'eventCount'];
    assert.equal(nearest('sesions', metrics), 'sessions');
    assert.equal(nearest('Sessions', metrics), 'sessions');
    assert.equal(nearest('totalUesrs', metrics), 'totalUsers');
    assert.equal(nearest('screenPageView', metrics), 'screenPageViews');
    assert.equal(nearest('revenue', metrics), undefined);
  });

  it('groups contiguous dates into ranges', () => {
    assert.deepEqual(toRanges(['2024-02-27', '2024-02-28', '2024-02-29', '2024-03-01', '2024-03-03']), [
      ['2024-02-27', '2024-03-01'],
      ['2024-03-03', '2024-03-03'],
    ]);
  });
});

describe('previousFire', () => {
  it('finds the latest past firing in local time', () => {
    const now = new Date(2024, 0, 10, 3, 0, 0);
    assert.deepEqual(previousFire('0 4 * * *', now), new Date(2024, 0, 9, 4, 0, 0));
    assert.deepEqual(previousFire('0 4 * * *', new Date(2024, 0, 10, 4, 0, 0)), new Date(2024, 0, 10, 4, 0, 0));
    assert.deepEqual(previousFire('*/15 * * * *', new Date(2024, 0, 10, 3, 7, 30)), new Date(2024, 0, 10, 3, 0, 0));
    assert.deepEqual(previousFire('0 0 1 * *', now), new Date(2024, 0, 1, 0, 0, 0));
    assert.deepEqual(previousFire('30 6 * * 1', now), new Date(2024, 0, 8, 6, 30, 0)); // Monday the 8th
  });
});
