#!/usr/bin/env node
/**
 * The one place that wires everything: parses the command line, loads the config, builds the
 * daemon's parts and runs the command. Exit codes: 0 success, 1 a failure at run time, 2 bad
 * input (command line, config, key file), with one line on stderr saying what is wrong.
 */
import { USAGE, parseArgs, type CliArgs } from './cli.js';
import { loadConfig, type Config } from './config.js';
import { Daemon } from './daemon.js';
import { UsageError, describe } from './errors.js';
import { HttpListenError } from './http/server.js';
import { createLogger, defaultLogFormat, type Logger } from './log.js';
import { runCheck } from './check.js';
import { sleep } from './ga4/client.js';
import { classifyDbError, describeDbError, isDatabaseUnavailable } from './store/dbErrors.js';
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
    await daemon.stop(0);
    const failed = results.filter((r) => !r.ok);
    for (const f of failed) process.stderr.write(`ga-collector: ${f.error}\n`);
    return failed.length ? 1 : 0;
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
      logger.info({ event: 'shutdown', signal, graceSeconds: config.shutdown.graceSeconds }, 'shutting down');
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
  const property = config.properties.find((p) => p.id === args.property)!;
  const reports = args.report ? [args.report] : property.reports;
  let failed = 0;
  for (const report of reports) {
    const r = await daemon.scheduler.backfill(property, report, args.from!, args.to!);
    if (!r.ok) {
      failed++;
      process.stderr.write(`ga-collector: backfill ${property.id}/${report}: ${r.error}\n`);
    } else {
      process.stdout.write(`backfill ${property.id}/${report}: ${r.dates} dates, ${r.rows} rows\n`);
    }
  }
  await daemon.stop(0);
  return failed ? 1 : 0;
}

function backfillConfig(config: Config, args: CliArgs): Config {
  let property = config.properties.find((p) => p.id === args.property);
  if (!property) {
    if (!config.google.credentials) {
      throw new UsageError(`backfill: property ${args.property} is not in the config and google.credentials is not set`);
    }
    property = { id: args.property!, reports: Object.keys(config.reports), schedule: config.schedule, credentials: config.google.credentials };
  }
  if (args.report && !config.reports[args.report]) {
    throw new UsageError(`backfill: unknown report ${JSON.stringify(args.report)} (defined: ${Object.keys(config.reports).join(', ')})`);
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
