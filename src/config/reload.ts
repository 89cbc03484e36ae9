/**
 * What a SIGHUP may change. The daemon's parts were built with some settings (the pool with the
 * database, the server with its address, the API client with its timeout and attempts, the token
 * manager with its endpoints, the logger with its format); a reload that changes one of them is
 * refused as a whole and names it, so the running configuration stays consistent.
 */
import type { Config } from './types.js';

/** The keys whose value differs between `prev` and `next` and that only a restart can apply. */
export function restartOnlyChanges(prev: Config, next: Config): string[] {
  const fixed: Array<[string, unknown, unknown]> = [
    ['database.url', prev.database.url, next.database.url],
    ['database.schema', prev.database.schema, next.database.schema],
    ['http.host', prev.http.host, next.http.host],
    ['http.port', prev.http.port, next.http.port],
    ['http.webConfigFile', prev.http.webConfigFile ?? '', next.http.webConfigFile ?? ''],
    ['google.tokenUrl', prev.google.tokenUrl, next.google.tokenUrl],
    ['google.iamCredentialsRootUrl', prev.google.iamCredentialsRootUrl, next.google.iamCredentialsRootUrl],
    ['google.apiRootUrl', prev.google.apiRootUrl, next.google.apiRootUrl],
    ['google.adminApiRootUrl', prev.google.adminApiRootUrl, next.google.adminApiRootUrl],
    ['google.searchConsoleRootUrl', prev.google.searchConsoleRootUrl, next.google.searchConsoleRootUrl],
    // the Search Console tables were migrated in it at start-up
    ['searchConsole.schema', prev.searchConsole.schema, next.searchConsole.schema],
    ['concurrency', prev.concurrency, next.concurrency],
    // the API client and the token manager were built with these
    ['fetch.timeoutSeconds', prev.fetch.timeoutSeconds, next.fetch.timeoutSeconds],
    ['fetch.maxAttempts', prev.fetch.maxAttempts, next.fetch.maxAttempts],
    ['fetch.maxServerErrorsPerHour', prev.fetch.maxServerErrorsPerHour, next.fetch.maxServerErrorsPerHour],
    ['fetch.perPropertyConcurrency', prev.fetch.perPropertyConcurrency, next.fetch.perPropertyConcurrency],
    ['log.format', prev.log.format, next.log.format],
  ];
  return fixed.filter(([, before, after]) => before !== after).map(([key]) => key);
}
