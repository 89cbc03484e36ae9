/**
 * The soak harness's verdicts (soak.ts): the stored data against the fake Google's generator and
 * the ledger, first against last quarter of the samples, and the Markdown tables it prints.
 */
import pg from 'pg';
import { generateReport, type FakeGoogle } from '@ga-collector/fake-google';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export function addDays(date: string, n: number): string {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

/** What the soak stored: the schema, the properties, how far back, the report's metrics (its one dimension besides date is deviceCategory). */
export interface DataLayout {
  schema: string;
  properties: Array<{ id: string }>;
  startDaysAgo: number;
  metrics: string[];
}

/**
 * Every stored date of every property against the ledger and the fake's generator, and the dates
 * missing between `startDaysAgo` and the property's yesterday (by the fake's calendar).
 */
export async function checkData(url: string, fake: FakeGoogle, layout: DataLayout): Promise<Check[]> {
  const { schema: SCHEMA, startDaysAgo: START_DAYS_AGO } = layout;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    let dates = 0;
    let rows = 0;
    const partial: string[] = [];
    const duplicated: string[] = [];
    const wrong: string[] = [];
    const missing: string[] = [];
    for (const p of layout.properties) {
      // one statement: one snapshot, so a date replaced meanwhile cannot look partial
      const { rows: found } = await client.query<{
        date: string;
        row_count: number | null;
        n: number;
        kinds: number;
        data: Array<[string, number, number]> | null;
      }>(
        `SELECT to_char(f.date, 'YYYY-MM-DD') AS date, f.row_count, count(d.*)::int AS n, count(DISTINCT d.device_category)::int AS kinds,
                json_agg(json_build_array(d.device_category, d.sessions, d.screen_page_views) ORDER BY d.device_category) FILTER (WHERE d.property_id IS NOT NULL) AS data
           FROM ${SCHEMA}.fetch_days f LEFT JOIN ${SCHEMA}.daily d ON d.property_id = f.property_id AND d.date = f.date
          WHERE f.property_id = $1 AND f.report = 'daily' GROUP BY f.date, f.row_count ORDER BY f.date`,
        [p.id],
      );
      const stored = new Set<string>();
      for (const r of found) {
        dates++;
        rows += r.n;
        stored.add(r.date);
        const where = `${p.id} ${r.date}`;
        if (r.row_count !== r.n) partial.push(`${where}: ledger ${r.row_count}, table ${r.n}`);
        if (r.kinds !== r.n) duplicated.push(`${where}: ${r.n} rows, ${r.kinds} distinct`);
        const want = generateReport({ propertyId: p.id, date: r.date, dimensions: ['deviceCategory'], metrics: layout.metrics })
          .map((x) => [x.dims[0], x.values[0], x.values[1]])
          .sort((a, b) => String(a[0]).localeCompare(String(b[0])));
        const got = (r.data ?? []).map((x) => [x[0], Number(x[1]), Number(x[2])]);
        if (JSON.stringify(got) !== JSON.stringify(want)) wrong.push(`${where}: ${JSON.stringify(got)} != ${JSON.stringify(want)}`);
      }
      const today = fake.todayOf(p.id);
      for (let d = addDays(today, -START_DAYS_AGO); d < today; d = addDays(d, 1)) if (!stored.has(d)) missing.push(`${p.id} ${d}`);
    }
    const few = (list: string[]) => (list.length ? `${list.length}: ${list.slice(0, 3).join('; ')}${list.length > 3 ? '; ...' : ''}` : 'none');
    return [
      { name: 'dates whole (ledger row_count = rows)', ok: dates > 0 && partial.length === 0, detail: `${dates} dates, ${rows} rows; partial ${few(partial)}` },
      { name: 'no duplicate rows', ok: duplicated.length === 0, detail: `duplicated ${few(duplicated)}` },
      { name: "rows are the fake's (generator)", ok: wrong.length === 0, detail: `differing ${few(wrong)}` },
      { name: `no date missing (${START_DAYS_AGO} days to yesterday)`, ok: missing.length === 0, detail: `missing ${few(missing)}` },
    ];
  } finally {
    await client.end();
  }
}

/** The averages of the first and the last quarter of the samples that have a value; null under 8 (too few to judge). */
export function quarterAverages<S extends { rss: number | null; fds: number | null }>(
  samples: S[],
  key: 'rss' | 'fds',
): { first: number; last: number } | null {
  const values = samples.filter((s) => s[key] !== null);
  const q = Math.floor(values.length / 4);
  if (q < 2) return null;
  const avg = (xs: S[]) => xs.reduce((a, s) => a + s[key]!, 0) / xs.length;
  return { first: avg(values.slice(0, q)), last: avg(values.slice(values.length - q)) };
}

/** A Markdown table. */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...rows.map(line)].join('\n');
}
