/**
 * The job watchdog: every job runs under an AbortController of its own, joined to the scheduler's
 * shutdown signal, and a job still running at its deadline (`fetch.jobDeadlineSeconds`) is stuck.
 *
 * Why a watchdog besides the request timeouts: a job waits on many things (the token, the request
 * slots, its advisory lock, PostgreSQL, a response that stalls mid-body), and a wait that a bug or
 * a library leaves without its own deadline would hold the job's slot, its database connection and
 * its property's lock for good, unattended for months. The deadline bounds all of them at once.
 *
 * A stuck job is logged (`job_stuck`), aborted through its own signal (the runner then releases
 * its lock and discards its connection, since a connection aborted mid-query is in an unknown
 * state), counted as a failure of its property and report, and its slot is freed. A job that does
 * not end within `abandonAfterMs` of its abort (a database call ignores signals) is let go: its
 * slot is freed anyway (`job_abandoned`), but it still counts as running, so the oldest-job gauge
 * keeps growing and the GaCollectorStuck alert tells someone to restart the daemon.
 */
import { performance } from 'node:perf_hooks';
import { AbortedError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { clampTimerMs } from '../net/deadline.js';
import type { JobBoard } from './jobBoard.js';
import type { JobResult } from './runner.js';

/** A job's result as the scheduler sees it: `stuck` when the watchdog ended it at its deadline. */
export type WatchedResult = JobResult & { stuck?: boolean };

type AbortReason = 'deadline' | 'shutdown' | 'reload';

export interface WatchdogOptions {
  logger: Logger;
  board: JobBoard;
  /** where the gauges and the counters go; none in tools that export no metrics */
  metrics?: Metrics | undefined;
  /** fetch.jobDeadlineSeconds */
  deadlineSeconds: number;
  /** after an abort, how long a job has to end before its slot is freed without it (default 10 s) */
  abandonAfterMs?: number | undefined;
  /** monotonic milliseconds (durations only); default performance.now */
  clock?: () => number;
  /** wall-clock milliseconds for the job board; default Date.now */
  wallClock?: () => number;
}

interface Watched {
  property: string;
  report: string;
  startedAt: number;
  controller: AbortController;
  abortedFor: AbortReason | null;
}

/**
 * Shutdown gives in-flight jobs `shutdown.graceSeconds` (30 s) and the service manager kills at
 * 45 s, so an aborted job gets 10 s to release its lock and connection before it is let go.
 */
const ABANDON_AFTER_MS = 10_000;

export class Watchdog {
  private readonly jobs = new Set<Watched>();
  private deadlineMs: number;
  private readonly abandonAfterMs: number;
  private readonly clock: () => number;
  private readonly wallClock: () => number;

  constructor(private readonly opts: WatchdogOptions) {
    this.deadlineMs = opts.deadlineSeconds * 1000;
    this.abandonAfterMs = opts.abandonAfterMs ?? ABANDON_AFTER_MS;
    this.clock = opts.clock ?? (() => performance.now());
    this.wallClock = opts.wallClock ?? Date.now;
    if (opts.metrics) {
      opts.metrics.jobDeadline.set(opts.deadlineSeconds);
      opts.metrics.oldestRunningJobAge = () => this.oldestAgeSeconds();
    }
  }

  /** A reloaded fetch.jobDeadlineSeconds applies to the jobs that start after it. */
  setDeadline(seconds: number): void {
    this.deadlineMs = seconds * 1000;
    this.opts.metrics?.jobDeadline.set(seconds);
  }

  /** The deadline new jobs get, milliseconds. */
  get deadline(): number {
    return this.deadlineMs;
  }

  /** Seconds the oldest job still running has run (abandoned ones included); 0 when none runs. */
  oldestAgeSeconds(): number {
    let oldest: number | null = null;
    for (const watched of this.jobs) if (oldest === null || watched.startedAt < oldest) oldest = watched.startedAt;
    return oldest === null ? 0 : Math.max(0, (this.clock() - oldest) / 1000);
  }

  /** Jobs running now, abandoned ones included. */
  get running(): number {
    return this.jobs.size;
  }

  /**
   * Runs `work` with a signal of the job's own, which aborts at the job's deadline or when
   * `shutdown` aborts. Resolves with the job's result, or, once the job was aborted and has not
   * ended within abandonAfterMs, with a failure (the job goes on unwatched by the caller).
   *
   * @param job      names the job in logs, metrics and the job board
   * @param shutdown the scheduler's signal: its abort aborts this job too (not counted as a failure)
   * @param work     the job; it must end soon after its signal aborts
   * @param removed  aborts when a reload removed the job's property or report (not a failure either)
   * @returns the result; `stuck: true` when the deadline ended it (then counted as a failure here)
   * @throws whatever `work` throws
   */
  async run(
    job: { property: string; report: string },
    shutdown: AbortSignal,
    work: (signal: AbortSignal) => Promise<JobResult>,
    removed?: AbortSignal,
  ): Promise<WatchedResult> {
    const watched: Watched = { ...job, startedAt: this.clock(), controller: new AbortController(), abortedFor: null };
    const deadlineMs = this.deadlineMs;
    const log = this.opts.logger.child({ property: job.property, report: job.report });
    let abandonTimer: NodeJS.Timeout | undefined;
    let letGo!: () => void;
    const abandoned = new Promise<null>((resolve) => (letGo = () => resolve(null)));

    const abort = (reason: AbortReason) => {
      if (watched.abortedFor) return;
      watched.abortedFor = reason;
      this.opts.metrics?.jobsAborted.inc({ reason });
      const why = { deadline: 'aborted: the job ran past its deadline', shutdown: 'aborted by shutdown', reload: 'aborted: removed by a configuration reload' };
      watched.controller.abort(new AbortedError(why[reason]));
      abandonTimer = setTimeout(() => {
        log.error(
          { event: 'job_abandoned', reason, durationMs: Math.round(this.clock() - watched.startedAt), waitedMs: this.abandonAfterMs },
          'the job did not end after its abort; its slot is freed, its database connection stays with it until it ends',
        );
        letGo();
      }, this.abandonAfterMs);
    };
    const onShutdown = () => abort('shutdown');
    const onRemoved = () => abort('reload');
    const deadlineTimer = setTimeout(() => {
      log.error(
        { event: 'job_stuck', durationMs: Math.round(this.clock() - watched.startedAt), deadlineSeconds: deadlineMs / 1000 },
        'job ran past its deadline; aborting it',
      );
      abort('deadline');
    }, clampTimerMs(deadlineMs));

    this.jobs.add(watched);
    if (shutdown.aborted) onShutdown();
    else shutdown.addEventListener('abort', onShutdown, { once: true });
    if (removed?.aborted) onRemoved();
    else removed?.addEventListener('abort', onRemoved, { once: true });
    const settled = Promise.resolve()
      .then(() => work(watched.controller.signal))
      .finally(() => {
        clearTimeout(deadlineTimer);
        clearTimeout(abandonTimer);
        shutdown.removeEventListener('abort', onShutdown);
        removed?.removeEventListener('abort', onRemoved);
        this.jobs.delete(watched);
      });
    const result = await Promise.race([settled, abandoned]);
    if (result?.ok) return result;
    if (watched.abortedFor === 'deadline') {
      const error = `ran past fetch.jobDeadlineSeconds (${deadlineMs / 1000} s) and was aborted${result ? '' : '; it did not end when aborted'}`;
      this.opts.metrics?.fetchRuns.inc({ property: job.property, report: job.report, outcome: 'failure' });
      this.opts.board.recordFailure(job.property, job.report, error, this.wallClock());
      return { ok: false, rows: 0, dates: 0, error, stuck: true };
    }
    return (
      result ?? {
        ok: false,
        rows: 0,
        dates: 0,
        error: `${watched.abortedFor === 'reload' ? 'removed by a configuration reload' : 'aborted by shutdown'}; it did not end when aborted`,
      }
    );
  }
}
