/**
 * Quota arithmetic (src/ga4/quota.ts): when each window resets, and when a response's
 * propertyQuota says the property is down to its reserve.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeferError } from '../src/errors.js';
import { ServerErrorBudget, nextHour, nextPacificMidnight, quotaBelowReserve, tokensRemainingSince } from '../src/ga4/quota.js';

const at = (iso: string) => Date.parse(iso);

describe('quota windows', () => {
  it('hourly windows reset on the next full hour', () => {
    assert.equal(nextHour(at('2024-05-01T10:20:00Z')), at('2024-05-01T11:00:00Z'));
    assert.equal(nextHour(at('2024-05-01T10:00:00Z')), at('2024-05-01T11:00:00Z'));
  });

  it('daily windows reset at midnight Pacific time, daylight saving or not', () => {
    // PDT (UTC-7) in May, PST (UTC-8) in January
    assert.ok(Math.abs(nextPacificMidnight(at('2024-05-01T12:00:00Z')) - at('2024-05-02T07:00:00Z')) <= 1000);
    assert.ok(Math.abs(nextPacificMidnight(at('2024-01-15T12:00:00Z')) - at('2024-01-16T08:00:00Z')) <= 1000);
    // the day the clocks go back is 25 hours long
    assert.ok(Math.abs(nextPacificMidnight(at('2024-11-03T08:00:00Z')) - at('2024-11-04T08:00:00Z')) <= 1000);
  });
});

describe('quotaBelowReserve', () => {
  const now = at('2024-05-01T10:20:00Z');

  it('is quiet while every window has more than the reserve left', () => {
    assert.equal(
      quotaBelowReserve({ tokensPerDay: { consumed: 10, remaining: 150_000 }, tokensPerHour: { consumed: 10, remaining: 30_000 } }, 0.1, now),
      undefined,
    );
  });

  it('defers to the next Pacific midnight when the daily tokens are below the reserve', () => {
    assert.equal(quotaBelowReserve({ tokensPerDay: { consumed: 10, remaining: 19_000 } }, 0.1, now), nextPacificMidnight(now));
  });

  it('defers to the next hour when the hourly or the per-project hourly tokens are below the reserve', () => {
    assert.equal(quotaBelowReserve({ tokensPerHour: { consumed: 10, remaining: 3_000 } }, 0.1, now), nextHour(now));
    assert.equal(quotaBelowReserve({ tokensPerProjectPerHour: { consumed: 10, remaining: 1_000 } }, 0.1, now), nextHour(now));
  });

  it('measures an Analytics 360 property (more than the standard limit accounted for) against ten times the limit', () => {
    // 300,000 left of 2,000,000: above a standard reserve, below a 360 one
    assert.equal(quotaBelowReserve({ tokensPerDay: { consumed: 1_700_000, remaining: 300_000 } }, 0.2, now), nextPacificMidnight(now));
  });

  it('reads a window without `remaining` as none left (proto3 leaves zeros out)', () => {
    assert.equal(quotaBelowReserve({ tokensPerHour: { consumed: 40_000 } }, 0.1, now), nextHour(now));
  });

  it('never defers with a reserve of 0', () => {
    assert.equal(quotaBelowReserve({ tokensPerDay: { consumed: 200_000 } }, 0, now), undefined);
  });
});

describe('ServerErrorBudget', () => {
  it('leaves a property alone once it answered its hourly budget of server errors, until the oldest is an hour old', () => {
    let clock = at('2024-05-01T10:00:00Z');
    const budget = new ServerErrorBudget(2, () => clock);
    budget.check('1');
    budget.record('1');
    clock += 60_000;
    budget.check('1');
    budget.record('1');
    assert.throws(
      () => budget.check('1'),
      (err: unknown) => err instanceof DeferError && err.code === 'server_errors' && err.resetAt === at('2024-05-01T11:00:00Z'),
    );
    budget.check('2');
    clock = at('2024-05-01T11:00:00Z') + 1;
    budget.check('1');
  });
});

describe('tokensRemainingSince', () => {
  const quota = { tokensPerDay: { consumed: 10, remaining: 150_000 }, tokensPerHour: { consumed: 10 } };

  it('keeps the windows that have not reset since the quota was seen; a window without `remaining` has none left', () => {
    const seen = at('2024-05-01T10:20:00Z');
    assert.deepEqual(tokensRemainingSince(quota, seen, at('2024-05-01T10:59:00Z')), { hour: 0, day: 150_000 });
    // the hour reset at 11:00; the day resets at midnight Pacific time (07:00 UTC in May)
    assert.deepEqual(tokensRemainingSince(quota, seen, at('2024-05-01T11:00:01Z')), { day: 150_000 });
    assert.deepEqual(tokensRemainingSince(quota, seen, at('2024-05-02T07:00:01Z')), {});
  });
});
