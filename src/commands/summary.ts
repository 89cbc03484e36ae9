/**
 * The one line `run --once` and `backfill` end with: what was stored, what it took from Google,
 * what failed, how long it took. Requests and retries are read from the daemon's own counters
 * (`ga_collector_api_requests_total`, `ga_collector_api_retries_total`), so the line and /metrics
 * never disagree.
 */
import type { Metrics } from '../metrics.js';
import { plural } from './common.js';

/** What a job reported (schedule/runner.ts JobResult, the parts the summary needs). */
export interface JobOutcome {
  ok: boolean;
  dates: number;
  rows: number;
}

/** Sum of a counter's samples. */
async function total(counter: { get(): Promise<{ values: Array<{ value: number }> }> }): Promise<number> {
  return (await counter.get()).values.reduce((n, v) => n + v.value, 0);
}

/**
 * `run --once: stored 12 dates (3,456 rows) in 2 of 3 jobs; 15 requests, 2 retries; 1 failure; 4.2 s`.
 * `failures` counts failed jobs plus anything else the command failed on (a credential without a token).
 */
export async function summaryLine(
  what: string,
  metrics: Metrics,
  outcomes: JobOutcome[],
  extraFailures: number,
  startedAt: number,
  now = Date.now(),
): Promise<string> {
  const dates = outcomes.reduce((n, o) => n + o.dates, 0);
  const rows = outcomes.reduce((n, o) => n + o.rows, 0);
  // a job that failed after storing some dates stored them all the same (each batch is committed whole)
  const stored = outcomes.filter((o) => o.dates > 0).length;
  const failures = outcomes.filter((o) => !o.ok).length + extraFailures;
  const requests = await total(metrics.apiRequests);
  const retries = await total(metrics.apiRetries);
  const seconds = (now - startedAt) / 1000;
  return (
    `${what}: stored ${plural(dates, 'date')} (${plural(rows, 'row').replace(/^\d+/, rows.toLocaleString('en-US'))}) in ${stored} of ${plural(outcomes.length, 'job')}; ` +
    `${plural(requests, 'request')}, ${plural(retries, 'retry', 'retries')}; ${plural(failures, 'failure')}; ${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`
  );
}
