/**
 * `ga-collector demo`: the whole pipeline on a machine with nothing but Node.js. It starts an
 * embedded PostgreSQL (or uses DATABASE_URL), the fake Google with two properties in different
 * time zones and a freshly made service-account key, and then the daemon itself, through the same
 * `Daemon` class as `run`, with a config built in memory whose `google.tokenUrl` and
 * `google.apiRootUrl` point at the fake. It runs until SIGINT or SIGTERM and then stops every
 * part in order: daemon, fake Google, database (whose data directory goes unless kept), and says
 * what it leaves behind. It writes only into a schema of its own (demoSchema.ts), so a
 * DATABASE_URL of a database with collected data never gets simulated data mixed in.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import type { Config, ReportDefinition } from '../config.js';
import { loadConfig } from '../config.js';
import { Daemon } from '../daemon.js';
import { UsageError, describe } from '../errors.js';
import { FakeGoogle } from '../fake-google/index.js';
import { createLogger, redactUrl } from '../log.js';
import { claimDemoSchema } from './demoSchema.js';
import { EmbeddedPostgres } from './embeddedPostgres.js';

export const DEMO_ACCOUNT = 'demo-collector@ga-collector-demo.iam.gserviceaccount.com';
export const DEMO_PROPERTIES = [
  { id: '100001', timeZone: 'America/Los_Angeles', name: 'a shop in California' },
  { id: '100002', timeZone: 'Pacific/Auckland', name: 'a blog in New Zealand' },
] as const;

/** The demo's reports: 90 days each, so the first run is a real backfill. */
export const DEMO_REPORTS: Record<string, ReportDefinition> = {
  daily: { name: 'daily', dimensions: [], metrics: ['sessions', 'totalUsers', 'screenPageViews'], startDate: '90daysAgo', refreshDays: 3 },
  devices: { name: 'devices', dimensions: ['deviceCategory', 'country'], metrics: ['sessions', 'engagedSessions', 'bounceRate'], startDate: '90daysAgo', refreshDays: 3 },
};

export interface DemoOptions {
  /** keep the embedded database's data directory on exit */
  keep: boolean;
  /** use (and keep) this data directory for the embedded database */
  dataDir?: string | undefined;
  env?: NodeJS.ProcessEnv;
  out?: (line: string) => void;
}

/** Runs the demo until a signal; resolves with the exit code. */
export async function runDemo(opts: DemoOptions): Promise<number> {
  const env = opts.env ?? process.env;
  const say = opts.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const started = Date.now();
  const secs = () => ((Date.now() - started) / 1000).toFixed(1);
  // The daemon's own JSON log goes to stderr, warnings and worse unless LOG_LEVEL says otherwise,
  // so the terminal shows the demo's few lines.
  const logger = createLogger(env['LOG_LEVEL'] ?? 'warn', pino.destination({ dest: 2, sync: true }));
  const parts: Array<{ name: string; stop: () => Promise<void> }> = [];
  const stopAll = async () => {
    for (const p of parts.reverse()) {
      await p.stop().catch((err) => process.stderr.write(`ga-collector demo: stopping ${p.name}: ${describe(err)}\n`));
    }
  };

  let daemon: Daemon;
  let dbUrl: string;
  let embedded: EmbeddedPostgres | null = null;
  /** the external database's demo schema, once the demo has claimed it */
  let claimed: { schema: string; url: string } | null = null;
  try {
    // the environment's settings are checked before anything starts
    baseConfig(env);
    const external = env['DATABASE_URL'];
    if (external) {
      dbUrl = external;
      say(`database: ${redactUrl(external)} (from DATABASE_URL)`);
    } else {
      say('starting an embedded PostgreSQL ...');
      embedded = await EmbeddedPostgres.start({ keep: opts.keep, ...(opts.dataDir ? { dataDir: opts.dataDir } : {}) });
      const pg = embedded;
      parts.push({ name: 'embedded PostgreSQL', stop: () => pg.stop() });
      dbUrl = pg.url;
      say(`database: embedded PostgreSQL at ${pg.url} (data in ${pg.dataDir}) [${secs()} s]`);
    }

    const fake = new FakeGoogle();
    await fake.start();
    parts.push({ name: 'fake Google', stop: () => fake.stop() });
    const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ga-collector-demo-key-'));
    parts.push({ name: 'key file', stop: async () => fs.rmSync(keyDir, { recursive: true, force: true }) });
    const keyFile = path.join(keyDir, 'service-account.json');
    fs.writeFileSync(keyFile, JSON.stringify(fake.createAccount(DEMO_ACCOUNT, { projectId: 'ga-collector-demo' }), null, 2), { mode: 0o600 });
    for (const p of DEMO_PROPERTIES) {
      fake.addProperty({ id: p.id, timeZone: p.timeZone });
      fake.grant(DEMO_ACCOUNT, p.id);
    }
    say(`simulated Google at ${fake.url}: properties ${DEMO_PROPERTIES.map((p) => `${p.id} (${p.timeZone})`).join(', ')}; service account ${DEMO_ACCOUNT}`);

    const config = await demoConfig(env, dbUrl, external ? 'ga4_demo' : 'ga4', keyFile, fake);
    const claim = await claimDemoSchema(dbUrl, config.database.schema);
    if (external) {
      claimed = { schema: config.database.schema, url: redactUrl(dbUrl) };
      say(`schema ${config.database.schema}: ${claim === 'created' ? 'created for the demo' : "the demo's, from an earlier run"}`);
    }
    daemon = new Daemon({ config, logger, http: true, continueBacklog: true });
    parts.push({ name: 'daemon', stop: () => daemon.stop() });
    await daemon.prepare();
    await daemon.startServices();
    daemon.scheduler.start();
    const schema = config.database.schema;
    say('');
    say(`status page:  ${daemon.http!.url}/`);
    say(`metrics:      ${daemon.http!.url}/metrics`);
    say(`query:        psql '${external ? redactUrl(dbUrl) : dbUrl}' -c 'SELECT property_id, date, sessions, total_users FROM ${schema}.daily ORDER BY date DESC, property_id LIMIT 10'`);
    if (!onPath('psql')) say('              (psql is not installed here; any PostgreSQL client can use that URL)');
    say('');
    say(`fetching 90 days of ${Object.keys(config.reports).join(' and ')} for ${config.properties.length} properties ... (Ctrl-C stops the demo)`);
    void announceFirstData(daemon, config, say, secs);
  } catch (err) {
    process.stderr.write(`ga-collector demo: ${describe(err)}\n`);
    await stopAll();
    // a bad environment value (LOG_LEVEL, GA_COLLECTOR_HTTP_PORT ...) or a schema not the demo's is bad input
    return err instanceof UsageError ? 2 : 1;
  }

  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        // the embedded server's watchdog still stops it and removes its directory
        resolve(signal === 'SIGINT' ? 130 : 143);
        return;
      }
      stopping = true;
      say(`\n${signal}: stopping the demo ...`);
      stopAll().then(() => {
        if (embedded && fs.existsSync(embedded.dataDir)) say(`embedded database kept in ${embedded.dataDir}; \`ga-collector demo --data-dir ${embedded.dataDir}\` uses it again`);
        else if (embedded) say(`left behind: nothing (the embedded database and its data directory ${embedded.dataDir} were removed)`);
        if (claimed) {
          say(`left behind: the demo's simulated data in schema ${claimed.schema} of ${claimed.url}; \`ga-collector demo\` with the same DATABASE_URL and schema uses it again`);
          say(`              remove it with: DROP SCHEMA "${claimed.schema}" CASCADE`);
        }
        say('demo stopped');
        resolve(0);
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

/**
 * Defaults and environment overrides (port, log level, concurrency) from the one schema; a config
 * file would make this something other than the demo, so GA_COLLECTOR_CONFIG is left out, and so
 * is what the demo sets itself (properties, key, Google's URLs).
 */
function baseConfig(env: NodeJS.ProcessEnv): Config {
  const rest = { ...env };
  for (const k of ['GA_COLLECTOR_CONFIG', 'GA_COLLECTOR_PROPERTIES', 'GOOGLE_APPLICATION_CREDENTIALS', 'GA_COLLECTOR_TOKEN_URL', 'GA_COLLECTOR_API_ROOT_URL']) delete rest[k];
  return loadConfig({ env: rest, requireDatabase: false, requireCredentials: false });
}

async function demoConfig(env: NodeJS.ProcessEnv, dbUrl: string, defaultSchema: string, keyFile: string, fake: FakeGoogle): Promise<Config> {
  const base = baseConfig(env);
  const port = env['GA_COLLECTOR_HTTP_PORT'] ? base.http.port : await portOr(base.http.host, base.http.port);
  return {
    ...base,
    database: { url: dbUrl, schema: env['GA_COLLECTOR_DB_SCHEMA'] ? base.database.schema : defaultSchema },
    google: { credentials: keyFile, impersonate: '', iamCredentialsRootUrl: fake.apiRootUrl, tokenUrl: fake.tokenUrl, apiRootUrl: fake.apiRootUrl },
    http: { ...base.http, port },
    reports: DEMO_REPORTS,
    properties: DEMO_PROPERTIES.map((p) => ({ id: p.id, reports: Object.keys(DEMO_REPORTS), schedule: base.schedule, credentials: keyFile, impersonate: '' })),
  };
}

/** The configured port when it is free, else any free one (a demo should not fail on a busy 9464). */
function portOr(host: string, port: number): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(0));
    s.listen(port, host, () => s.close(() => resolve(port)));
  });
}

function onPath(cmd: string): boolean {
  return (process.env['PATH'] ?? '').split(path.delimiter).some((d) => d && fs.existsSync(path.join(d, cmd)));
}

/** One line when every report of every property has data, with the time it took. */
async function announceFirstData(daemon: Daemon, config: Config, say: (l: string) => void, secs: () => string): Promise<void> {
  const total = config.properties.reduce((n, p) => n + p.reports.length, 0);
  for (let i = 0; i < 600; i++) {
    await new Promise((r) => setTimeout(r, 500).unref());
    let doc;
    try {
      doc = await daemon.status();
    } catch {
      return;
    }
    const done = doc.reports.filter((r) => r.storedDays > 0 && !r.running);
    const failed = doc.reports.filter((r) => r.lastError);
    if (done.length + failed.length >= total && done.length > 0 && doc.reports.every((r) => !r.running)) {
      const days = done.reduce((n, r) => n + r.storedDays, 0);
      say(`data is in after ${secs()} s: ${days} property-days over ${done.length} report tables${failed.length ? `; ${failed.length} failed (see the status page)` : ''}`);
      return;
    }
  }
}
