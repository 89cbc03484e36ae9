/**
 * The peer: the script a Node.js user writes with Google's official GA4 client,
 * `@google-analytics/data` (BetaAnalyticsDataClient), to load a report into PostgreSQL: it pages
 * with `limit`/`offset` (ordered by date and every dimension) until `rowCount` rows are read and writes each page with `COPY ... FROM
 * STDIN (FORMAT csv)` (pg-copy-streams) into a table like ga-collector's, then asks for the next
 * page. With `perDay` it asks one date per runReport (paged), a common default of such scripts and
 * connectors; otherwise the whole range at once.
 *
 * The client runs its REST transport (`fallback: true`) against the fake Google over plain HTTP
 * (`apiEndpoint` 127.0.0.1, `port`, `protocol: 'http'`), authenticated with the service-account key
 * file. Like every GAPIC client it signs its own JWTs with the key (`useJWTAccessWithScope`), so it
 * never calls the key's `token_uri`.
 *
 * Run by run.ts as a child process: `node --import tsx bench/peer.ts '<PeerArgs as JSON>'`. Prints
 * one JSON line: rows stored, requests made and the milliseconds from the first request to the last
 * commit (the client's construction and module loading are not counted).
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BetaAnalyticsDataClient } from '@google-analytics/data';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';

export interface PeerArgs {
  keyFile: string;
  /** the Data API's root, e.g. http://127.0.0.1:8080 */
  api: string;
  property: string;
  /** YYYY-MM-DD, inclusive */
  from: string;
  to: string;
  /** the report's dimensions after `date`, and its metrics */
  dimensions: string[];
  metrics: string[];
  perDay: boolean;
  pageSize: number;
  database: string;
  /** schema-qualified table and its columns (property id, date, dimensions, metrics), quoted */
  table: string;
  columns: string[];
}

export interface PeerResult {
  rows: number;
  requests: number;
  ms: number;
}

const csv = (s: string) => (/[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

function dates(from: string, to: string): string[] {
  const out: string[] = [];
  for (let t = Date.parse(from); t <= Date.parse(to); t += 86_400_000) out.push(new Date(t).toISOString().slice(0, 10));
  return out;
}

async function main(args: PeerArgs): Promise<PeerResult> {
  const api = new URL(args.api);
  const analytics = new BetaAnalyticsDataClient({
    keyFilename: args.keyFile,
    fallback: true,
    apiEndpoint: api.hostname,
    port: Number(api.port),
    protocol: api.protocol.replace(':', ''),
  });
  const db = new pg.Client({ connectionString: args.database });
  await db.connect();
  const copySql = `COPY ${args.table} (${args.columns.join(', ')}) FROM STDIN WITH (FORMAT csv)`;
  let rows = 0;
  let requests = 0;
  const started = performance.now();
  const ranges = args.perDay ? dates(args.from, args.to).map((d) => [d, d] as const) : [[args.from, args.to] as const];
  for (const [startDate, endDate] of ranges) {
    for (let offset = 0; ;) {
      const [response] = await analytics.runReport({
        property: `properties/${args.property}`,
        dateRanges: [{ startDate, endDate }],
        dimensions: ['date', ...args.dimensions].map((name) => ({ name })),
        metrics: args.metrics.map((name) => ({ name })),
        // a stable order, so that limit/offset pages neither overlap nor skip a row
        orderBys: ['date', ...args.dimensions].map((dimensionName) => ({ dimension: { dimensionName } })),
        limit: args.pageSize,
        offset,
      });
      requests++;
      const page = response.rows ?? [];
      let text = '';
      for (const r of page) {
        const values = [...(r.dimensionValues ?? []).map((v) => csv(v.value ?? '')), ...(r.metricValues ?? []).map((v) => v.value ?? '')];
        text += `${args.property},${values.join(',')}\n`;
      }
      await pipeline(Readable.from([text]), db.query(copyFrom(copySql)));
      rows += page.length;
      offset += page.length;
      if (page.length === 0 || offset >= Number(response.rowCount ?? 0)) break;
    }
  }
  const ms = performance.now() - started;
  await db.end();
  await analytics.close();
  return { rows, requests, ms };
}

main(JSON.parse(process.argv[2] ?? '{}') as PeerArgs).then(
  (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
  (err: unknown) => {
    process.stderr.write(`peer: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
