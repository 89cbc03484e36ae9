/**
 * Progress of long fetches: dates stored of the dates planned, rows, and an estimate of the time
 * left, per property and report. The runner only reports two facts (a job planned these ranges;
 * a batch of dates was stored); everything else lives here.
 *
 * - In the log: one `progress` line per job that moved, every `intervalMs` (10 s), so a backfill
 *   of years shows it is alive without a line per page; jobs that finish within the interval log
 *   nothing here (the runner's `job_succeeded` says it all).
 * - On a terminal (`backfill` with stderr a TTY): a progress bar on stderr, redrawn in place.
 *   Log lines written to the same terminal meanwhile go through TerminalLine, which takes the bar
 *   off its line before a log line and draws it again below, so the two never share a line.
 */
import { Writable } from 'node:stream';
import type { Logger } from './log.js';
import { daysBetween } from './time.js';

/** What the runner calls. */
export interface ProgressSink {
  /** A job will fetch these date ranges (inclusive). */
  start(propertyId: string, report: string, ranges: Array<[string, string]>): void;
  /** A batch of `dates` dates with `rows` rows was stored. */
  advance(propertyId: string, report: string, dates: number, rows: number): void;
}

interface Entry {
  propertyId: string;
  report: string;
  total: number;
  done: number;
  rows: number;
  startedAt: number;
  loggedDone: number;
}

export interface ProgressOptions {
  logger: Logger;
  intervalMs?: number;
  /** a terminal to draw a bar on (process.stderr when it is a TTY), or null */
  bar?: NodeJS.WritableStream | null;
  /** columns of the terminal, for the bar */
  columns?: number;
  now?: () => number;
}

export class ProgressTracker implements ProgressSink {
  private readonly entries = new Map<string, Entry>();
  private timer: NodeJS.Timeout | null = null;
  private readonly now: () => number;
  private lastDraw = 0;
  private drawn = false;

  constructor(private readonly opts: ProgressOptions) {
    this.now = opts.now ?? Date.now;
  }

  start(propertyId: string, report: string, ranges: Array<[string, string]>): void {
    const total = ranges.reduce((n, [a, b]) => n + daysBetween(a, b) + 1, 0);
    if (total === 0) return;
    this.entries.set(`${propertyId}\0${report}`, { propertyId, report, total, done: 0, rows: 0, startedAt: this.now(), loggedDone: 0 });
    this.timer ??= setInterval(() => this.tick(), this.opts.intervalMs ?? 10_000);
    this.timer.unref();
    this.draw(true);
  }

  advance(propertyId: string, report: string, dates: number, rows: number): void {
    const key = `${propertyId}\0${report}`;
    const e = this.entries.get(key);
    if (!e) return;
    e.done = Math.min(e.total, e.done + dates);
    e.rows += rows;
    this.draw(e.done >= e.total);
    if (e.done >= e.total) this.entries.delete(key);
    if (this.entries.size === 0) this.stop();
  }

  /** Ends the bar's line and the timer. Idempotent. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.drawn && this.opts.bar) this.opts.bar.write('\n');
    this.drawn = false;
  }

  /** Seconds left at the rate so far; null before the first batch. */
  static eta(e: { total: number; done: number; startedAt: number }, now: number): number | null {
    if (e.done === 0) return null;
    return Math.round((((now - e.startedAt) / e.done) * (e.total - e.done)) / 1000);
  }

  private tick(): void {
    const now = this.now();
    for (const e of this.entries.values()) {
      if (e.done === e.loggedDone) continue;
      e.loggedDone = e.done;
      this.opts.logger.info(
        {
          event: 'progress',
          property: e.propertyId,
          report: e.report,
          datesDone: e.done,
          datesTotal: e.total,
          rows: e.rows,
          percent: Math.floor((e.done / e.total) * 100),
          etaSeconds: ProgressTracker.eta(e, now),
        },
        'fetch progress',
      );
    }
  }

  /** Redraws the bar, at most 10 times a second unless forced. */
  private draw(force: boolean): void {
    const out = this.opts.bar;
    if (!out) return;
    const now = this.now();
    if (!force && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    const e = [...this.entries.values()].at(-1);
    if (!e) return;
    out.write(`\r\x1b[K${renderBar(e, now, this.opts.columns ?? 80)}`);
    this.drawn = true;
  }
}

/** `123456/daily [#########-----------]  45%  180/400 dates  12,345 rows  ~1m20s left` */
export function renderBar(
  e: { propertyId: string; report: string; total: number; done: number; rows: number; startedAt: number },
  now: number,
  columns: number,
): string {
  const pct = Math.floor((e.done / e.total) * 100);
  const eta = ProgressTracker.eta(e, now);
  const label = `${e.propertyId}/${e.report} `;
  const tail = ` ${String(pct).padStart(3)}%  ${e.done}/${e.total} dates  ${e.rows.toLocaleString('en-US')} rows${eta === null ? '' : e.done >= e.total ? '  done' : `  ~${duration(eta)} left`}`;
  const width = Math.max(10, Math.min(40, columns - label.length - tail.length - 3));
  const filled = Math.round((e.done / e.total) * width);
  return `${label}[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]${tail}`;
}

function duration(s: number): string {
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

const CLEAR = '\r\x1b[K';

/**
 * The terminal line the bar is drawn on (hand it to ProgressTracker as `bar`), and the way log
 * lines reach the same terminal without landing on the bar's line: `logDestination(stdout)` is
 * a stream for the logger that clears the bar, writes the log line, and draws the bar again.
 * Terminal writes are synchronous on Linux, so the three cannot be interleaved with a redraw.
 */
export class TerminalLine extends Writable {
  /** the bar as last drawn; '' when none is on screen */
  private shown = '';

  constructor(private readonly terminal: NodeJS.WriteStream) {
    super({ decodeStrings: false });
  }

  override _write(chunk: unknown, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    const text = String(chunk);
    if (text.startsWith(CLEAR)) this.shown = text.slice(CLEAR.length);
    else if (text.endsWith('\n')) this.shown = '';
    this.terminal.write(text);
    done();
  }

  /** A stream for the logger that writes to `out` (the terminal too) around the bar. */
  logDestination(out: NodeJS.WriteStream): Writable {
    return new Writable({
      decodeStrings: false,
      write: (chunk: unknown, _encoding, done) => {
        const bar = this.shown;
        if (bar) this.terminal.write(CLEAR);
        out.write(String(chunk));
        if (bar) this.terminal.write(`${CLEAR}${bar}`);
        done();
      },
    });
  }
}
