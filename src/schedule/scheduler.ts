/**
 * The schedule: a node-cron task per property fires its reports' jobs; a queue runs at most
 * jobSlots(concurrency) jobs at once (capacity.ts; each may hold a database connection for its
 * advisory lock; API requests are limited to `concurrency` separately). A job that is fired while
 * it runs is run once more after it, so a firing is never lost. Ticks never throw: failures are logged, counted and shown on the
 * status page by the runner. Each job runs under the watchdog (watchdog.ts), which ends it at its deadline and frees its slot.
 */
import cron, { type ScheduledTask } from 'node-cron';
import { configuredSources, sourceDefinition, type Config, type SourceConfig } from '../config/index.js';
import type { TokenManager } from '../auth/tokenManager.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { JobBoard } from './jobBoard.js';
import { AbortedError } from '../errors.js';
import { jobSlots } from './capacity.js';
import { nextFire, previousFire } from './cron.js';
import type { JobResult, JobRunner } from './runner.js';
import { Watchdog, type WatchedResult } from './watchdog.js';

interface QueueItem {
  property: SourceConfig;
  report: string;
  range?: { from: string; to: string };
  resolve: (r: JobResult) => void;
}

export interface SchedulerDeps {
  config: Config;
  runner: JobRunner;
  tokens: TokenManager;
  board: JobBoard;
  logger: Logger;
  now?: () => number;
  /** daemon mode: a job that hit the per-run bound is queued again behind the others */
  continueBacklog?: boolean;
  /** the most a deferred job waits past its quota window's reset, ms (spreads many deferred jobs); default 60 s */
  deferJitterMs?: number;
  /** the watchdog's gauges and counters (schedule/watchdog.ts) */
  metrics?: Metrics;
  /** test hook: how long an aborted job has to end before its slot is freed without it */
  abandonAfterMs?: number;
}

/** What a job that the configuration no longer has resolves to. */
const REMOVED: JobResult = { ok: false, rows: 0, dates: 0, error: 'removed by a configuration reload' };

/** A job the watchdog ended is tried again after a pause as long as its deadline, at most this. */
const STUCK_RETRY_MAX_MS = 15 * 60_000;

export class Scheduler {
  private tasks: ScheduledTask[] = [];
  private readonly queue: QueueItem[] = [];
  private readonly running = new Map<string, Promise<JobResult>>();
  /** per running job: aborts it alone (its property or report left the configuration) */
  private readonly jobAborts = new Map<string, AbortController>();
  private readonly rerun = new Set<string>();
  /** shutdown: aborted when the grace period is over; every job's own signal follows it */
  private readonly controller = new AbortController();
  private accepting = true;
  /** start() was called: the cron tasks run (a reload re-creates them only then) */
  private scheduling = false;
  private readonly now: () => number;
  private config: Config;
  /** the configured properties by id: every job is looked up here when queued and when started */
  private byId = new Map<string, SourceConfig>();
  private readonly watchdog: Watchdog;

  constructor(private readonly deps: SchedulerDeps) {
    this.now = deps.now ?? Date.now;
    this.config = deps.config;
    this.byId = new Map(configuredSources(deps.config).map((p) => [p.id, p]));
    this.watchdog = new Watchdog({
      logger: deps.logger,
      board: deps.board,
      metrics: deps.metrics,
      deadlineSeconds: deps.config.fetch.jobDeadlineSeconds,
      abandonAfterMs: deps.abandonAfterMs,
    });
  }

  /** Starts the cron tasks and runs at once whatever is due (gaps, a refresh missed while down). */
  start(): void {
    this.scheduling = true;
    const sources = configuredSources(this.config);
    for (const property of sources) {
      const task = cron.schedule(property.schedule, () => this.fire(property), { name: `${property.kind}-${property.id}`, noOverlap: false });
      this.tasks.push(task);
    }
    this.updateNextRuns(sources);
    for (const property of sources) for (const report of property.reports) void this.enqueue(property, report);
  }

  /**
   * SIGHUP: new properties, reports, schedules and credentials. Work of a property or report the
   * new configuration no longer has is cancelled wherever it is: its cron task, a deferred retry,
   * a place in the queue, a rerun noted for later. A running job of it is aborted: it stops before
   * its next request (dates already stored stay, each whole; the batch in hand is not written),
   * because a removed property may be one the principal must no longer read, and a long backfill
   * would otherwise go on fetching it for an hour. Jobs of what stays start with the new settings;
   * running ones finish under the definitions they started with.
   */
  async reload(config: Config): Promise<void> {
    for (const task of this.tasks) await task.destroy();
    this.tasks = [];
    this.config = config;
    this.byId = new Map(configuredSources(config).map((p) => [p.id, p]));
    const cancelled = (key: string, state: string) => {
      const [property, report] = key.split('\0');
      this.deps.logger.info({ event: 'job_cancelled', property, report, state }, 'removed by a configuration reload: job cancelled');
    };
    this.watchdog.setDeadline(config.fetch.jobDeadlineSeconds);
    for (let index = this.queue.length - 1; index >= 0; index--) {
      const item = this.queue[index]!;
      if (!this.current(item.property.id, item.report)) {
        this.queue.splice(index, 1);
        cancelled(jobKey(item.property.id, item.report), 'queued');
        item.resolve(REMOVED);
      }
    }
    for (const [key, timer] of this.timers) {
      if (this.currentKey(key)) continue;
      clearTimeout(timer);
      this.timers.delete(key);
      cancelled(key, 'deferred');
    }
    for (const key of this.rerun) if (!this.currentKey(key)) this.rerun.delete(key);
    for (const [key, abort] of this.jobAborts) {
      if (this.currentKey(key)) continue;
      cancelled(key, 'running');
      abort.abort(new AbortedError('aborted: removed by a configuration reload'));
    }
    if (this.accepting && this.scheduling) this.start();
  }

  /** Every job that is due now, once; resolves when all are done. */
  async runOnce(): Promise<JobResult[]> {
    const all = configuredSources(this.config).flatMap((p) => p.reports.map((r) => this.enqueue(p, r)));
    return Promise.all(all);
  }

  /** A backfill: the given range for one property (or site) and report, under the same lock as the scheduler. */
  backfill(property: SourceConfig, report: string, from: string, to: string): Promise<JobResult> {
    return this.enqueue(property, report, { from, to });
  }

  /** Stop firing, let running jobs finish within the grace period, then abort them. */
  async stop(graceMs: number): Promise<void> {
    this.accepting = false;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    for (const task of this.tasks) await task.destroy();
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

  private fire(property: SourceConfig): void {
    // this property only: 1,000 properties firing together must not compute 1,000,000 next runs
    this.updateNextRuns([property]);
    for (const report of property.reports) void this.enqueue(property, report);
  }

  private updateNextRuns(properties: SourceConfig[]): void {
    const now = new Date(this.now());
    const bySchedule = new Map<string, Date | null>(); // most properties share a schedule; nextFire costs ~0.15 ms
    for (const property of properties) {
      if (!bySchedule.has(property.schedule)) bySchedule.set(property.schedule, nextFire(property.schedule, now));
      const next = bySchedule.get(property.schedule)!;
      for (const report of property.reports) this.deps.board.job(property.id, report).nextRunAt = next ? next.getTime() : null;
    }
  }

  /** The configured property, when it is still configured with this report; else null. */
  private current(propertyId: string, report: string): SourceConfig | null {
    const property = this.byId.get(propertyId);
    return property && property.reports.includes(report) && sourceDefinition(this.config, property.kind, report) ? property : null;
  }

  private currentKey(key: string): SourceConfig | null {
    const [property, report] = key.split('\0') as [string, string];
    return this.current(property, report);
  }

  private enqueue(given: SourceConfig, report: string, range?: { from: string; to: string }): Promise<JobResult> {
    const key = jobKey(given.id, report);
    if (!this.accepting) return Promise.resolve({ ok: false, rows: 0, dates: 0, error: 'shutting down' });
    // a cron task, deferral or rerun made under an older configuration: what is configured now
    const property = this.current(given.id, report);
    if (!property) return Promise.resolve(REMOVED);
    if (!range) {
      const current = this.running.get(key);
      if (current) {
        // fired while running: run again afterwards, so this firing's refresh is not lost
        this.rerun.add(key);
        return current;
      }
      const queued = this.queue.find((q) => !q.range && q.property.id === property.id && q.report === report);
      if (queued)
        return new Promise((resolve) => {
          const prev = queued.resolve;
          queued.resolve = (result) => {
            prev(result);
            resolve(result);
          };
        });
    }
    return new Promise((resolve) => {
      this.queue.push({ property, report, ...(range ? { range } : {}), resolve });
      this.pump();
    });
  }

  private pump(): void {
    while (this.accepting && this.running.size < jobSlots(this.config.concurrency) && this.queue.length > 0) {
      const next = this.queue.findIndex((q) => !this.running.has(`${q.property.id}\0${q.report}`));
      if (next < 0) return;
      const item = this.queue.splice(next, 1)[0]!;
      const key = jobKey(item.property.id, item.report);
      const abort = new AbortController();
      this.jobAborts.set(key, abort);
      const outcome = this.execute(item, abort.signal).then((result) => {
        this.running.delete(key);
        this.jobAborts.delete(key);
        if (result.deferUntil !== undefined && !item.range && this.deps.continueBacklog === true) {
          // quota or server-error budget: come back when the window resets, not before
          this.rerun.delete(key);
          this.deferred(item.property, item.report, result.deferUntil);
          this.pump();
          return result;
        }
        if (result.retryAfterMs !== undefined && !item.range && this.deps.continueBacklog === true) {
          // the database went away: again after the runner's backoff, not only at the next firing
          this.rerun.delete(key);
          this.deferred(item.property, item.report, this.now() + result.retryAfterMs, 0);
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
      this.running.set(key, outcome);
      outcome.then(item.resolve, (err) => item.resolve({ ok: false, rows: 0, dates: 0, error: String(err) }));
    }
  }

  /** deferred jobs waiting for their quota window, by job */
  private readonly timers = new Map<string, NodeJS.Timeout>();

  private deferred(property: SourceConfig, report: string, at: number, jitterMs = this.deps.deferJitterMs ?? 60_000): void {
    const key = jobKey(property.id, report);
    if (!this.accepting || !this.current(property.id, report)) return;
    const delay = Math.max(1_000, at - this.now() + Math.random() * jitterMs);
    this.deps.logger.info({ event: 'job_deferred', property: property.id, report, until: new Date(this.now() + delay).toISOString() }, 'job deferred');
    const earlier = this.timers.get(key);
    if (earlier) clearTimeout(earlier);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      void this.enqueue(property, report);
    }, delay);
    timer.unref();
    this.timers.set(key, timer);
  }

  private async execute(item: QueueItem, jobSignal: AbortSignal): Promise<WatchedResult> {
    try {
      // queued under an older configuration: start with what is configured now (credentials, schedule)
      const property = this.current(item.property.id, item.report);
      if (!property) return REMOVED;
      const tokens = this.deps.tokens.forPrincipal(property);
      const lastFire = previousFire(property.schedule, new Date(this.now()));
      // each job gets a signal of its own (its deadline), joined to shutdown and to its removal by a reload
      return await this.watchdog.run(
        { property: property.id, report: item.report },
        this.controller.signal,
        (signal) =>
          this.deps.runner.run(
            { kind: property.kind, propertyId: property.id, report: item.report, tokens, lastFire, ...(item.range ? { range: item.range } : {}) },
            signal,
          ),
        jobSignal,
      );
    } catch (err) {
      // the runner never throws; this guards the loop against the unexpected
      this.deps.logger.error({ event: 'job_crashed', property: item.property.id, report: item.report, err: String(err) }, 'job crashed');
      return { ok: false, rows: 0, dates: 0, error: String(err) };
    }
  }
}

function jobKey(propertyId: string, report: string): string {
  return `${propertyId}\0${report}`;
}
