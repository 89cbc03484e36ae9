/**
 * The API clients of a daemon: the Data API's and Search Console's, sharing one request limiter
 * (`concurrency` counts the requests of both APIs) and one quota budget (the server-error budget
 * and deferrals, per property or site; schedule/sharedQuota.ts when daemons share a database).
 */
import type { Config } from './config/index.js';
import { Ga4Client } from './ga4/client.js';
import { Limiter } from './ga4/limiter.js';
import type { RequestBudget } from './ga4/quota.js';
import type { Metrics } from './metrics.js';
import { SearchConsoleClient } from './searchConsole/client.js';

export interface ApiClients {
  ga4: Ga4Client;
  searchConsole: SearchConsoleClient;
}

/** `backoffBaseMs` (tests) shortens every backoff; its cap is 32 times the base, as in production (1 s, 32 s). */
export function createApiClients(config: Config, metrics: Metrics, budget: RequestBudget, backoffBaseMs?: number): ApiClients {
  const api = {
    timeoutMs: config.fetch.timeoutSeconds * 1000,
    maxAttempts: config.fetch.maxAttempts,
    limiter: new Limiter(config.concurrency),
    metrics,
    maxServerErrorsPerHour: config.fetch.maxServerErrorsPerHour,
    perPropertyConcurrency: config.fetch.perPropertyConcurrency,
    budget,
    ...(backoffBaseMs !== undefined ? { backoffBaseMs, backoffCapMs: backoffBaseMs * 32 } : {}),
  };
  return {
    ga4: new Ga4Client({ apiRootUrl: config.google.apiRootUrl, ...api }),
    searchConsole: new SearchConsoleClient({ rootUrl: config.google.searchConsoleRootUrl, ...api }),
  };
}
