/**
 * When did a schedule last fire? node-cron only looks forward, but the refresh rule of the README
 * ("a date inside the window is due again when it was last fetched before the latest time the
 * property's schedule fired") needs the most recent past firing, also for a daemon that was down at
 * that moment. Times are the server's local time, as node-cron uses them.
 */
import cron from 'node-cron';

const MAX_DAYS_BACK = 800;

/** The latest instant <= now at which `pattern` fires, or null when none in about two years. */
export function previousFire(pattern: string, now: Date): Date | null {
  const fields = cron.parse(pattern);
  const task = cron.createTask(pattern, () => undefined);
  try {
    const hours = [...fields.hour].sort((a, b) => b - a);
    const minutes = [...fields.minute].sort((a, b) => b - a);
    const seconds = [...fields.second].sort((a, b) => b - a);
    const nowMs = Math.floor(now.getTime() / 1000) * 1000;
    for (let back = 0; back <= MAX_DAYS_BACK; back++) {
      const day = new Date(now.getFullYear(), now.getMonth(), now.getDate() - back);
      // the day itself must match (month, day of month, day of week); test it once
      const first = new Date(day.getFullYear(), day.getMonth(), day.getDate(), hours[hours.length - 1], minutes[minutes.length - 1], seconds[seconds.length - 1]);
      if (!task.match(first)) continue;
      for (const h of hours) {
        for (const m of minutes) {
          for (const s of seconds) {
            const t = new Date(day.getFullYear(), day.getMonth(), day.getDate(), h, m, s);
            if (t.getTime() <= nowMs && task.match(t)) return t;
          }
        }
      }
    }
    return null;
  } finally {
    void task.destroy();
  }
}

/** The next instant > now at which `pattern` fires. */
export function nextFire(pattern: string, now: Date): Date | null {
  const task = cron.createTask(pattern, () => undefined);
  try {
    const runs = (task as unknown as { getNextRuns?: (n: number) => Date[] }).getNextRuns?.(1);
    if (runs && runs[0] && runs[0].getTime() > now.getTime()) return runs[0];
    return task.getNextRun();
  } finally {
    void task.destroy();
  }
}
