/**
 * In-memory record of what the scheduler did, per property and report: the part of the status
 * page that the database does not hold (running now, last error, next run, recent failures).
 */

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

const MAX_FAILURES = 50;

export class StatusBoard {
  private readonly jobs = new Map<string, JobState>();
  readonly failures: FailureRecord[] = [];

  get(propertyId: string, report: string): JobState {
    const key = `${propertyId}\0${report}`;
    let s = this.jobs.get(key);
    if (!s) {
      s = { propertyId, report, running: false, lastRunAt: null, lastSuccessAt: null, lastError: null, lastErrorAt: null, datesPending: null, nextRunAt: null, timeZone: null };
      this.jobs.set(key, s);
    }
    return s;
  }

  all(): JobState[] {
    return [...this.jobs.values()].sort((a, b) => a.propertyId.localeCompare(b.propertyId) || a.report.localeCompare(b.report));
  }

  recordFailure(propertyId: string, report: string, error: string, at: number): void {
    const s = this.get(propertyId, report);
    s.lastError = error;
    s.lastErrorAt = at;
    this.failures.unshift({ at, propertyId, report, error });
    this.failures.length = Math.min(this.failures.length, MAX_FAILURES);
  }
}
