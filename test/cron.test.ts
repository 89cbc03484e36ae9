/**
 * Cron arithmetic (src/schedule/cron.ts, cron-parser): previous and next firings, including across
 * daylight-saving changes in several time zones, where the refresh rule must neither miss a
 * firing nor see one that did not happen.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isValidSchedule, nextFire, previousFire } from '../src/schedule/cron.js';

const iso = (d: Date | null) => d?.toISOString() ?? null;
const at = (s: string) => new Date(s);

describe('previous and next firing', () => {
  it('a firing at exactly now is the previous one; the next is strictly later', () => {
    assert.equal(iso(previousFire('0 4 * * *', at('2024-01-10T04:00:00Z'), 'UTC')), '2024-01-10T04:00:00.000Z');
    assert.equal(iso(previousFire('0 4 * * *', at('2024-01-10T03:59:59.999Z'), 'UTC')), '2024-01-09T04:00:00.000Z');
    assert.equal(iso(nextFire('0 4 * * *', at('2024-01-10T04:00:00Z'), 'UTC')), '2024-01-11T04:00:00.000Z');
  });

  it('handles seconds, steps, days of the week and of the month', () => {
    assert.equal(iso(previousFire('*/10 * * * * *', at('2024-01-10T03:07:35.5Z'), 'UTC')), '2024-01-10T03:07:30.000Z');
    assert.equal(iso(previousFire('*/15 * * * *', at('2024-01-10T03:07:30Z'), 'UTC')), '2024-01-10T03:00:00.000Z');
    assert.equal(iso(previousFire('30 6 * * 1', at('2024-01-10T12:00:00Z'), 'UTC')), '2024-01-08T06:30:00.000Z'); // Monday the 8th
    assert.equal(iso(previousFire('0 0 29 2 *', at('2025-06-01T00:00:00Z'), 'UTC')), '2024-02-29T00:00:00.000Z'); // leap day, a year back
    assert.equal(iso(nextFire('0 0 29 2 *', at('2025-06-01T00:00:00Z'), 'UTC')), '2028-02-29T00:00:00.000Z');
  });

  it('keeps the wall-clock time across daylight-saving changes', () => {
    // 04:00 in New York is 09:00Z in winter and 08:00Z in summer; clocks go forward on 2026-03-08
    assert.equal(iso(previousFire('0 4 * * *', at('2026-03-08T12:00:00Z'), 'America/New_York')), '2026-03-08T08:00:00.000Z');
    assert.equal(iso(previousFire('0 4 * * *', at('2026-03-08T07:00:00Z'), 'America/New_York')), '2026-03-07T09:00:00.000Z');
    // Berlin goes forward on 2026-03-29, back on 2026-10-25
    assert.equal(iso(previousFire('0 4 * * *', at('2026-03-29T12:00:00Z'), 'Europe/Berlin')), '2026-03-29T02:00:00.000Z');
    assert.equal(iso(previousFire('0 4 * * *', at('2026-10-25T12:00:00Z'), 'Europe/Berlin')), '2026-10-25T03:00:00.000Z');
    // Auckland goes forward on 2026-09-27 at 02:00 (southern hemisphere): 04:00 that day is NZDT, UTC+13
    assert.equal(iso(previousFire('0 4 * * *', at('2026-09-27T12:00:00Z'), 'Pacific/Auckland')), '2026-09-26T15:00:00.000Z');
    assert.equal(iso(previousFire('0 4 * * *', at('2026-09-26T12:00:00Z'), 'Pacific/Auckland')), '2026-09-25T16:00:00.000Z');
  });

  it('a time that does not exist when clocks go forward does not fire that day', () => {
    // 02:30 does not happen in New York on 2026-03-08
    assert.equal(iso(previousFire('30 2 * * *', at('2026-03-08T12:00:00Z'), 'America/New_York')), '2026-03-07T07:30:00.000Z');
    assert.equal(iso(previousFire('30 2 * * *', at('2026-03-09T12:00:00Z'), 'America/New_York')), '2026-03-09T06:30:00.000Z');
  });

  it('a time that happens twice when clocks go back: the later one is the latest firing', () => {
    // 01:30 happens at 05:30Z (EDT) and 06:30Z (EST) in New York on 2026-11-01
    assert.equal(iso(previousFire('30 1 * * *', at('2026-11-01T12:00:00Z'), 'America/New_York')), '2026-11-01T06:30:00.000Z');
    assert.equal(iso(previousFire('30 1 * * *', at('2026-11-01T06:00:00Z'), 'America/New_York')), '2026-11-01T05:30:00.000Z');
  });

  it('previous firing <= now < next firing, hour by hour across a year in several zones', () => {
    for (const tz of ['America/Los_Angeles', 'Europe/London', 'Australia/Sydney', 'Asia/Kolkata']) {
      for (let t = Date.UTC(2026, 0, 1); t < Date.UTC(2027, 0, 1); t += 7 * 3_600_000 + 13 * 60_000) {
        const now = new Date(t);
        const prev = previousFire('15 */3 * * *', now, tz)!;
        const next = nextFire('15 */3 * * *', now, tz)!;
        assert.ok(prev.getTime() <= t && next.getTime() > t, `${tz} ${now.toISOString()}: ${iso(prev)} .. ${iso(next)}`);
        assert.ok(next.getTime() - prev.getTime() <= 4 * 3_600_000, `${tz} ${now.toISOString()}: firings at most 4 h apart (3 h, plus a DST hour)`);
      }
    }
  });

  it('uses the server time zone when none is given', () => {
    const now = new Date();
    const prev = previousFire('0 4 * * *', now)!;
    assert.equal(prev.getHours(), 4);
    assert.equal(prev.getMinutes(), 0);
  });
});

describe('schedule validation', () => {
  it('accepts what both node-cron and cron-parser read, refuses the rest', () => {
    for (const ok of ['0 4 * * *', '*/5 * * * * *', '0 4 * * mon-fri', '0 0 1 jan *']) assert.ok(isValidSchedule(ok), ok);
    for (const bad of ['', 'daily', '61 * * * *', '0 4 * *', 42, null]) assert.ok(!isValidSchedule(bad), String(bad));
  });
});
