/**
 * A row of `ga-collector check`'s table (check.ts): its status, what was checked, the finding and,
 * for a failing or warning row, the fix. Its own module so that the checks of each source
 * (searchConsole/check.ts beside check.ts's GA4 rows) build rows alike.
 */

export type CheckStatus = 'ok' | 'warn' | 'FAIL' | 'skip';

export interface CheckRow {
  status: CheckStatus;
  /** what was checked: "config", "key <account>" (or federated, user, attached, impersonated), "database", "property 123", "property 123 report daily", "site sc-domain:example.com report performance" */
  what: string;
  detail: string;
  /** for a failing or warning row: what to do */
  fix?: string;
}

export const ok = (what: string, detail: string): CheckRow => ({ status: 'ok', what, detail });
export const fail = (what: string, detail: string, fix: string): CheckRow => ({ status: 'FAIL', what, detail, fix });
export const skip = (what: string, detail: string): CheckRow => ({ status: 'skip', what, detail });
export const warn = (what: string, detail: string, fix: string): CheckRow => ({ status: 'warn', what, detail, fix });

export function plural(n: number, one: string, many: string): string {
  return n === 1 ? one : many;
}
