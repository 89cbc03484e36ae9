/**
 * The one backoff formula (src/net/backoff.ts) every retry loop uses: a wait from the floor up to
 * a step that doubles with each failure and stops at the cap.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AbortedError } from '../src/errors.js';
import { backoffDelay, sleep } from '../src/net/backoff.js';

const lowest = () => 0;
/** the largest value Math.random can give */
const highest = () => 1 - Number.EPSILON;

describe('backoffDelay', () => {
  const api = { baseMs: 1_000, capMs: 32_000 };

  it('waits up to the base after the first failure, twice as long after each further one', () => {
    const steps = [1, 2, 3, 4, 5, 6].map((failures) => Math.round(backoffDelay(failures, api, highest)));
    assert.deepEqual(steps, [1_000, 2_000, 4_000, 8_000, 16_000, 32_000]);
  });

  it('never waits longer than the cap, however many failures', () => {
    for (const failures of [7, 20, 100, 10_000]) assert.equal(Math.round(backoffDelay(failures, api, highest)), 32_000);
  });

  it('spreads the wait over the whole step (full jitter): it can be anything from 0', () => {
    assert.equal(backoffDelay(5, api, lowest), 0);
    assert.equal(
      backoffDelay(5, api, () => 0.5),
      8_000,
    );
  });

  it('never waits less than the floor, when a caller sets one', () => {
    const tokens = { baseMs: 2_000, capMs: 60_000, floorMs: 500 };
    assert.equal(backoffDelay(1, tokens, lowest), 500);
    assert.equal(Math.round(backoffDelay(1, tokens, highest)), 2_000);
    assert.equal(Math.round(backoffDelay(10, tokens, highest)), 60_000);
  });

  it('keeps a floor above the step within the step', () => {
    assert.equal(backoffDelay(1, { baseMs: 10, capMs: 100, floorMs: 50 }, lowest), 10);
  });

  it('stays a finite number with a zero base', () => {
    assert.equal(backoffDelay(10_000, { baseMs: 0, capMs: 100 }, highest), 0);
  });

  it('gives random waits within the step when no random source is passed', () => {
    for (let round = 0; round < 100; round++) {
      const wait = backoffDelay(3, api);
      assert.ok(wait >= 0 && wait < 4_000, String(wait));
    }
  });
});

describe('sleep', () => {
  it('ends early with AbortedError when its signal aborts', async () => {
    const controller = new AbortController();
    const started = Date.now();
    const waiting = sleep(60_000, controller.signal);
    controller.abort();
    await assert.rejects(waiting, AbortedError);
    assert.ok(Date.now() - started < 30_000);
  });

  it('refuses to start on an aborted signal', async () => {
    await assert.rejects(sleep(10, AbortSignal.abort()), AbortedError);
  });
});
