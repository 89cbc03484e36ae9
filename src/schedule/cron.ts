/**
 * Cron arithmetic: when did a schedule last fire, and when does it fire next? node-cron runs the
 * schedules but only looks forward; the refresh rule ("a date inside the window is due again when
 * it was last fetched before the latest time the property's schedule fired") needs the most recent
 * past firing, also for a daemon that was down at that moment. Both directions come from
 * cron-parser (what pg-boss uses), so the arithmetic is a kept library's, not ours.
 *
 * Times are the server's local time zone, as node-cron uses them, unless `timeZone` (an IANA
 * name) is given. Across daylight-saving changes (test/cron.test.ts): node-cron fires when the wall
 * clock matches, so a time that does not exist on the day clocks go forward (02:30 in New York on
 * the second Sunday of March) does not fire that day, and previousFire agrees; nextFire, used only
 * to show the next run, names 03:30 for it. A time that happens twice when clocks go back fires
 * once; previousFire names the later instant, so a refresh done between the two is at most
 * repeated once that night.
 */
import { CronExpressionParser } from 'cron-parser';
import cron from 'node-cron';

/**
 * The latest instant <= `now` at which `pattern` fires (5 fields, or 6 with seconds), or null when
 * it never fired in the searchable past.
 */
export function previousFire(pattern: string, now: Date, timeZone?: string): Date | null {
  // cron-parser's prev() is strictly before its current date; a firing at `now` itself counts
  const from = new Date(now.getTime() + 1);
  try {
    return CronExpressionParser.parse(pattern, { currentDate: from, ...(timeZone ? { tz: timeZone } : {}) })
      .prev()
      .toDate();
  } catch {
    return null;
  }
}

/** The next instant > `now` at which `pattern` fires, or null when it never fires again. */
export function nextFire(pattern: string, now: Date, timeZone?: string): Date | null {
  try {
    return CronExpressionParser.parse(pattern, { currentDate: now, ...(timeZone ? { tz: timeZone } : {}) })
      .next()
      .toDate();
  } catch {
    return null;
  }
}

/**
 * A schedule both libraries read the same way: node-cron runs it, cron-parser computes its
 * firings, so a pattern only one of them accepts is refused at configuration time.
 */
export function isValidSchedule(pattern: unknown): pattern is string {
  if (typeof pattern !== 'string' || !cron.validate(pattern)) return false;
  try {
    CronExpressionParser.parse(pattern);
    return true;
  } catch {
    return false;
  }
}
