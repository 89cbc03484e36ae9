/**
 * Search Console's horizon (searchConsole/horizon.ts: 16 months of data) where it is used: the
 * planner plans nothing older whatever startDate says, backfill --site refuses a --from before it,
 * status counts no gap before it; and backfill --site's suggestion of the configured site meant.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nearestSite, siteBackfillRange } from '../src/commands/backfillSite.js';
import type { Config, SearchConsoleReport } from '../src/config/index.js';
import { UsageError } from '../src/errors.js';
import { plan } from '../src/schedule/planner.js';
import { siteFirstDate, siteWindow } from '../src/schedule/siteJob.js';
import { SEARCH_CONSOLE_HORIZON_MONTHS, searchConsoleHorizon } from '../src/searchConsole/horizon.js';

// 2026-03-10 12:00 UTC is 05:00 on 2026-03-10 in Los Angeles
const NOW = Date.parse('2026-03-10T12:00:00Z');
const report = (startDate: string): SearchConsoleReport =>
  ({ name: 'performance', dimensions: ['query'], type: 'web', dataState: 'final', aggregationType: 'auto', startDate, refreshDays: 4 }) as SearchConsoleReport;
const config = (startDate: string) => ({ searchConsole: { reports: { performance: report(startDate) } } }) as unknown as Config;

describe('Search Console horizon', () => {
  it('is the same day 16 months back, or the end of a shorter month', () => {
    assert.equal(SEARCH_CONSOLE_HORIZON_MONTHS, 16);
    assert.equal(searchConsoleHorizon('2026-03-10'), '2024-11-10');
    assert.equal(searchConsoleHorizon('2025-06-30'), '2024-02-29');
    assert.equal(searchConsoleHorizon('2026-01-31'), '2024-09-30');
  });

  it('the planner plans nothing before it, whatever startDate says; a later startDate is kept', () => {
    const def = { name: 'performance', dimensions: ['query'], metrics: ['clicks'], startDate: '2020-01-01', refreshDays: 4 } as never;
    const p = plan({
      def,
      timeZone: 'America/Los_Angeles',
      now: new Date(NOW),
      lastFire: null,
      ledger: [],
      maxDays: 10_000,
      lagDays: 3,
      oldestDate: searchConsoleHorizon,
    });
    assert.equal(p.start, '2024-11-10');
    assert.equal(p.due[0], '2024-11-10');
    assert.equal(p.due.at(-1), '2026-03-07');
    assert.equal(siteFirstDate(report('2020-01-01'), NOW), '2024-11-10');
    assert.equal(siteFirstDate(report('30daysAgo'), NOW), '2026-02-08');
    // without oldestDate (GA4) the startDate is taken as it is
    assert.equal(plan({ def, timeZone: 'UTC', now: new Date(NOW), lastFire: null, ledger: [], maxDays: 1 }).start, '2020-01-01');
  });

  it('status counts no gap before it', () => {
    const w = siteWindow(report('2020-01-01'), NOW);
    assert.deepEqual([w.from, w.through], ['2024-11-10', '2026-03-07']);
    assert.equal(w.days, 483);
  });

  it('backfill --site refuses a --from before it, in one line naming the oldest date and the 16 months', () => {
    const args = (from: string, to: string) => ({ command: 'backfill' as const, once: false, dryRun: false, json: false, yes: false, from, to });
    assert.throws(
      () => siteBackfillRange(config('480daysAgo'), ['performance'], args('2024-01-01', '2024-01-05'), [NOW]),
      (err: unknown) =>
        err instanceof UsageError &&
        err.message ===
          'backfill: --from 2024-01-01 is before 2024-11-10, the oldest date Search Console serves (it keeps about 16 months of data, Pacific time); start the range at 2024-11-10 or later',
    );
    assert.throws(
      () => siteBackfillRange(config('480daysAgo'), ['performance'], args('600daysAgo', 'yesterday'), [NOW]),
      /--to yesterday \(2026-03-09\) is after 2026-03-07/,
    );
    assert.throws(
      () => siteBackfillRange(config('480daysAgo'), ['performance'], args('600daysAgo', '3daysAgo'), [NOW]),
      /--from 600daysAgo \(2024-07-18\) is before 2024-11-10/,
    );
    assert.deepEqual(siteBackfillRange(config('480daysAgo'), ['performance'], args('2024-11-10', '2024-11-12'), [NOW]), {
      from: '2024-11-10',
      to: '2024-11-12',
    });
  });
});

describe('backfill --site: the configured site meant', () => {
  const listed = ['https://www.example.com/', 'sc-domain:example.org', 'https://blog.example.net/'];
  it('suggests the one a slash, letter case, www or the sc-domain form away; nothing when unsure', () => {
    assert.equal(nearestSite('https://www.example.com', listed), 'https://www.example.com/');
    assert.equal(nearestSite('HTTPS://www.example.com/', listed), 'https://www.example.com/');
    assert.equal(nearestSite('sc-domain:example.com', listed), 'https://www.example.com/');
    assert.equal(nearestSite('https://example.org/', listed), 'sc-domain:example.org');
    assert.equal(nearestSite('http://www.example.org', listed), 'sc-domain:example.org');
    assert.equal(nearestSite('sc-domain:example.net', listed), undefined, 'another host');
    assert.equal(nearestSite('sc-domain:example.com', [...listed, 'sc-domain:www.example.com']), undefined, 'two of the same host');
    assert.equal(nearestSite('not a url', listed), undefined);
  });
});
