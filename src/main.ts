#!/usr/bin/env -S node --max-semi-space-size=2
/**
 * The one place that wires everything: parses the command line, loads the config, builds the
 * daemon's parts and runs the command. Exit codes: 0 success, 1 a failure at run time, 2 bad
 * input (command line, config, key file), with one line on stderr saying what is wrong.
 *
 * The first line starts Node with a young generation of 2 MB a semi-space (V8's default grows to
 * 16 MB), as the systemd unit and the Docker image do. Why: a page's bytes arrive as socket
 * buffers that die as soon as they are scanned, but V8 frees them only when it collects the young
 * generation, and that happens once the young generation fills with JavaScript objects, which the
 * page scanner hardly makes. With the default, tens of MB of dead buffers wait. Peak RSS of
 * `npm run bench`'s 1,000,000-row backfill, six runs each, this 2-core machine: default 157 to
 * 163 MB, wall 2.4 to 2.5 s; 2 MB, 136 to 141 MB, 2.4 to 2.5 s; 1 MB, 129 to 137 MB but 2.5 to
 * 2.7 s (more collections); 4 MB, 148 to 162 MB.
 */
import { commandHelp, parseArgs, usage, type CliArgs } from './cli.js';
import { loadConfig, propertySource, type Config, type PropertyConfig } from './config/index.js';
import { backfillSite, siteBackfillConfig } from './commands/backfillSite.js';
import { Daemon, StartError } from './daemon.js';
import { HttpListenError, UsageError, describe } from './errors.js';
import { createLogger, defaultLogFormat, type Logger } from './log.js';
import { runCheck } from './check.js';
import { runDryRun } from './commands/dryRun.js';
import { runMigrate } from './commands/migrate.js';
import { runPrune } from './commands/prune.js';
import { runShowConfig } from './commands/showConfig.js';
import { runStatus } from './commands/status.js';
import { summaryLine, type JobOutcome } from './commands/summary.js';
import { TerminalLine } from './progress.js';
import { runUntilSignalled } from './signals.js';
import { classifyDbError, describeDbError } from './store/dbErrors.js';
import { addDays, parseDateSpec, resolveDateSpec } from './time.js';
import { VERSION } from './version.js';

async function main(argv: string[]): Promise<number> {
  const startedAt = Date.now();
  let args: CliArgs;
  try {
    args = parseArgs(argv);
  } catch (err) {
    return usageFailure(err);
  }
  switch (args.command) {
    case 'usage':
      // no command at all: the usage, as an error (a script that forgot its command must not pass)
      process.stderr.write(`${usage()}\n`);
      return 2;
    case 'help':
      process.stdout.write(`${args.topic ? commandHelp(args.topic) : usage()}\n`);
      return 0;
    case 'version':
      process.stdout.write(`ga-collector ${VERSION}\n`);
      return 0;
    case 'demo': {
      // loaded only here: the fake Google and the embedded database stay off the production path
      const { runDemo } = await import('./demo/demo.js');
      return runDemo({ keep: args.keep === true, dataDir: args.dataDir });
    }
    case 'config':
      try {
        return runShowConfig(args.config);
      } catch (err) {
        return usageFailure(err);
      }
    default:
      break;
  }
  let config: Config;
  try {
    // status and prune read and delete stored data only: no token, so no key file is needed
    const requireCredentials = !['migrate', 'status', 'prune'].includes(args.command);
    config = loadConfig({ file: args.config, requireCredentials });
  } catch (err) {
    return usageFailure(err);
  }
  if (args.command === 'status') return runStatus(config, args.json);
  if (args.command === 'prune') {
    try {
      return await runPrune(
        config,
        { ...(args.property ? { propertyId: args.property } : {}), ...(args.site ? { site: args.site } : {}), ...(args.report ? { report: args.report } : {}) },
        args.yes,
      );
    } catch (err) {
      return usageFailure(err);
    }
  }
  // backfill on a terminal draws a bar on stderr; log lines to the same terminal go around it
  const terminal = args.command === 'backfill' && !args.dryRun && process.stderr.isTTY ? new TerminalLine(process.stderr) : null;
  const logger = createLogger(
    config.log.level,
    terminal && process.stdout.isTTY ? terminal.logDestination(process.stdout) : undefined,
    config.log.format ?? defaultLogFormat(),
  );
  if (args.command === 'check') return runCheck(config, logger, args.json);
  if (args.command === 'migrate') return runMigrate(config, logger);
  if (args.dryRun) {
    try {
      if (args.command !== 'backfill') return await runDryRun(config, { mode: 'once' });
      if (args.site) {
        const one = siteBackfillConfig(config, args);
        return await runDryRun(one, {
          mode: 'backfillSite',
          site: one.searchConsole.sites[0]!,
          reports: args.report ? [args.report] : one.searchConsole.sites[0]!.reports,
          from: args.from!,
          to: args.to!,
        });
      }
      const one = backfillConfig(config, args);
      const property = one.properties[0];
      if (!property) {
        // a discovered property: a dry run asks for no token, so it cannot list the Admin API
        throw new UsageError(
          `backfill --dry-run: property ${args.property} is not in properties; with discovery on, a dry run cannot tell whether it is discovered (it asks Google nothing): add it to properties to plan it, or run the backfill`,
        );
      }
      return await runDryRun(one, { mode: 'backfill', property, reports: args.report ? [args.report] : property.reports, from: args.from!, to: args.to! });
    } catch (err) {
      return usageFailure(err);
    }
  }
  let daemon: Daemon;
  try {
    if (args.command === 'backfill') config = args.site ? siteBackfillConfig(config, args) : backfillConfig(config, args);
    daemon = new Daemon({ config, logger, http: daemonMode(args), continueBacklog: daemonMode(args), progressBar: terminal });
  } catch (err) {
    return usageFailure(err);
  }
  if (daemonMode(args)) return runDaemon(daemon, config, logger, args);
  try {
    await daemon.start({ upTo: 'services' });
  } catch (err) {
    const code = startFailed(err, config, logger);
    await daemon.stop(0);
    return code;
  }
  if (args.command === 'backfill' && args.site) return backfillSite(daemon, config, args, startedAt);
  if (args.command === 'backfill') return backfill(daemon, config, args, startedAt);
  // discovered properties join the plan; a failed listing is reported, the configured ones run regardless
  const discoveryError = await daemon.discover(false);
  const results = await daemon.scheduler.runOnce();
  // a credential that cannot get a token fails the run even when nothing was due (and so nothing asked Google)
  const noToken = daemon.tokens
    .sources()
    .map((s) => s.status())
    .filter((st) => !st.valid);
  await daemon.stop(0);
  const failed = results.filter((r) => !r.ok);
  for (const f of failed) process.stderr.write(`ga-collector: ${f.error}\n`);
  for (const st of noToken) process.stderr.write(`ga-collector: no access token for ${st.account} (${st.keyFile}): ${st.lastError ?? 'not obtained'}\n`);
  if (discoveryError) process.stderr.write(`ga-collector: discovery: ${discoveryError}\n`);
  process.stdout.write(`${await summaryLine('run --once', daemon.metrics, results, noToken.length, startedAt)}\n`);
  return failed.length || noToken.length || discoveryError ? 1 : 0;
}

function daemonMode(args: CliArgs): boolean {
  return args.command === 'run' && !args.once;
}

/**
 * How long the daemon waits for a database that is down or still starting (as under systemd or
 * compose, where it may start first); the one-shot commands do not wait.
 */
const DATABASE_WAIT_MS = 60_000;

/** `run`: the daemon, until SIGTERM or SIGINT (signals.ts); SIGHUP reloads the configuration file. */
async function runDaemon(daemon: Daemon, config: Config, logger: Logger, args: CliArgs): Promise<number> {
  return runUntilSignalled(
    { start: () => daemon.start({ databaseWaitMs: DATABASE_WAIT_MS }), stop: () => daemon.stop() },
    {
      logger,
      startFailed: (err) => startFailed(err, config, logger),
      started: () => {
        logger.info(
          { event: 'started', properties: config.properties.length, sites: config.searchConsole.sites.length, version: VERSION, http: daemon.http?.url },
          'ga-collector running',
        );
        // in the background: the configured properties start now, the discovered ones join when listed
        void daemon.discover(true);
      },
      stopping: (signal) => logger.info({ event: 'shutdown', signal, graceSeconds: daemon.currentConfig.shutdown.graceSeconds }, 'shutting down'),
      stopped: () => logger.info({ event: 'stopped' }, 'ga-collector stopped'),
      reload: () => daemon.reloadFrom(() => loadConfig({ file: args.config })),
    },
  );
}

/**
 * Says in one line why start-up failed; returns the exit code. A database setting that cannot work
 * (no such database, a refused login, a missing privilege) is exit 2, which systemd does not
 * restart; a database that stayed unavailable, or failing migrations, is 1. A busy port is 1, a
 * wrong http.host or web config 2, each naming the setting.
 */
function startFailed(err: unknown, config: Config, logger: Logger): number {
  if (err instanceof StartError && err.part === 'database') {
    const kind = classifyDbError(err.cause);
    const message = describeDbError(err.cause, config.database.url);
    logger.fatal({ event: 'startup_failed', err: message, kind }, 'cannot prepare the database');
    process.stderr.write(`ga-collector: database: ${message}\n`);
    return kind === 'config' ? 2 : 1;
  }
  const cause = err instanceof StartError ? err.cause : err;
  const named = cause instanceof UsageError || cause instanceof HttpListenError;
  process.stderr.write(`ga-collector: ${named ? '' : 'cannot start: '}${describe(cause)}\n`);
  return cause instanceof UsageError ? 2 : 1;
}

async function backfill(daemon: Daemon, config: Config, args: CliArgs, startedAt: number): Promise<number> {
  // backfillConfig kept the one property asked for; with discovery on, none when it may be a discovered one
  let property: PropertyConfig | undefined = config.properties[0];
  if (!property) {
    const discoveryError = await daemon.discover(false);
    property = daemon.currentConfig.properties.find((p) => p.id === args.property);
    if (!property) {
      await daemon.stop(0);
      if (discoveryError) {
        process.stderr.write(`ga-collector: backfill: property ${args.property} is not in the config, and discovery failed: ${discoveryError}\n`);
        return 1;
      }
      return usageFailure(
        new UsageError(
          `backfill: property ${args.property} is neither in the config nor discovered (discovery keeps ${daemon.currentConfig.properties.length}); add it to properties, or check discovery.accounts, discovery.exclude and its access`,
        ),
      );
    }
  }
  const reports = args.report ? [args.report] : property.reports;
  let range: { from: string; to: string };
  try {
    range = await backfillRange(daemon, property, args);
  } catch (err) {
    await daemon.stop(0);
    return usageFailure(err);
  }
  const outcomes: JobOutcome[] = [];
  for (const report of reports) {
    const r = await daemon.scheduler.backfill(propertySource(property), report, range.from, range.to);
    outcomes.push(r);
    if (!r.ok) {
      process.stderr.write(`ga-collector: backfill ${property.id}/${report}: ${r.error}\n`);
    } else {
      process.stdout.write(`backfill ${property.id}/${report}: ${r.dates} dates, ${r.rows} rows (${range.from} to ${range.to})\n`);
    }
  }
  await daemon.stop(0);
  process.stdout.write(`${await summaryLine(`backfill ${property.id}`, daemon.metrics, outcomes, 0, startedAt)}\n`);
  return outcomes.some((o) => !o.ok) ? 1 : 0;
}

/**
 * The dates to backfill, in the property's own calendar: `NdaysAgo` and `yesterday` resolved
 * against its today. A range that ends after the newest date Google has finished (the property's
 * yesterday) is refused as bad input, as is one that starts after it ends. The time zone comes
 * from the database; a property never fetched before is asked once (a one-row report), since
 * refusing or accepting needs its calendar. Failing to learn it is a runtime failure (exit 1).
 */
async function backfillRange(daemon: Daemon, property: PropertyConfig, args: CliArgs): Promise<{ from: string; to: string }> {
  let finished: { timeZone: string; lastDate: string };
  try {
    finished = await daemon.runner.finishedThrough(property.id, daemon.tokens.forPrincipal(property));
  } catch (err) {
    throw new Error(`backfill ${property.id}: cannot learn the property's time zone (which dates Google has finished): ${describe(err)}`, { cause: err });
  }
  const today = addDays(finished.lastDate, 1);
  const from = resolveDateSpec(parseDateSpec(args.from!)!, today);
  const to = resolveDateSpec(parseDateSpec(args.to!)!, today);
  const named = (flag: string, given: string, date: string) => `${flag} ${given}${given === date ? '' : ` (${date})`}`;
  if (to > finished.lastDate) {
    throw new UsageError(
      `backfill: ${named('--to', args.to!, to)} is after property ${property.id}'s yesterday, ${finished.lastDate} (${finished.timeZone}): Google has not finished later dates; end the range at ${finished.lastDate} (--to yesterday)`,
    );
  }
  if (from > to) throw new UsageError(`backfill: ${named('--from', args.from!, from)} is after ${named('--to', args.to!, to)}`);
  return { from, to };
}

/**
 * The config of a backfill: the one property asked for, which must be in the config (a property
 * outside it would be fetched once and then never kept up to date, nor shown on the status page),
 * with a report it uses. Bad input here is found before the database is touched.
 */
function backfillConfig(config: Config, args: CliArgs): Config {
  const property = config.properties.find((p) => p.id === args.property);
  if (!property) {
    if (config.discovery.enabled) {
      // perhaps a discovered one: backfill() looks it up once the listing is in
      if (args.report && !config.reports[args.report]) {
        throw new UsageError(`backfill: unknown report ${JSON.stringify(args.report)} (defined: ${Object.keys(config.reports).join(', ')})`);
      }
      if (args.report && !config.discovery.reports.includes(args.report)) {
        throw new UsageError(`backfill: discovered properties do not use report ${args.report} (discovery.reports: ${config.discovery.reports.join(', ')})`);
      }
      return { ...config, properties: [] };
    }
    const listed = config.properties.map((p) => p.id);
    throw new UsageError(
      `backfill: property ${args.property} is not in the config (${listed.length ? `properties: ${listed.join(', ')}` : 'no properties configured'}); add it to properties first`,
    );
  }
  if (args.report && !config.reports[args.report]) {
    throw new UsageError(`backfill: unknown report ${JSON.stringify(args.report)} (defined: ${Object.keys(config.reports).join(', ')})`);
  }
  if (args.report && !property.reports.includes(args.report)) {
    throw new UsageError(
      `backfill: property ${property.id} does not use report ${args.report} (its reports: ${property.reports.join(', ')}); add it to the property's reports first`,
    );
  }
  return { ...config, properties: [property] };
}

function usageFailure(err: unknown): number {
  if (err instanceof UsageError) {
    process.stderr.write(`ga-collector: ${err.message}\n`);
    return 2;
  }
  process.stderr.write(`ga-collector: ${describe(err)}\n`);
  return 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`ga-collector: unexpected error: ${describe(err)}\n`);
    process.exit(1);
  },
);
