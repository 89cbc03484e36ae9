/**
 * One report's entry in the status document, a GA4 property's or a Search Console site's alike:
 * what the job board knows of its runs, what the ledger holds, and the gaps the caller counted in
 * the source's own window (status.ts for properties, statusSites.ts for sites).
 */
import type { JobState } from './schedule/jobBoard.js';
import type { Coverage } from './store/statusQueries.js';
import type { ReportStatus } from './statusDocument.js';

export interface ReportStatusInput {
  kind: ReportStatus['kind'];
  /** the property id, or the site's URL */
  property: string;
  report: string;
  timeZone: string | null;
  job: JobState;
  /** the ledger's dates of the pair, if any are stored */
  stored: Coverage | undefined;
  gaps: number;
  /** when a successful run was owed by the schedule (ms since the epoch); null: not yet */
  since: number | null;
  discovered: ReportStatus['discovered'];
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** Failing (the last run failed after the last success), stale (no success since the schedule fired), or with gaps. */
export function reportStatus(input: ReportStatusInput): ReportStatus {
  const { job, stored, gaps, since } = input;
  const lastSuccessMs = job.lastSuccessAt ?? stored?.lastFetchedMs ?? null;
  const failing = job.lastError !== null && (lastSuccessMs === null || (job.lastErrorAt ?? 0) > lastSuccessMs);
  const stale = since !== null && !job.running && (lastSuccessMs ?? 0) < since;
  return {
    property: input.property,
    report: input.report,
    timeZone: input.timeZone,
    running: job.running,
    lastSuccess: iso(lastSuccessMs),
    lastRun: iso(job.lastRunAt),
    dataThrough: stored?.lastDate ?? null,
    firstDate: stored?.firstDate ?? null,
    storedDays: stored?.days ?? 0,
    gaps,
    datesPending: job.datesPending,
    nextRun: iso(job.nextRunAt),
    lastError: job.lastError,
    lastErrorAt: iso(job.lastErrorAt),
    stale,
    attention: failing ? 'failing' : stale ? 'stale' : gaps > 0 ? 'gaps' : null,
    discovered: input.discovered,
    kind: input.kind,
  };
}
