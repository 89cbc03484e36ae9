/**
 * The `discovery.*` keys once convict has read them: account and property ids as numeric strings
 * (the Admin API's resource names, `accounts/123` and `properties/456`, are taken too, since that
 * is how its answers and GA's URLs show them), and the reports of discovered properties.
 */
import { UsageError } from '../errors.js';
import type { DiscoveryConfig, ReportDefinition } from './types.js';

export interface DiscoveryInput {
  enabled: boolean;
  accounts: unknown[];
  exclude: unknown[];
  reports: string[] | null;
}

/** @throws UsageError naming the key, for an id that is not numeric or an unknown report */
export function normaliseDiscovery(input: DiscoveryInput, reports: Record<string, ReportDefinition>): DiscoveryConfig {
  const ids = (list: unknown[], key: string, prefix: string, what: string): string[] => [
    ...new Set(
      list.map((value, i) => {
        const id =
          typeof value === 'number' && Number.isSafeInteger(value)
            ? String(value)
            : typeof value === 'string'
              ? value.trim().replace(new RegExp(`^${prefix}/`), '')
              : '';
        if (!/^[0-9]{1,20}$/.test(id)) throw new UsageError(`config: ${key}[${i}]: must be a numeric ${what}, got ${JSON.stringify(value)}`);
        return id;
      }),
    ),
  ];
  const accounts = ids(input.accounts, 'discovery.accounts', 'accounts', 'GA account id (GA Admin > Account details)');
  const exclude = ids(input.exclude, 'discovery.exclude', 'properties', 'GA4 property id');
  const names = input.reports === null ? Object.keys(reports) : [...new Set(input.reports)];
  for (const name of names) {
    if (!reports[name]) throw new UsageError(`config: discovery.reports: unknown report ${JSON.stringify(name)} (defined: ${Object.keys(reports).join(', ')})`);
  }
  if (names.length === 0) throw new UsageError('config: discovery.reports: name at least one report, or leave the key out for every report');
  return { enabled: input.enabled, accounts, exclude, reports: names };
}
