/** Support for the HTTP server tests: a daemon view that needs no daemon. */
import type { DaemonView } from '../src/http/server.js';
import type { StatusDocument } from '../src/status.js';

/** A daemon view with one property and a chart, as the daemon would give. */
export const source: DaemonView = {
  async statusDocument() {
    const doc: StatusDocument = {
      generatedAt: new Date().toISOString(),
      version: 'test',
      database: { reachable: true },
      tokens: [],
      reports: [
        {
          kind: 'ga4',
          property: '1',
          report: 'daily',
          timeZone: 'UTC',
          running: false,
          lastSuccess: null,
          lastRun: null,
          dataThrough: '2026-01-02',
          firstDate: '2026-01-01',
          storedDays: 2,
          gaps: 0,
          datesPending: 0,
          nextRun: null,
          lastError: null,
          lastErrorAt: null,
          stale: false,
          attention: null,
        },
      ],
      recentFailures: [],
      series: [
        {
          kind: 'ga4',
          property: '1',
          report: 'daily',
          metric: 'sessions',
          source: 'totals',
          points: [
            { date: '2026-01-01', value: 3 },
            { date: '2026-01-02', value: 5 },
          ],
        },
      ],
      lastReload: null,
      summary: { properties: 1, sites: 0, needAttention: 0, reports: 1, failing: 0, stale: 0, withGaps: 0, running: 0 },
      page: null,
    };
    return doc;
  },
  async readiness() {
    return { ready: true, reasons: [] };
  },
};
