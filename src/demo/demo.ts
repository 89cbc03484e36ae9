/**
 * `ga-collector demo`: the whole pipeline on a machine with nothing but Node.js. It starts an
 * embedded PostgreSQL (or uses DATABASE_URL), the fake Google with two properties in different
 * time zones, a Search Console site and a freshly made service-account key, and then the daemon itself, through the same
 * `Daemon` class as `run`, with a config built in memory whose `google.tokenUrl` and
 * `google.apiRootUrl` point at the fake. It runs until SIGINT or SIGTERM (signals.ts, as `run`)
 * and then stops every part in reverse: daemon, fake Google, database (whose data directory goes
 * unless kept), and says what it leaves behind. It writes only into schemas of its own (demoSchema.ts:
 * GA4's, and the Search Console schema beside it), so a
 * DATABASE_URL of a database with collected data never gets simulated data mixed in.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import type { Config, ReportDefinition, SearchConsoleReport } from '../config/index.js';
import { configuredSources, loadConfig } from '../config/index.js';
import { Daemon, StartError } from '../daemon.js';
import { UsageError, describe } from '../errors.js';
import { Lifecycle } from '../lifecycle.js';
import { createLogger, redactUrl, type Logger } from '../log.js';
import { runUntilSignalled } from '../signals.js';
import { claimDemoSchema } from './demoSchema.js';
import { EmbeddedPostgres } from './embeddedPostgres.js';
import type { FakeGoogle } from '@ga-collector/fake-google';
import { loadFakeGoogle } from './loadFakeGoogle.js';

const DEMO_ACCOUNT = 'demo-collector@ga-collector-demo.iam.gserviceaccount.com';
const DEMO_PROPERTIES = [
  { id: '100001', timeZone: 'America/Los_Angeles', name: 'a shop in California' },
  { id: '100002', timeZone: 'Pacific/Auckland', name: 'a blog in New Zealand' },
] as const;

/** The demo's Search Console site, granted to the demo account like the properties. */
const DEMO_SITE = 'sc-domain:example.com';

/** The demo's Search Console report: the default definition, over the same 90 days as GA4's. */
const DEMO_SITE_REPORTS: Record<string, SearchConsoleReport> = {
  performance: {
    name: 'performance',
    dimensions: ['query', 'page', 'country', 'device'],
    type: 'web',
    dataState: 'final',
    aggregationType: 'auto',
    startDate: '90daysAgo',
    refreshDays: 4,
  },
};

/** The demo's reports: 90 days each, so the first run is a real backfill. */
const DEMO_REPORTS: Record<string, ReportDefinition> = {
  daily: { name: 'daily', dimensions: [], metrics: ['sessions', 'totalUsers', 'screenPageViews'], startDate: '90daysAgo', refreshDays: 3 },
  devices: {
    name: 'devices',
    dimensions: ['deviceCategory', 'country'],
    metrics: ['sessions', 'engagedSessions', 'bounceRate'],
    startDate: '90daysAgo',
    refreshDays: 3,
  },
};

export interface DemoOptions {
  /** keep the embedded database's data directory on exit */
  keep: boolean;
  /** use (and keep) this data directory for the embedded database */
  dataDir?: string | undefined;
  env?: NodeJS.ProcessEnv;
  out?: (line: string) => void;
}

/** Runs the demo until a signal (signals.ts); resolves with the exit code. */
export async function runDemo(opts: DemoOptions): Promise<number> {
  const demo = new Demo(opts);
  return runUntilSignalled(demo, {
    logger: demo.logger,
    // a bad environment value (LOG_LEVEL, GA_COLLECTOR_HTTP_PORT ...) or a schema not the demo's is bad input
    startFailed: (err) => {
      const cause = err instanceof StartError ? err.cause : err;
      process.stderr.write(`ga-collector demo: ${describe(cause)}\n`);
      return cause instanceof UsageError ? 2 : 1;
    },
    stopping: (signal) => demo.say(`\n${signal}: stopping the demo ...`),
    stopped: () => demo.sayWhatIsLeft(),
  });
}

/** A part the demo started, and how to stop it. */
interface DemoPart {
  name: string;
  stop: () => Promise<void>;
}

/**
 * The demo's parts: database, fake Google, key file, daemon. start() brings them up in that
 * order, stop() takes down in reverse whatever came up (lifecycle.ts), a stop during start-up
 * included. A second signal leaves the embedded server to its watchdog, which stops it and
 * removes its directory.
 */
class Demo {
  readonly say: (line: string) => void;
  readonly logger: Logger;
  private readonly env: NodeJS.ProcessEnv;
  private readonly lifecycle = new Lifecycle();
  private readonly parts: DemoPart[] = [];
  private readonly startedAt = Date.now();
  private embedded: EmbeddedPostgres | null = null;
  /** the external database's demo schemas (GA4's, Search Console's), once the demo has claimed them */
  private claimed: { schemas: string[]; url: string } | null = null;

  constructor(private readonly opts: DemoOptions) {
    this.env = opts.env ?? process.env;
    this.say = opts.out ?? ((line: string) => process.stdout.write(`${line}\n`));
    // The daemon's own JSON log goes to stderr, warnings and worse unless LOG_LEVEL says otherwise,
    // so the terminal shows the demo's few lines.
    this.logger = createLogger(this.env['LOG_LEVEL'] ?? 'warn', pino.destination({ dest: 2, sync: true }));
  }

  start(): Promise<void> {
    return this.lifecycle.start(() => this.bringUp());
  }

  stop(): Promise<void> {
    return this.lifecycle.stop(async () => {
      for (const part of this.parts.reverse()) {
        await part.stop().catch((err) => process.stderr.write(`ga-collector demo: stopping ${part.name}: ${describe(err)}\n`));
      }
    });
  }

  /** After a stop: what stays on disk or in the database, and how to use or remove it. */
  sayWhatIsLeft(): void {
    const { embedded, claimed, say } = this;
    if (embedded && fs.existsSync(embedded.dataDir))
      say(`embedded database kept in ${embedded.dataDir}; \`ga-collector demo --data-dir ${embedded.dataDir}\` uses it again`);
    else if (embedded) say(`left behind: nothing (the embedded database and its data directory ${embedded.dataDir} were removed)`);
    if (claimed) {
      const [schema, sites] = claimed.schemas;
      say(
        `left behind: the demo's simulated data in schema ${schema} of ${claimed.url} (Search Console's in ${sites}); \`ga-collector demo\` with the same DATABASE_URL and schema uses it again`,
      );
      say(`              remove it with: DROP SCHEMA ${claimed.schemas.map((s) => `"${s}"`).join(', ')} CASCADE`);
    }
    say('demo stopped');
  }

  private seconds(): string {
    return ((Date.now() - this.startedAt) / 1000).toFixed(1);
  }

  private async bringUp(): Promise<void> {
    const { env, opts, say, lifecycle } = this;
    // the environment's settings are checked before anything starts
    baseConfig(env);
    // before anything starts: an installation without the optional dependencies has no fake Google
    const fakeGoogle = await loadFakeGoogle();
    const external = env['DATABASE_URL'];
    let dbUrl: string;
    if (external) {
      dbUrl = external;
      say(`database: ${redactUrl(external)} (from DATABASE_URL)`);
    } else {
      say('starting an embedded PostgreSQL ...');
      const embedded = await EmbeddedPostgres.start({ keep: opts.keep, ...(opts.dataDir ? { dataDir: opts.dataDir } : {}) });
      this.embedded = embedded;
      this.parts.push({ name: 'embedded PostgreSQL', stop: () => embedded.stop() });
      dbUrl = embedded.url;
      say(`database: embedded PostgreSQL at ${embedded.url} (data in ${embedded.dataDir}) [${this.seconds()} s]`);
    }
    lifecycle.checkpoint();

    const fake = new fakeGoogle.FakeGoogle();
    await fake.start();
    this.parts.push({ name: 'fake Google', stop: () => fake.stop() });
    const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ga-collector-demo-key-'));
    this.parts.push({ name: 'key file', stop: async () => fs.rmSync(keyDir, { recursive: true, force: true }) });
    const keyFile = path.join(keyDir, 'service-account.json');
    fs.writeFileSync(keyFile, JSON.stringify(fake.createAccount(DEMO_ACCOUNT, { projectId: 'ga-collector-demo' }), null, 2), { mode: 0o600 });
    for (const property of DEMO_PROPERTIES) {
      fake.addProperty({ id: property.id, timeZone: property.timeZone });
      fake.grant(DEMO_ACCOUNT, property.id);
    }
    fake.addSite({ url: DEMO_SITE });
    fake.grantSite(DEMO_ACCOUNT, DEMO_SITE, 'siteFullUser');
    say(
      `simulated Google at ${fake.url}: properties ${DEMO_PROPERTIES.map((p) => `${p.id} (${p.timeZone})`).join(', ')}; Search Console site ${DEMO_SITE}; service account ${DEMO_ACCOUNT}`,
    );

    const config = await demoConfig(env, dbUrl, external ? 'ga4_demo' : 'ga4', keyFile, fake);
    const claim = await claimDemoSchema(
      dbUrl,
      config.database.schema,
      DEMO_PROPERTIES.map((p) => p.id),
    );
    const siteClaim = await claimDemoSchema(dbUrl, config.searchConsole.schema, [DEMO_SITE], 'site_url');
    if (external) {
      this.claimed = { schemas: [config.database.schema, config.searchConsole.schema], url: redactUrl(dbUrl) };
      say(`schema ${config.database.schema}: ${claim === 'created' ? 'created for the demo' : "the demo's, from an earlier run"}`);
      say(`schema ${config.searchConsole.schema} (Search Console): ${siteClaim === 'created' ? 'created for the demo' : "the demo's, from an earlier run"}`);
    }
    lifecycle.checkpoint();
    const daemon = new Daemon({ config, logger: this.logger, http: true, continueBacklog: true });
    this.parts.push({ name: 'daemon', stop: () => daemon.stop() });
    await lifecycle.step(daemon.start());
    const schema = config.database.schema;
    say('');
    say(`status page:  ${daemon.http!.url}/`);
    say(`metrics:      ${daemon.http!.url}/metrics`);
    say(
      `query:        psql '${external ? redactUrl(dbUrl) : dbUrl}' -c 'SELECT property_id, date, sessions, total_users FROM ${schema}.daily ORDER BY date DESC, property_id LIMIT 10'`,
    );
    say(
      `              psql '${external ? redactUrl(dbUrl) : dbUrl}' -c 'SELECT date, sum(clicks) AS clicks, sum(impressions) AS impressions FROM ${config.searchConsole.schema}.performance GROUP BY date ORDER BY date DESC LIMIT 10'`,
    );
    if (!onPath('psql')) say('              (psql is not installed here; any PostgreSQL client can use that URL)');
    say('');
    say(
      `fetching 90 days of ${Object.keys(config.reports).join(' and ')} for ${config.properties.length} properties, and of ${Object.keys(config.searchConsole.reports).join(', ')} for site ${DEMO_SITE} (Pacific days through today-3) ... (Ctrl-C stops the demo)`,
    );
    void announceFirstData(daemon, config, say, () => this.seconds(), lifecycle.stopSignal);
  }
}

/**
 * Defaults and environment overrides (port, log level, concurrency) from the one schema; a config
 * file would make this something other than the demo, so GA_COLLECTOR_CONFIG is left out, and so
 * is what the demo sets itself (properties, key, Google's URLs).
 */
function baseConfig(env: NodeJS.ProcessEnv): Config {
  const rest = { ...env };
  for (const k of [
    'GA_COLLECTOR_CONFIG',
    'GA_COLLECTOR_PROPERTIES',
    'GOOGLE_APPLICATION_CREDENTIALS',
    'GA_COLLECTOR_TOKEN_URL',
    'GA_COLLECTOR_API_ROOT_URL',
    'GA_COLLECTOR_ADMIN_API_ROOT_URL',
    'GA_COLLECTOR_SEARCH_CONSOLE_ROOT_URL',
    'GA_COLLECTOR_SEARCH_CONSOLE_SCHEMA',
  ])
    delete rest[k];
  return loadConfig({ env: rest, requireDatabase: false, requireCredentials: false });
}

async function demoConfig(env: NodeJS.ProcessEnv, dbUrl: string, defaultSchema: string, keyFile: string, fake: FakeGoogle): Promise<Config> {
  const base = baseConfig(env);
  const port = env['GA_COLLECTOR_HTTP_PORT'] ? base.http.port : await portOr(base.http.host, base.http.port);
  const schema = env['GA_COLLECTOR_DB_SCHEMA'] ? base.database.schema : defaultSchema;
  return {
    ...base,
    database: { url: dbUrl, schema },
    // `gsc` beside `ga4` in the embedded database; elsewhere named after the demo's GA4 schema, so two demos' never meet
    searchConsole: {
      schema: schema === 'ga4' ? 'gsc' : `${schema}_gsc`,
      reports: DEMO_SITE_REPORTS,
      sites: [{ url: DEMO_SITE, reports: Object.keys(DEMO_SITE_REPORTS), schedule: base.schedule, credentials: keyFile, impersonate: '' }],
    },
    google: {
      credentials: keyFile,
      impersonate: '',
      iamCredentialsRootUrl: fake.apiRootUrl,
      tokenUrl: fake.tokenUrl,
      apiRootUrl: fake.apiRootUrl,
      adminApiRootUrl: fake.apiRootUrl,
      searchConsoleRootUrl: fake.apiRootUrl,
    },
    http: { ...base.http, port },
    reports: DEMO_REPORTS,
    properties: DEMO_PROPERTIES.map((p) => ({ id: p.id, reports: Object.keys(DEMO_REPORTS), schedule: base.schedule, credentials: keyFile, impersonate: '' })),
  };
}

/** The configured port when it is free, else any free one (a demo should not fail on a busy 9464). */
function portOr(host: string, port: number): Promise<number> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(0));
    probe.listen(port, host, () => probe.close(() => resolve(port)));
  });
}

function onPath(cmd: string): boolean {
  return (process.env['PATH'] ?? '').split(path.delimiter).some((d) => d && fs.existsSync(path.join(d, cmd)));
}

/** One line when every report of every property and site has data, with the time it took. */
async function announceFirstData(daemon: Daemon, config: Config, say: (l: string) => void, seconds: () => string, stopped: AbortSignal): Promise<void> {
  const total = configuredSources(config).reduce((n, p) => n + p.reports.length, 0);
  for (let poll = 0; poll < 600 && !stopped.aborted; poll++) {
    await new Promise((resolve) => setTimeout(resolve, 500).unref());
    let doc;
    try {
      doc = await daemon.statusDocument();
    } catch {
      return;
    }
    const done = doc.reports.filter((r) => r.storedDays > 0 && !r.running);
    const failed = doc.reports.filter((r) => r.lastError);
    if (done.length + failed.length >= total && done.length > 0 && doc.reports.every((r) => !r.running)) {
      const days = (kind: string) => done.filter((r) => r.kind === kind).reduce((n, r) => n + r.storedDays, 0);
      say(
        `data is in after ${seconds()} s: ${days('ga4')} property-days and ${days('searchConsole')} site-days over ${done.length} report tables${failed.length ? `; ${failed.length} failed (see the status page)` : ''}`,
      );
      return;
    }
  }
}
