/**
 * The job board: what the database does not hold about each property's and report's job, kept
 * in memory while the daemon runs: running now, last run and success, last error, dates pending,
 * next run, time zone, and the recent failures. The scheduler, the runner and the watchdog write
 * it; the status document (src/status.ts) reads it.
 */

/** One property's and report's job, as the board knows it. Times are ms since the epoch. */
export interface JobState {
  propertyId: string;
  report: string;
  running: boolean;
  lastRunAt: number | null;
  lastSuccessAt: number | null;
  lastError: string | null;
  lastErrorAt: number | null;
  datesPending: number | null;
  nextRunAt: number | null;
  timeZone: string | null;
}

export interface FailureRecord {
  at: number;
  propertyId: string;
  report: string;
  error: string;
}

/** The recent failures kept, newest first. */
const MAX_FAILURES = 50;

export class JobBoard {
  private readonly jobs = new Map<string, JobState>();
  readonly failures: FailureRecord[] = [];
  /** bumped whenever dates are stored: a ledger read from before is out of date */
  ledgerWrites = 0;

  /** Dates were stored (the runner, after each batch). */
  storedDates(): void {
    this.ledgerWrites += 1;
  }

  /** The job's state, created (idle, nothing known) on first use; callers update it in place. */
  job(propertyId: string, report: string): JobState {
    const key = `${propertyId}\0${report}`;
    let state = this.jobs.get(key);
    if (!state) {
      state = {
        propertyId,
        report,
        running: false,
        lastRunAt: null,
        lastSuccessAt: null,
        lastError: null,
        lastErrorAt: null,
        datesPending: null,
        nextRunAt: null,
        timeZone: null,
      };
      this.jobs.set(key, state);
    }
    return state;
  }

  recordFailure(propertyId: string, report: string, error: string, at: number): void {
    const state = this.job(propertyId, report);
    state.lastError = error;
    state.lastErrorAt = at;
    this.failures.unshift({ at, propertyId, report, error });
    this.failures.length = Math.min(this.failures.length, MAX_FAILURES);
  }
}
