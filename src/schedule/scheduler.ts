/**
 * The schedule: a node-cron task per property fires its reports' jobs; a queue runs at most
 * jobSlots(concurrency) jobs at once (capacity.ts; each may hold a database connection for its
 * advisory lock; API requests are limited to `concurrency` separately). A job that is fired while
 * it runs is run once more after it, so a firing is never lost. Ticks never throw: failures are logged, counted and shown on the
 * status page by the runner. Each job runs under the watchdog (watchdog.ts), which ends it at its deadline and frees its slot.
 */
import cron, { type ScheduledTask } from 'node-cron';
import type { Config, PropertyConfig } from '../config.js';
import type { TokenManager } from '../auth/tokenManager.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { StatusBoard } from '../status.js';
import { jobSlots } from './capacity.js';
import { nextFire, previousFire } from './cron.js';
import type { JobResult, JobRunner } from './runner.js';
import { Watchdog, type WatchedResult } from './watchdog.js';

interface QueueItem {
  property: PropertyConfig;
  report: string;
  range?: { from: string; to: string };
  resolve: (r: JobResult) => void;
}

export interface SchedulerDeps {
  config: Config;
  runner: JobRunner;
  tokens: TokenManager;
  status: StatusBoard;
  logger: Logger;
  now?: () => number;
  /** daemon mode: a job that hit the per-run bound is queued again behind the others */
  continueBacklog?: boolean;
  /** the watchdog's gauges and counters (schedule/watchdog.ts) */
  metrics?: Metrics;
  /** test hook: how long an aborted job has to end before its slot is freed without it */
  abandonAfterMs?: number;
}

/** A job the watchdog ended is tried again after a pause as long as its deadline, at most this. */
const STUCK_RETRY_MAX_MS = 15 * 60_000;

export class Scheduler {
  private tasks: ScheduledTask[] = [];
  private readonly queue: QueueItem[] = [];
  private readonly running = new Map<string, Promise<JobResult>>();
  private readonly rerun = new Set<string>();
  /** shutdown: aborted when the grace period is over; every job's own signal follows it */
  private readonly controller = new AbortController();
  private accepting = true;
  private readonly now: () => number;
  private config: Config;
  private readonly watchdog: Watchdog;

  constructor(private readonly deps: SchedulerDeps) {
    this.now = deps.now ?? Date.now;
    this.config = deps.config;
    this.watchdog = new Watchdog({
      logger: deps.logger,
      status: deps.status,
      metrics: deps.metrics,
      deadlineSeconds: deps.config.fetch.jobDeadlineSeconds,
      abandonAfterMs: deps.abandonAfterMs,
    });
  }

  /** Starts the cron tasks and runs at once whatever is due (gaps, a refresh missed while down). */
  start(): void {
    for (const property of this.config.properties) {
      const task = cron.schedule(property.schedule, () => this.fire(property), { name: `property-${property.id}`, noOverlap: false });
      this.tasks.push(task);
    }
    this.updateNextRuns(this.config.properties);
    for (const property of this.config.properties) for (const report of property.reports) void this.enqueue(property, report);
  }

  /** SIGHUP: new properties, reports and schedules. Running jobs finish under the old definitions. */
  async reload(config: Config): Promise<void> {
    for (const t of this.tasks) await t.destroy();
    this.tasks = [];
    this.config = config;
    this.watchdog.setDeadline(config.fetch.jobDeadlineSeconds);
    const ids = new Set(config.properties.map((p) => p.id));
    // queued jobs of removed properties or reports are dropped
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const q = this.queue[i]!;
      if (!ids.has(q.property.id) || !config.properties.find((p) => p.id === q.property.id)!.reports.includes(q.report)) {
        this.queue.splice(i, 1);
        q.resolve({ ok: false, rows: 0, dates: 0, error: 'removed by a configuration reload' });
      }
    }
    if (this.accepting) this.start();
  }

  /** Every job that is due now, once; resolves when all are done. */
  async runOnce(): Promise<JobResult[]> {
    const all = this.config.properties.flatMap((p) => p.reports.map((r) => this.enqueue(p, r)));
    return Promise.all(all);
  }

  /** A backfill: the given range for one property and report, under the same lock as the scheduler. */
  backfill(property: PropertyConfig, report: string, from: string, to: string): Promise<JobResult> {
    return this.enqueue(property, report, { from, to });
  }

  /** Stop firing, let running jobs finish within the grace period, then abort them. */
  async stop(graceMs: number): Promise<void> {
    this.accepting = false;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const t of this.tasks) await t.destroy();
    this.tasks = [];
    for (const item of this.queue.splice(0)) item.resolve({ ok: false, rows: 0, dates: 0, error: 'not started: shutting down' });
    const inflight = [...this.running.values()];
    if (inflight.length === 0) return;
    this.deps.logger.info({ event: 'shutdown_waiting', jobs: inflight.length, graceMs }, 'waiting for running fetches');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      Promise.allSettled(inflight).then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.deps.logger.warn({ event: 'shutdown_aborting', jobs: this.running.size }, 'grace period over; aborting running fetches');
      this.abort();
      await Promise.allSettled([...this.running.values()]);
    }
  }

  abort(): void {
    this.controller.abort();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  private fire(property: PropertyConfig): void {
    // this property only: 1,000 properties firing together must not compute 1,000,000 next runs
    this.updateNextRuns([property]);
    for (const report of property.reports) void this.enqueue(property, report);
  }

  private updateNextRuns(properties: PropertyConfig[]): void {
    const now = new Date(this.now());
    const bySchedule = new Map<string, Date | null>(); // most properties share a schedule; nextFire costs ~0.15 ms
    for (const p of properties) {
      if (!bySchedule.has(p.schedule)) bySchedule.set(p.schedule, nextFire(p.schedule, now));
      const next = bySchedule.get(p.schedule)!;
      for (const r of p.reports) this.deps.status.get(p.id, r).nextRunAt = next ? next.getTime() : null;
    }
  }

  private enqueue(property: PropertyConfig, report: string, range?: { from: string; to: string }): Promise<JobResult> {
    const key = `${property.id}\0${report}`;
    if (!this.accepting) return Promise.resolve({ ok: false, rows: 0, dates: 0, error: 'shutting down' });
    if (!range) {
      const current = this.running.get(key);
      if (current) {
        // fired while running: run again afterwards, so this firing's refresh is not lost
        this.rerun.add(key);
        return current;
      }
      const queued = this.queue.find((q) => !q.range && q.property.id === property.id && q.report === report);
      if (queued) return new Promise((resolve) => {
        const prev = queued.resolve;
        queued.resolve = (r) => { prev(r); resolve(r); };
      });
    }
    return new Promise((resolve) => {
      this.queue.push({ property, report, ...(range ? { range } : {}), resolve });
      this.pump();
    });
  }

  private pump(): void {
    while (this.accepting && this.running.size < jobSlots(this.config.concurrency) && this.queue.length > 0) {
      const idx = this.queue.findIndex((q) => !this.running.has(`${q.property.id}\0${q.report}`));
      if (idx < 0) return;
      const item = this.queue.splice(idx, 1)[0]!;
      const key = `${item.property.id}\0${item.report}`;
      const p = this.execute(item).then((result) => {
        this.running.delete(key);
        if (result.deferUntil !== undefined && !item.range && this.deps.continueBacklog === true) {
          // quota or server-error budget: come back when the window resets, not before
          this.rerun.delete(key);
          this.deferred(item.property, item.report, result.deferUntil);
          this.pump();
          return result;
        }
        if (result.stuck === true && !item.range && this.deps.continueBacklog === true && !this.rerun.has(key) && this.accepting) {
          // the watchdog ended it: again after a pause, rather than only at the next firing (a day later)
          const pause = Math.min(this.watchdog.deadline, STUCK_RETRY_MAX_MS);
          this.deferred(item.property, item.report, this.now() + pause, pause / 10);
          this.pump();
          return result;
        }
        const backlog = !item.range && result.ok && (result.remaining ?? 0) > 0 && this.deps.continueBacklog === true;
        // fired meanwhile, or a backlog left: again, behind every job already queued
        if ((this.rerun.delete(key) || backlog) && this.accepting) void this.enqueue(item.property, item.report);
        this.pump();
        return result;
      });
      this.running.set(key, p);
      p.then(item.resolve, (err) => item.resolve({ ok: false, rows: 0, dates: 0, error: String(err) }));
    }
  }

  private readonly timers = new Set<NodeJS.Timeout>();

  private deferred(property: PropertyConfig, report: string, at: number, jitterMs = 60_000): void {
    const delay = Math.max(1_000, at - this.now() + Math.random() * jitterMs);
    this.deps.logger.info({ event: 'job_deferred', property: property.id, report, until: new Date(this.now() + delay).toISOString() }, 'job deferred');
    const t = setTimeout(() => {
      this.timers.delete(t);
      void this.enqueue(property, report);
    }, delay);
    t.unref();
    this.timers.add(t);
  }

  private async execute(item: QueueItem): Promise<WatchedResult> {
    try {
      const tokens = this.deps.tokens.forKeyFile(item.property.credentials);
      const lastFire = previousFire(item.property.schedule, new Date(this.now()));
      // each job gets a signal of its own (its deadline), joined to the shutdown signal
      return await this.watchdog.run({ property: item.property.id, report: item.report }, this.controller.signal, (signal) =>
        this.deps.runner.run({ propertyId: item.property.id, report: item.report, tokens, lastFire, ...(item.range ? { range: item.range } : {}) }, signal),
      );
    } catch (err) {
      // the runner never throws; this guards the loop against the unexpected
      this.deps.logger.error({ event: 'job_crashed', property: item.property.id, report: item.report, err: String(err) }, 'job crashed');
      return { ok: false, rows: 0, dates: 0, error: String(err) };
    }
  }
}
