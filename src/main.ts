#!/usr/bin/env node
/**
 * The one place that wires everything: parses the command line, loads the config, builds the
 * daemon's parts and runs the command. Exit codes: 0 success, 1 a failure at run time, 2 bad
 * input (command line, config, key file), with one line on stderr saying what is wrong.
 */
import { USAGE, parseArgs, type CliArgs } from './cli.js';
import { loadConfig, type Config, type PropertyConfig } from './config.js';
import { Daemon } from './daemon.js';
import { UsageError, describe } from './errors.js';
import { HttpListenError } from './http/server.js';
import { createLogger, defaultLogFormat, type Logger } from './log.js';
import { runCheck } from './check.js';
import { sleep } from './ga4/client.js';
import { classifyDbError, describeDbError, isDatabaseUnavailable } from './store/dbErrors.js';
import { addDays, parseDateSpec, resolveDateSpec } from './time.js';
import { VERSION } from './version.js';

async function main(argv: string[]): Promise<number> {
  let args: CliArgs;
  try {
    args = parseArgs(argv);
  } catch (err) {
    return usageFailure(err);
  }
  switch (args.command) {
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return 0;
    case 'version':
      process.stdout.write(`ga-collector ${VERSION}\n`);
      return 0;
    case 'demo': {
      // loaded only here: the fake Google and the embedded database stay off the production path
      const { runDemo } = await import('./demo/demo.js');
      return runDemo({ keep: args.keep === true, dataDir: args.dataDir });
    }
    default:
      break;
  }
  let config: Config;
  try {
    config = loadConfig({ file: args.config, requireCredentials: args.command !== 'migrate' });
  } catch (err) {
    return usageFailure(err);
  }
  const logger = createLogger(config.log.level, undefined, config.log.format ?? defaultLogFormat());
  if (args.command === 'check') return runCheck(config, logger);
  let daemon: Daemon;
  try {
    if (args.command === 'backfill') config = backfillConfig(config, args);
    const daemonMode = args.command === 'run' && !args.once;
    daemon = new Daemon({ config, logger, http: daemonMode, continueBacklog: daemonMode, progressBar: args.command === 'backfill' && process.stderr.isTTY ? process.stderr : null });
  } catch (err) {
    return usageFailure(err);
  }
  try {
    await prepareWithRetry(daemon, logger, args.command === 'run' && !args.once, config.database.url);
  } catch (err) {
    // a setting (no such database, a refused login, a missing privilege) is exit 2, which systemd does not restart
    const kind = classifyDbError(err);
    const message = describeDbError(err, config.database.url);
    logger.fatal({ event: 'startup_failed', err: message, kind }, 'cannot prepare the database');
    process.stderr.write(`ga-collector: database: ${message}\n`);
    await daemon.stop(0);
    return kind === 'config' ? 2 : 1;
  }
  if (args.command === 'migrate') {
    await daemon.stop(0);
    return 0;
  }
  if (args.command === 'backfill') return backfill(daemon, config, args);
  if (args.once) {
    await daemon.startServices();
    const results = await daemon.scheduler.runOnce();
    // a credential that cannot get a token fails the run even when nothing was due (and so nothing asked Google)
    const noToken = daemon.tokens.sources().map((s) => s.status()).filter((st) => !st.valid);
    await daemon.stop(0);
    const failed = results.filter((r) => !r.ok);
    for (const f of failed) process.stderr.write(`ga-collector: ${f.error}\n`);
    for (const st of noToken) process.stderr.write(`ga-collector: no access token for ${st.account} (${st.keyFile}): ${st.lastError ?? 'not obtained'}\n`);
    return failed.length || noToken.length ? 1 : 0;
  }
  return runDaemon(daemon, config, logger, args);
}

async function runDaemon(daemon: Daemon, config: Config, logger: Logger, args: CliArgs): Promise<number> {
  try {
    await daemon.startServices();
  } catch (err) {
    // a busy port or a wrong http.host is said in one line naming the setting
    const named = err instanceof UsageError || err instanceof HttpListenError;
    process.stderr.write(`ga-collector: ${named ? '' : 'cannot start: '}${describe(err)}\n`);
    await daemon.stop(0);
    return err instanceof UsageError ? 2 : 1;
  }
  daemon.scheduler.start();
  logger.info({ event: 'started', properties: config.properties.length, version: VERSION, http: daemon.http?.url }, 'ga-collector running');
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ event: 'forced_exit', signal }, 'second signal: exiting now');
        resolve(signal === 'SIGINT' ? 130 : 143);
        return;
      }
      stopping = true;
      logger.info({ event: 'shutdown', signal, graceSeconds: daemon.currentConfig.shutdown.graceSeconds }, 'shutting down');
      daemon.stop().then(
        () => {
          logger.info({ event: 'stopped' }, 'ga-collector stopped');
          resolve(0);
        },
        (err) => {
          logger.error({ event: 'shutdown_failed', err: describe(err) }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    // a refused reload is on the status page and in a metric, not only in the log
    const reloadFailed = (err: unknown) => {
      logger.error({ event: 'reload_failed', err: describe(err) }, 'configuration reload failed; keeping the running configuration');
      daemon.board.recordReload(Date.now(), describe(err));
      daemon.metrics.configReloads.inc({ outcome: 'failure' });
    };
    process.on('SIGHUP', () => {
      if (stopping) return;
      let next: Config;
      try {
        next = loadConfig({ file: args.config });
      } catch (err) {
        reloadFailed(err);
        return;
      }
      daemon.reload(next).then(() => {
        logger.info({ event: 'reloaded', properties: next.properties.length, reports: Object.keys(next.reports) }, 'configuration reloaded');
        daemon.board.recordReload(Date.now(), null);
        daemon.metrics.configReloads.inc({ outcome: 'success' });
      }, reloadFailed);
    });
  });
}

async function backfill(daemon: Daemon, config: Config, args: CliArgs): Promise<number> {
  await daemon.startServices();
  // backfillConfig kept the one property asked for
  const property = config.properties[0]!;
  const reports = args.report ? [args.report] : property.reports;
  let range: { from: string; to: string };
  try {
    range = await backfillRange(daemon, property, args);
  } catch (err) {
    await daemon.stop(0);
    return usageFailure(err);
  }
  let failed = 0;
  for (const report of reports) {
    const r = await daemon.scheduler.backfill(property, report, range.from, range.to);
    if (!r.ok) {
      failed++;
      process.stderr.write(`ga-collector: backfill ${property.id}/${report}: ${r.error}\n`);
    } else {
      process.stdout.write(`backfill ${property.id}/${report}: ${r.dates} dates, ${r.rows} rows (${range.from} to ${range.to})\n`);
    }
  }
  await daemon.stop(0);
  return failed ? 1 : 0;
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
    const listed = config.properties.map((p) => p.id);
    throw new UsageError(
      `backfill: property ${args.property} is not in the config (${listed.length ? `properties: ${listed.join(', ')}` : 'no properties configured'}); add it to properties first`,
    );
  }
  if (args.report && !config.reports[args.report]) {
    throw new UsageError(`backfill: unknown report ${JSON.stringify(args.report)} (defined: ${Object.keys(config.reports).join(', ')})`);
  }
  if (args.report && !property.reports.includes(args.report)) {
    throw new UsageError(`backfill: property ${property.id} does not use report ${args.report} (its reports: ${property.reports.join(', ')}); add it to the property's reports first`);
  }
  return { ...config, properties: [property] };
}

/**
 * The daemon waits up to a minute for a database that is down or still starting (as under systemd
 * or compose), retrying with backoff; commands do not wait. Only such a database is waited for
 * (dbErrors.ts): a setting that cannot work (no such database, a refused login) or a failure of
 * the migrations themselves is thrown at once.
 */
async function prepareWithRetry(daemon: Daemon, logger: Logger, patient: boolean, url: string): Promise<void> {
  const deadline = Date.now() + (patient ? 60_000 : 0);
  for (let attempt = 1; ; attempt++) {
    try {
      await daemon.prepare();
      return;
    } catch (err) {
      if (!patient || Date.now() > deadline || !isDatabaseUnavailable(err)) throw err;
      logger.warn({ event: 'database_unavailable', err: describeDbError(err, url), attempt }, 'database not ready; retrying');
      await sleep(Math.min(10_000, 500 * 2 ** attempt));
    }
  }
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
