/**
 * How many jobs run at once, and how many database connections that takes.
 *
 * `concurrency` bounds API requests in flight (the Limiter in ga4/client.ts). Jobs are bounded
 * separately and higher: a job also locks, plans and writes, and while it does, its request slot
 * would stand idle if every job held one. With as many jobs as request slots, 1,000 properties at
 * 100 ms API latency took 1.23 times the ideal (1,000 x 0.1 s / 10); with more jobs than slots the
 * database work of one job overlaps another's request (`npm run bench`).
 */

/** Jobs running at once: twice the request slots, at most 16 more than them. */
export function jobSlots(concurrency: number): number {
  return concurrency + Math.min(concurrency, 16);
}

/** Pool size: a connection per running job (it holds the job's advisory lock), and a few for status, readiness and metadata. */
export function poolSize(concurrency: number): number {
  return jobSlots(concurrency) + 4;
}
