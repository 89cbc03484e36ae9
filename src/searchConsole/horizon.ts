/**
 * How far back Search Console serves data: Google says Search Console keeps 16 months of
 * performance data (https://support.google.com/webmasters/answer/7576553, the data the API's
 * searchanalytics.query serves); older dates answer no rows. So no date before the horizon is
 * planned, backfilled or counted as a gap, whatever a report's startDate says.
 */

/** Months of data Search Console keeps (Google's docs: "16 months"). */
export const SEARCH_CONSOLE_HORIZON_MONTHS = 16;

/**
 * The oldest date Search Console serves, given the Pacific `today` (`YYYY-MM-DD`): the same day
 * 16 months earlier, or that month's last day when it is shorter (2025-06-30 -> 2024-02-29).
 */
export function searchConsoleHorizon(today: string): string {
  const [y = 0, m = 1, d = 1] = today.split('-').map(Number);
  const months = y * 12 + (m - 1) - SEARCH_CONSOLE_HORIZON_MONTHS;
  const year = Math.floor(months / 12);
  const month = (months % 12) + 1;
  const lastDay = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return `${String(year).padStart(4, '0')}-${String(month).padStart(2, '0')}-${String(Math.min(d, lastDay)).padStart(2, '0')}`;
}
