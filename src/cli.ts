/** Command-line parsing: a command and its flags, strictly. Unknown input is a UsageError. */
import { UsageError } from './errors.js';
import { parseDateSpec, type DateSpec } from './time.js';

export type Command = 'run' | 'migrate' | 'backfill' | 'check' | 'demo' | 'help' | 'version';

export interface CliArgs {
  command: Command;
  config?: string;
  once: boolean;
  property?: string;
  report?: string;
  from?: string;
  to?: string;
  /** demo: keep the embedded database's data directory */
  keep?: boolean;
  /** demo: the embedded database's data directory (kept) */
  dataDir?: string;
}

const FLAGS: Record<Command, string[]> = {
  run: ['--config', '--once'],
  migrate: ['--config'],
  backfill: ['--config', '--property', '--report', '--from', '--to'],
  check: ['--config'],
  demo: ['--keep', '--data-dir'],
  help: [],
  version: [],
};
const VALUED = new Set(['--config', '--property', '--report', '--from', '--to', '--data-dir']);

export const USAGE = `usage: ga-collector <command> [options]

commands:
  run [--config FILE] [--once]      the daemon (with --once: every fetch due now, then exit)
  migrate [--config FILE]           apply pending database migrations
  backfill --property ID [--report NAME] --from DATE --to DATE [--config FILE]
                                    fetch and store that range now, --from and --to included; a
                                    DATE is YYYY-MM-DD, NdaysAgo or yesterday in the property's own
                                    time zone; --to may not be after the property's yesterday (GA
                                    has not finished later dates); the property must be in the config
  check [--config FILE]             check config, key files, tokens, database and property access
  demo [--keep] [--data-dir DIR]    the whole pipeline on this machine: an embedded PostgreSQL (or
                                    DATABASE_URL) and a simulated Google, until Ctrl-C

The config file may also come from GA_COLLECTOR_CONFIG; every key can come from the environment.`;

export function parseArgs(argv: string[]): CliArgs {
  const [first, ...rest] = argv;
  if (first === undefined || first === 'help' || first === '--help' || first === '-h') return { command: 'help', once: false };
  if (first === 'version' || first === '--version' || first === '-v') return { command: 'version', once: false };
  if (!(first in FLAGS)) throw new UsageError(`unknown command ${JSON.stringify(first)} (commands: run, migrate, backfill, check, demo; see --help)`);
  const command = first as Command;
  const args: CliArgs = { command, once: false };
  for (let i = 0; i < rest.length; i++) {
    const token = rest[i]!;
    if (token === '--help' || token === '-h') return { command: 'help', once: false };
    const eq = token.indexOf('=');
    const flag = token.startsWith('--') && eq > 0 ? token.slice(0, eq) : token;
    if (!flag.startsWith('--')) throw new UsageError(`${command}: unexpected argument ${JSON.stringify(token)}`);
    if (!FLAGS[command].includes(flag)) throw new UsageError(`${command}: unknown flag ${flag} (allowed: ${FLAGS[command].join(', ') || 'none'})`);
    let value: string | undefined;
    if (VALUED.has(flag)) {
      value = eq > 0 ? token.slice(eq + 1) : rest[++i];
      if (value === undefined || value === '' || (eq < 0 && value.startsWith('--'))) throw new UsageError(`${command}: ${flag} needs a value`);
    } else if (eq > 0) {
      throw new UsageError(`${command}: ${flag} takes no value`);
    }
    switch (flag) {
      case '--config': args.config = value!; break;
      case '--once': args.once = true; break;
      case '--property': args.property = value!; break;
      case '--report': args.report = value!; break;
      case '--from': args.from = value!; break;
      case '--to': args.to = value!; break;
      case '--keep': args.keep = true; break;
      case '--data-dir': args.dataDir = value!; break;
    }
  }
  if (command === 'backfill') {
    if (!args.property) throw new UsageError('backfill: --property ID is required');
    if (!/^[0-9]+$/.test(args.property)) throw new UsageError(`backfill: --property must be a numeric GA4 property id, got ${JSON.stringify(args.property)}`);
    const from = backfillDate('from', args.from);
    const to = backfillDate('to', args.to);
    // comparable without the property's calendar when both are dates or both are relative
    const after = from.kind === 'date' && to.kind === 'date' ? from.date > to.date : from.kind === 'ago' && to.kind === 'ago' ? from.days < to.days : false;
    if (after) {
      throw new UsageError(`backfill: --from ${args.from} is after --to ${args.to}`);
    }
  }
  return args;
}

/** A backfill date: well formed, and never today (GA has not finished it). */
function backfillDate(flag: 'from' | 'to', value: string | undefined): DateSpec {
  if (!value) throw new UsageError(`backfill: --${flag} DATE is required (YYYY-MM-DD, NdaysAgo or yesterday)`);
  const spec = parseDateSpec(value);
  if (!spec) throw new UsageError(`backfill: --${flag} must be a date as YYYY-MM-DD, NdaysAgo or yesterday, got ${JSON.stringify(value)}`);
  if (spec.kind === 'ago' && spec.days === 0) {
    throw new UsageError(`backfill: --${flag} ${value}: GA has not finished today, so it is never stored; the newest date to ask for is yesterday`);
  }
  return spec;
}
