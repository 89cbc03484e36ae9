/**
 * `ga-collector check`: everything a first run needs, tried now, as a table: the config, each
 * principal (its kind, who it is, where its token came from, expiry: one exchange made), the
 * database (reachable, migrations current), discovery when it is on (the Admin API's listing
 * through the filters), each property (access, time zone) and each of its reports (dimensions and
 * metrics known to the property, by the Data API's getMetadata), then the Search Console schema and
 * sites (checkSites.ts). Every failing row carries the fix. A `warn` row (a key
 * file others can read, a key whose line breaks arrived mangled, a per-property concurrency
 * beyond a standard property's or above concurrency: checkConfig.ts) carries its fix too but does not
 * fail the check: the daemon runs with it (and logs a key file's warnings at start). Exit 0 when every
 * row is good or a warning, 1 otherwise. Nothing here writes: migrations are reported, not applied.
 */
import { TOKEN_CREATOR_ROLE } from './auth/impersonation.js';
import { TokenManager, exchangeDeadlineMs, type TokenSource } from './auth/tokenManager.js';
import type { Config } from './config/index.js';
import { AdminClient } from './discovery/adminClient.js';
import { applyFilters, flatten } from './discovery/discovery.js';
import { PermanentError, RetryableError, describe } from './errors.js';
import { Ga4Client } from './ga4/client.js';
import { SearchConsoleClient } from './searchConsole/client.js';
import { timeZoneProbeRequest } from './ga4/requests.js';
import type { MetadataResponse } from './ga4/responses.js';
import { deprecatedFields, listUnknown, unknownFields, unknownFieldsFix } from './ga4/fieldNames.js';
import { Limiter } from './ga4/limiter.js';
import type { Logger } from './log.js';
import { redactUrl } from './log.js';
import { Metrics } from './metrics.js';
import { migrationState } from './store/migrations.js';
import { createPool } from './store/pool.js';
import { describeDbError } from './store/dbErrors.js';
import { missingPrivileges } from './store/privileges.js';
import { reportRelationNames } from './store/reportTables.js';
import { fail, ok, plural, skip, warn, type CheckRow, type CheckStatus } from './checkRow.js';
import { checkSearchConsoleSchema, checkSites } from './checkSites.js';
import { configWarnings } from './checkConfig.js';

export type { CheckRow } from './checkRow.js';

export interface CheckOptions {
  /** per request; a down endpoint should not hold the table for minutes */
  timeoutMs?: number;
  now?: () => number;
}

export async function checkAll(config: Config, logger: Logger, opts: CheckOptions = {}): Promise<CheckRow[]> {
  const now = opts.now ?? Date.now;
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const quiet = logger.child({}, { level: 'silent' });
  const metrics = new Metrics({ defaultMetrics: false });
  const rows: CheckRow[] = [];

  const reportCount = Object.keys(config.reports).length;
  const sites = config.searchConsole.sites.length;
  const siteReports = Object.keys(config.searchConsole.reports).length;
  rows.push(
    config.properties.length > 0 || config.discovery.enabled || sites > 0
      ? ok(
          'config',
          `${config.properties.length} ${plural(config.properties.length, 'property', 'properties')}, ${reportCount} ${plural(reportCount, 'report', 'reports')}${sites ? `; ${sites} Search Console ${plural(sites, 'site', 'sites')}, ${siteReports} ${plural(siteReports, 'report', 'reports')}` : ''}`,
        )
      : fail(
          'config',
          'no properties or sites configured: the daemon would fetch nothing',
          'add `properties: [{ id: "123456789" }]` (GA Admin > Property details > Property ID) or set GA_COLLECTOR_PROPERTIES; or `searchConsole.sites: [sc-domain:example.com]`',
        ),
    ...configWarnings(config),
  );

  const credentialsDirectory = process.env['CREDENTIALS_DIRECTORY'];
  const tokens = new TokenManager({
    tokenUrl: config.google.tokenUrl,
    iamCredentialsRootUrl: config.google.iamCredentialsRootUrl,
    logger: quiet,
    metrics,
    now,
    exchangeTimeoutMs: Math.min(timeoutMs, exchangeDeadlineMs(config.fetch.timeoutSeconds)),
    credentialsDirectory,
  });
  const usable = new Map<string, TokenSource>();
  try {
    rows.push(...(await checkCredentials(config, tokens, usable, now)));
    rows.push(await checkDatabase(config, quiet));
    if (sites) rows.push(await checkSearchConsoleSchema(config, quiet));
    if (config.discovery.enabled) rows.push(await checkDiscovery(config, usable.get(principalId(config.google)), timeoutMs, quiet));
    // both APIs' clients under one limiter, as the daemon's (apiClients.ts), with a short retry: a check answers soon
    const api = { timeoutMs, maxAttempts: 2, limiter: new Limiter(config.concurrency), metrics, backoffBaseMs: 200 };
    const client = new Ga4Client({ apiRootUrl: config.google.apiRootUrl, ...api });
    for (const p of config.properties) rows.push(...(await checkProperty(config, p, usable.get(principalId(p)), client, quiet)));
    const searchConsole = new SearchConsoleClient({ rootUrl: config.google.searchConsoleRootUrl, ...api });
    rows.push(...(await checkSites(config, (s) => usable.get(principalId(s)), searchConsole, { now, logger: quiet })));
  } finally {
    tokens.stop();
  }
  return rows;
}

function principalId(p: { credentials: string; impersonate: string }): string {
  return `${p.credentials}\0${p.impersonate}`;
}

/**
 * A row per principal (however many properties share it): its kind, who it is, where its token
 * came from and when it expires, after one exchange exactly as the daemon makes it; then a `warn`
 * row for each thing odd about its file.
 */
async function checkCredentials(config: Config, tokens: TokenManager, usable: Map<string, TokenSource>, now: () => number): Promise<CheckRow[]> {
  const rows: CheckRow[] = [];
  const checked = new Map<TokenSource, boolean>();
  const refused = new Set<string>();
  // discovery lists as the default principal: checked too, even when no property is configured
  const principals: Array<{ credentials: string; impersonate: string }> = [...config.properties, ...config.searchConsole.sites];
  if (config.discovery.enabled) principals.push(config.google);
  for (const p of principals) {
    const id = principalId(p);
    if (refused.has(id)) continue;
    let source: TokenSource;
    try {
      source = tokens.forPrincipal(p);
    } catch (err) {
      refused.add(id);
      const message = describe(err);
      const file = p.credentials || '(Application Default Credentials)';
      rows.push(
        /^key file /.test(message)
          ? fail(`key ${file}`, message, 'download a new JSON key: Google Cloud console > IAM & Admin > Service accounts > the account > Keys > Add key > JSON')
          : fail(
              `credentials ${file}`,
              message,
              'recreate the file: gcloud iam workload-identity-pools create-cred-config (federation), gcloud auth application-default login (a person, for a trial), or a JSON key',
            ),
      );
      continue;
    }
    if (!checked.has(source)) {
      const row = await checkToken(source, now);
      checked.set(source, row.status === 'ok');
      rows.push(row, ...source.notes().map((n) => warn(row.what, n.message, n.fix)));
    }
    if (checked.get(source)) usable.set(id, source);
  }
  return rows;
}

async function checkToken(source: TokenSource, now: () => number): Promise<CheckRow> {
  try {
    // one exchange, exactly as the daemon makes it
    await source.getToken();
  } catch (err) {
    const st = source.status();
    const what = `${st.kind} ${source.account}`;
    const message = describe(err);
    const code = (err as { code?: unknown }).code;
    if (err instanceof PermanentError) {
      if (st.kind === 'key') {
        return fail(
          what,
          `${st.keyFile}: token refused: ${message}`,
          /deleted or rotated|signature/i.test(message)
            ? 'this key was deleted or revoked in Google Cloud: create a new JSON key for the account and replace the file'
            : 'check that the service account exists and is enabled (Google Cloud console > IAM & Admin > Service accounts), and google.tokenUrl',
        );
      }
      return fail(what, `token refused: ${message}`, credentialFix(code, st.kind));
    }
    const retryable = err instanceof RetryableError;
    return fail(
      what,
      `${st.kind === 'key' ? `${st.keyFile}: ` : ''}token endpoint ${source.tokenUrl} ${retryable ? 'unreachable or failing' : 'failed'}: ${message}`,
      `check the network path to ${source.tokenUrl} (proxy, firewall, DNS)${st.kind === 'key' ? " and google.tokenUrl / the key's token_uri" : ''}; run check again`,
    );
  }
  const st = source.status();
  const minutes = st.expiresAt ? Math.round((st.expiresAt - now()) / 60_000) : 0;
  return ok(`${st.kind} ${source.account}`, `${st.origin}, expires in ${minutes} min (${st.expiresAt ? new Date(st.expiresAt).toISOString() : '?'})`);
}

/** The fix of a refused exchange that is not a key's; the message itself says the details. */
function credentialFix(code: unknown, kind: string): string {
  switch (code) {
    case 'no_credentials':
      return 'set google.credentials, or run on Google Cloud with an attached service account, or run `gcloud auth application-default login` (and set google.impersonate)';
    case 'impersonation_denied':
      return `grant the role ${TOKEN_CREATOR_ROLE} on the impersonated service account to the caller named above (the gcloud command is in the message)`;
    case 'api_disabled':
      return 'gcloud services enable iamcredentials.googleapis.com --project PROJECT (the project named above)';
    case 'no_service_account':
      return 'attach a service account to the VM, Cloud Run service or GKE workload, or set google.credentials';
    default:
      return kind === 'federated'
        ? 'check the credentials file against the pool and provider (gcloud iam workload-identity-pools create-cred-config writes it), as the message says'
        : kind === 'user'
          ? 'sign in again: gcloud auth application-default login'
          : 'as the message says; then run check again';
  }
}

/** The Admin API's listing as the daemon makes it, through the filters: how many properties in how many accounts. */
async function checkDiscovery(config: Config, tokens: TokenSource | undefined, timeoutMs: number, logger: Logger): Promise<CheckRow> {
  if (!tokens) return skip('discovery', 'not checked: the default principal (google.credentials, google.impersonate) has no working token (see above)');
  const client = new AdminClient({ rootUrl: config.google.adminApiRootUrl, timeoutMs, maxAttempts: 2, backoffBaseMs: 200 });
  try {
    const accounts = await client.listAccountSummaries(tokens, logger);
    const listed = flatten(accounts);
    const kept = applyFilters(listed, config.discovery);
    const configured = new Set(config.properties.map((p) => p.id));
    const added = kept.filter((p) => !configured.has(p.id)).length;
    const keptAccounts = new Set(kept.map((p) => p.account)).size;
    const filters = [
      config.discovery.accounts.length ? `accounts ${config.discovery.accounts.join(', ')}` : '',
      config.discovery.exclude.length ? `${config.discovery.exclude.length} excluded` : '',
    ].filter(Boolean);
    const unseen = config.discovery.accounts.filter((a) => !accounts.some((x) => x.id === a));
    if (unseen.length) filters.push(`not visible to ${tokens.account}: account ${unseen.join(', ')}`);
    const detail = `${kept.length} ${plural(kept.length, 'property', 'properties')} in ${keptAccounts} ${plural(keptAccounts, 'account', 'accounts')} kept of ${listed.length} listed in ${accounts.length} ${plural(accounts.length, 'account', 'accounts')}${filters.length ? ` (${filters.join('; ')})` : ''}; ${added} not in properties, fetched with reports ${config.discovery.reports.join(', ')}`;
    if (listed.length === 0) {
      return fail(
        'discovery',
        `${tokens.account} can read no GA4 property`,
        `in Google Analytics: Admin > Account access management > + > Add users: ${tokens.account}, role Viewer (on each account or property to fetch)`,
      );
    }
    return ok('discovery', detail);
  } catch (err) {
    const message = describe(err);
    const fix =
      err instanceof PermanentError && /Admin API/.test(message)
        ? `enable "Google Analytics Admin API" in the Google Cloud project of ${tokens.account} (console > APIs & Services > Library), wait a few minutes, run check again`
        : err instanceof PermanentError
          ? 'check google.adminApiRootUrl'
          : `the Admin API at ${config.google.adminApiRootUrl} did not answer well; check network and google.adminApiRootUrl, then run check again`;
    return fail('discovery', message, fix);
  }
}

async function checkDatabase(config: Config, logger: Logger): Promise<CheckRow> {
  const where = redactUrl(config.database.url);
  const schema = config.database.schema;
  const pool = createPool(config.database.url, logger, 1, { schema });
  try {
    // a missing privilege first: "run migrate" would only fail with it
    const missing = await missingPrivileges(pool, schema, Object.keys(config.reports).flatMap(reportRelationNames));
    if (missing.length) {
      return fail(
        'database',
        `${where}: ${missing.map((m) => m.problem).join('; ')}`,
        `as the schema's owner or a superuser: ${missing.map((m) => m.grant).join('; ')}`,
      );
    }
    const state = await migrationState(pool, schema);
    if (state.current > state.latest) {
      return fail(
        'database',
        `${where}: schema ${schema} is at migration ${state.current}, newer than this ga-collector (${state.latest})`,
        'upgrade ga-collector to the version that migrated this schema, or use another database.schema',
      );
    }
    if (state.current === state.latest) return ok('database', `${where}: reachable, schema ${schema} at migration ${state.current} (current)`);
    return fail(
      'database',
      `${where}: reachable, schema ${schema} at migration ${state.current} of ${state.latest}: ${state.latest - state.current} pending`,
      '`ga-collector migrate --config FILE` applies them (`run` also migrates at start)',
    );
  } catch (err) {
    return fail(
      'database',
      `${where}: ${describeDbError(err, config.database.url)}`,
      'check database.url / DATABASE_URL (host, port, user, password, database name) and that PostgreSQL is running and reachable from here',
    );
  } finally {
    await pool.end().catch(() => undefined);
  }
}

async function checkProperty(
  config: Config,
  p: Config['properties'][number],
  tokens: TokenSource | undefined,
  client: Ga4Client,
  logger: Logger,
): Promise<CheckRow[]> {
  const what = `property ${p.id}`;
  const reportRows = (detail: string) => p.reports.map((r) => skip(`${what} report ${r}`, detail));
  if (!tokens) return [skip(what, 'not checked: its key has no working token (see above)'), ...reportRows('not checked')];
  const ctx = { propertyId: p.id, tokens, logger };
  let md: MetadataResponse;
  let timeZone: string;
  let quota = '';
  try {
    md = await client.getMetadata(ctx);
    // getMetadata does not say the time zone; a one-row report does, and proves runReport works
    const probe = await client.runReport(ctx, timeZoneProbeRequest());
    timeZone = probe.metadata?.timeZone ?? '?';
    const day = probe.propertyQuota?.tokensPerDay;
    if (day) quota = `; ${day.remaining ?? 0} quota tokens left today`;
  } catch (err) {
    const message = describe(err);
    const fix =
      err instanceof PermanentError && err.code === 'scope_insufficient'
        ? `set google.impersonate (or properties[].impersonate) to a service account, and grant ${tokens.account} the role roles/iam.serviceAccountTokenCreator on it; that account then needs Viewer access to property ${p.id}`
        : err instanceof PermanentError && /no access/.test(message) && !tokens.account.includes('@')
          ? `Google Analytics grants access to email addresses only, and ${tokens.account} is a federated identity without one: let it impersonate a service account (service_account_impersonation_url in its file, or google.impersonate) and add that account as a Viewer of property ${p.id}`
          : err instanceof PermanentError && /no access/.test(message)
            ? `in Google Analytics: Admin > Property access management > + > Add users: ${tokens.account}, role Viewer; and check that ${p.id} is the numeric property id (Admin > Property details), not a G- measurement id`
            : err instanceof PermanentError
              ? 'check the property id and google.apiRootUrl'
              : `the Data API at ${config.google.apiRootUrl} did not answer well; check network and google.apiRootUrl, then run check again`;
    return [fail(what, message, fix), ...reportRows('not checked: no access to the property')];
  }
  const rows: CheckRow[] = [ok(what, `readable by ${tokens.account}; time zone ${timeZone}${quota}`)];
  for (const r of p.reports) {
    const def = config.reports[r]!;
    const unknown = unknownFields(def, md);
    const deprecated = deprecatedFields(def, md);
    if (unknown.length) {
      rows.push(fail(`${what} report ${r}`, `unknown to property ${p.id}: ${listUnknown(unknown)}`, unknownFieldsFix(r, unknown)));
    } else {
      rows.push(
        ok(
          `${what} report ${r}`,
          `date + ${def.dimensions.length} ${plural(def.dimensions.length, 'dimension', 'dimensions')}, ${def.metrics.length} ${plural(def.metrics.length, 'metric', 'metrics')} known${deprecated.length ? `; deprecated names: ${deprecated.join(', ')}` : ''}; dates in ${timeZone}`,
        ),
      );
    }
  }
  return rows;
}

/** How many checks passed, failed, were skipped (not tried, because something they need failed) and warned. */
function tally(rows: CheckRow[]): { ok: number; failed: number; skipped: number; warnings: number } {
  const n = (status: CheckStatus) => rows.filter((r) => r.status === status).length;
  return { ok: n('ok'), failed: n('FAIL'), skipped: n('skip'), warnings: n('warn') };
}

/** The table: a status, what was checked, the finding; a failing row's fix on the line below it; the tally. */
export function formatTable(rows: CheckRow[]): string {
  const w = Math.max(...rows.map((r) => r.what.length));
  const lines: string[] = [];
  for (const r of rows) {
    lines.push(`${r.status.padEnd(4)}  ${r.what.padEnd(w)}  ${r.detail}`);
    if (r.fix) lines.push(`${' '.repeat(6 + w)}  fix: ${r.fix}`);
  }
  const t = tally(rows);
  const counts = `${t.ok} ok, ${t.failed} failed, ${t.skipped} skipped, ${t.warnings} ${plural(t.warnings, 'warning', 'warnings')}`;
  const checks = t.ok + t.failed + t.skipped;
  lines.push('', t.failed + t.skipped === 0 ? `all ${checks} checks passed: ${counts}` : `${t.failed + t.skipped} of ${checks} checks did not pass: ${counts}`);
  return lines.join('\n');
}

/** `check --json`: every row (status ok, fail, skip or warn), the tally, and whether the check passed. */
function formatJson(rows: CheckRow[]): string {
  const t = tally(rows);
  const checks = rows.map((r) => ({ status: r.status === 'FAIL' ? 'fail' : r.status, what: r.what, detail: r.detail, ...(r.fix ? { fix: r.fix } : {}) }));
  return JSON.stringify({ ok: t.failed + t.skipped === 0, summary: t, checks }, null, 2);
}

/** Runs every check and prints the table (or, with `json`, the JSON document). Exit 0 when all passed (warnings allowed), else 1. */
export async function runCheck(config: Config, logger: Logger, json = false): Promise<number> {
  const rows = await checkAll(config, logger);
  process.stdout.write(`${json ? formatJson(rows) : formatTable(rows)}\n`);
  return rows.every((r) => r.status === 'ok' || r.status === 'warn') ? 0 : 1;
}
