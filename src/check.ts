/**
 * `ga-collector check`: everything a first run needs, tested now, as a table. Each failing row
 * says how to fix it. Exit 0 when every row is good, 1 otherwise.
 */
import { TokenManager, type TokenSource } from './auth/tokenManager.js';
import { readServiceAccountKey } from './auth/serviceAccountKey.js';
import { exchangeToken } from './auth/exchange.js';
import type { Config } from './config.js';
import { describe } from './errors.js';
import { Ga4Client } from './ga4/client.js';
import { Limiter } from './ga4/limiter.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics.js';
import { migrationState } from './store/migrations.js';
import { createPool } from './store/pool.js';
import { redactUrl } from './log.js';

export interface CheckRow {
  what: string;
  ok: boolean;
  detail: string;
}

export async function checkAll(config: Config, logger: Logger): Promise<CheckRow[]> {
  const rows: CheckRow[] = [{ what: 'config', ok: true, detail: `${config.properties.length} properties, ${Object.keys(config.reports).length} reports` }];
  const metrics = new Metrics({ defaultMetrics: false });
  const quiet = logger.child({}, { level: 'silent' });
  const tokens = new TokenManager({ tokenUrl: config.google.tokenUrl, logger: quiet, metrics });
  const usable = new Map<string, TokenSource>();
  for (const file of [...new Set(config.properties.map((p) => p.credentials))]) {
    try {
      const key = readServiceAccountKey(file);
      const source = tokens.forKeyFile(file);
      const t = await exchangeToken(key, { tokenUrl: source.tokenUrl, timeoutMs: 15_000 });
      await source.start();
      usable.set(file, source);
      rows.push({ what: `key ${key.clientEmail}`, ok: true, detail: `key ${key.privateKeyId || '?'} from ${file}; token expires ${new Date(t.expiresAt).toISOString()}` });
    } catch (err) {
      rows.push({ what: `key ${file}`, ok: false, detail: describe(err) });
    }
  }
  const pool = createPool(config.database.url, quiet, 2);
  try {
    const state = await migrationState(pool, config.database.schema);
    rows.push({
      what: 'database',
      ok: state.current === state.latest,
      detail:
        state.current === state.latest
          ? `reachable at ${redactUrl(config.database.url)}, schema ${config.database.schema} at migration ${state.current}`
          : `reachable, schema ${config.database.schema} at migration ${state.current} of ${state.latest}: run \`ga-collector migrate\` (the daemon also migrates at start)`,
    });
  } catch (err) {
    rows.push({ what: 'database', ok: false, detail: `${redactUrl(config.database.url)}: ${describe(err)}; check database.url / DATABASE_URL and that PostgreSQL is running` });
  } finally {
    await pool.end().catch(() => undefined);
  }
  const client = new Ga4Client({ apiRootUrl: config.google.apiRootUrl, timeoutMs: 30_000, maxAttempts: 2, limiter: new Limiter(config.concurrency), metrics, backoffBaseMs: 200 });
  for (const p of config.properties) {
    const tokensFor = usable.get(p.credentials);
    if (!tokensFor) {
      rows.push({ what: `property ${p.id}`, ok: false, detail: 'skipped: its key file has no working token (see above)' });
      continue;
    }
    const ctx = { propertyId: p.id, tokens: tokensFor, logger: quiet };
    let names: { dims: Set<string>; metrics: Set<string> } | null = null;
    try {
      const md = await client.getMetadata(ctx);
      names = { dims: new Set((md.dimensions ?? []).map((d) => d.apiName ?? '')), metrics: new Set((md.metrics ?? []).map((m) => m.apiName ?? '')) };
      const probe = await client.runReport(ctx, { dateRanges: [{ startDate: 'yesterday', endDate: 'yesterday' }], dimensions: [{ name: 'date' }], metrics: [{ name: 'sessions' }], limit: '1', returnPropertyQuota: true });
      const q = probe.propertyQuota?.tokensPerDay;
      rows.push({ what: `property ${p.id}`, ok: true, detail: `readable by ${tokensFor.account}; time zone ${probe.metadata?.timeZone ?? '?'}; ${q ? `${q.remaining ?? 0} quota tokens left today` : ''}`.trim() });
    } catch (err) {
      rows.push({ what: `property ${p.id}`, ok: false, detail: describe(err) });
      continue;
    }
    for (const r of p.reports) {
      const def = config.reports[r]!;
      const badDims = def.dimensions.filter((d) => !names!.dims.has(d));
      const badMetrics = def.metrics.filter((m) => !names!.metrics.has(m));
      const ok = badDims.length === 0 && badMetrics.length === 0;
      rows.push({
        what: `property ${p.id} report ${r}`,
        ok,
        detail: ok
          ? `${def.dimensions.length + 1} dimensions, ${def.metrics.length} metrics valid`
          : `unknown to this property: ${[...badDims.map((d) => `dimension ${d}`), ...badMetrics.map((m) => `metric ${m}`)].join(', ')}; fix reports.${r} (names are the Data API's apiName, see the property's metadata)`,
      });
    }
  }
  tokens.stop();
  return rows;
}

export function formatTable(rows: CheckRow[]): string {
  const w = Math.max(...rows.map((r) => r.what.length));
  return rows.map((r) => `${r.ok ? 'ok  ' : 'FAIL'}  ${r.what.padEnd(w)}  ${r.detail}`).join('\n');
}

export async function runCheck(config: Config, logger: Logger): Promise<number> {
  const rows = await checkAll(config, logger);
  process.stdout.write(`${formatTable(rows)}\n`);
  return rows.every((r) => r.ok) ? 0 : 1;
}
