/**
 * Command-line parsing: a command and its flags, strictly (node:util parseArgs), and the help of
 * every command. Unknown input is a UsageError of one line (exit 2), with the nearest flag or
 * command when the input looks like a typo of one.
 */
import { parseArgs as parseFlags } from 'node:util';
import { didYouMean } from './config/problems.js';
import { siteUrlProblem } from './config/searchConsole.js';
import { UsageError } from './errors.js';
import { validateReportName } from './store/identifiers.js';
import { parseDateSpec, type DateSpec } from './time.js';

export type Command = 'run' | 'migrate' | 'backfill' | 'check' | 'status' | 'config' | 'prune' | 'demo';

export interface CliArgs {
  /** `help`: the usage (or `topic`'s help) on stdout; `usage`: no command given, the usage on stderr, exit 2 */
  command: Command | 'help' | 'usage' | 'version';
  /** help for this command */
  topic?: Command;
  config?: string;
  once: boolean;
  /** run --once, backfill: print the plan, fetch and write nothing */
  dryRun: boolean;
  /** check, status: JSON on stdout */
  json: boolean;
  /** prune: really delete */
  yes: boolean;
  property?: string;
  /** backfill, prune: a Search Console site URL (instead of --property) */
  site?: string;
  report?: string;
  from?: string;
  to?: string;
  /** demo: keep the embedded database's data directory */
  keep?: boolean;
  /** demo: the embedded database's data directory (kept) */
  dataDir?: string;
}

interface Flag {
  name: string;
  /** the value's placeholder; none for a switch */
  value?: string;
  doc: string;
}

interface CommandSpec {
  synopsis: string;
  summary: string;
  description: string;
  flags: Flag[];
}

const CONFIG: Flag = { name: 'config', value: 'FILE', doc: 'the config file (YAML or JSON); default: $GA_COLLECTOR_CONFIG' };
const HELP: Flag = { name: 'help', doc: 'this help' };
const DATES = "A DATE is YYYY-MM-DD, NdaysAgo or yesterday, in the property's own time zone.";

const COMMANDS: Record<Command, CommandSpec> = {
  run: {
    synopsis: 'run [--config FILE] [--once [--dry-run]]',
    summary: 'the daemon; with --once: every fetch due now, then exit',
    description: `The daemon: applies pending migrations, fetches at once what is due (gaps, a refresh missed
while it was down), then follows each property's schedule; serves metrics, health and the status
page; runs until SIGTERM or SIGINT. Exit 0 after a clean shutdown.

With --once: every fetch that is due now, once, then a summary line and exit: 0 when all
succeeded, 1 when any failed (or a credential cannot get a token).`,
    flags: [
      CONFIG,
      { name: 'once', doc: 'fetch what is due now, then exit' },
      { name: 'dry-run', doc: 'with --once: print the plan (property, report, date ranges, expected requests); fetch, migrate and write nothing' },
      HELP,
    ],
  },
  migrate: {
    synopsis: 'migrate [--config FILE]',
    summary: 'apply pending database migrations',
    description: 'Applies pending database migrations and says which (or that the schema is current). Exit 0, or 1\nwhen they cannot be applied.',
    flags: [CONFIG, HELP],
  },
  backfill: {
    synopsis: 'backfill --property ID | --site URL [--report NAME] --from DATE --to DATE [--config FILE] [--dry-run]',
    summary: 'fetch and store a date range now',
    // one line per paragraph: commandHelp wraps it
    description: [
      `Fetches and stores the dates from --from through --to (both included) now, replacing each date whole, then prints a summary line. ${DATES} --to may not be after the property's yesterday (Google has not finished later dates).`,
      "For a Search Console site, dates are Pacific; --to may not be after the newest date Google serves the report's dataState (today-3 for final, today-1 for all), and --from may not be before the oldest it serves (Search Console keeps about 16 months).",
      'The property or site, and the report, must be in the config. Exit 0, 1 when a report failed, 2 for bad input.',
    ].join('\n'),
    flags: [
      CONFIG,
      { name: 'property', value: 'ID', doc: 'the numeric GA4 property id (this or --site)' },
      { name: 'site', value: 'URL', doc: 'a site of searchConsole.sites, as listed there (sc-domain:example.com, https://www.example.com/)' },
      { name: 'report', value: 'NAME', doc: 'one report; default: every report of the property or site' },
      { name: 'from', value: 'DATE', doc: 'the first date, included (required)' },
      { name: 'to', value: 'DATE', doc: 'the last date, included (required)' },
      { name: 'dry-run', doc: 'print the plan (dates, expected requests); fetch and write nothing' },
      HELP,
    ],
  },
  check: {
    synopsis: 'check [--config FILE] [--json]',
    summary: 'check config, key files, tokens, database and property access',
    description:
      'Tries everything a first run needs (config, each key file and token exchange, the database and\nits privileges, each property and its reports) and prints a row per check, with the fix of each\nfailing one. Writes nothing. Exit 0 when every check passed (warnings allowed), 1 otherwise.',
    flags: [CONFIG, { name: 'json', doc: 'the checks as one JSON document on stdout' }, HELP],
  },
  status: {
    synopsis: 'status [--config FILE] [--json]',
    summary: 'what the database holds: data through, gaps, revising and flagged dates',
    description: `From the database alone (no Google, no token): per configured property and report, the data
through which date, gaps, the last fetch, the dates still revising (settled = false), the dates
with a data-quality flag (thresholding, sampling, an "(other)" row), and a failing last run.
Exit 0, or 1 when any gap or failing run is recorded.`,
    flags: [CONFIG, { name: 'json', doc: 'the status as one JSON document on stdout' }, HELP],
  },
  config: {
    synopsis: 'config [--config FILE]',
    summary: 'the configuration in effect, each value with its source',
    description:
      'Prints the configuration in effect (file, environment and defaults applied) with the source of\neach value (the file, an environment variable, or the default). Secrets are redacted: the\ndatabase password is never printed. Exit 0, or 2 for a bad configuration.',
    flags: [CONFIG, HELP],
  },
  prune: {
    synopsis: 'prune [--config FILE] --property ID | --site URL | --report NAME [--yes]',
    summary: 'delete the data of a property, site or report that left the config',
    description: `Deletes the stored rows and the ledger (fetch_days) of a GA4 property, of a Search Console site,
of a report (its tables are dropped; GA4's or Search Console's, whichever has it), or, with
--report beside --property or --site, of one report of a property or site, once it is no longer
in the configuration. Without --yes it only says what it would delete (rows per table). With
--yes it deletes it all in one transaction, or nothing (exit 1) while a running daemon still
fetches it (reload that daemon without it first). Refuses (exit 2) anything still configured.
Exit 0, 1 on a database failure, 2 for bad input.`,
    flags: [
      CONFIG,
      { name: 'property', value: 'ID', doc: 'a GA4 property id no longer in properties' },
      {
        name: 'site',
        value: 'URL',
        doc: 'a Search Console site no longer in searchConsole.sites, spelt as it was there (sc-domain:example.com, https://www.example.com/)',
      },
      { name: 'report', value: 'NAME', doc: 'a report no longer in reports or searchConsole.reports (with --property or --site: one it no longer uses)' },
      { name: 'yes', doc: 'delete; without it, only say what would be deleted' },
      HELP,
    ],
  },
  demo: {
    synopsis: 'demo [--keep] [--data-dir DIR]',
    summary: 'the whole pipeline on this machine, with a simulated Google',
    description: 'Runs the whole pipeline on this machine: an embedded PostgreSQL (or DATABASE_URL) and a simulated\nGoogle, until Ctrl-C.',
    flags: [
      { name: 'keep', doc: "keep the embedded database's data directory" },
      { name: 'data-dir', value: 'DIR', doc: "the embedded database's data directory (kept)" },
      HELP,
    ],
  },
};

const NAMES = Object.keys(COMMANDS) as Command[];

/** The overview: every command in one line. */
export function usage(): string {
  const w = Math.max(...NAMES.map((n) => n.length));
  return [
    'usage: ga-collector <command> [flags]',
    '',
    'commands:',
    ...NAMES.map((n) => `  ${n.padEnd(w)}  ${COMMANDS[n].summary}`),
    '',
    "`ga-collector <command> --help` shows a command's flags; `ga-collector --version` the version.",
    'The config file may also come from GA_COLLECTOR_CONFIG; every key can come from the environment.',
  ].join('\n');
}

/** The width help text is wrapped to (the descriptions are written to it). */
const HELP_WIDTH = 100;

/** `text` wrapped at spaces to HELP_WIDTH columns, each line after the first indented by `indent` spaces. */
function wrap(text: string, indent: number): string {
  const lead = /^ */.exec(text)![0];
  const lines: string[] = [];
  let line = lead;
  for (const word of text.slice(lead.length).split(' ')) {
    if (line.trim() && line.length + 1 + word.length > HELP_WIDTH) {
      lines.push(line);
      line = ' '.repeat(indent) + word;
    } else line = line.trim() ? `${line} ${word}` : line + word;
  }
  return [...lines, line].join('\n');
}

/** One command's help: synopsis, what it does and its exit codes, every flag; lines no wider than HELP_WIDTH. */
export function commandHelp(command: Command): string {
  const spec = COMMANDS[command];
  const label = (f: Flag) => `${f.name === 'help' ? '-h, ' : ''}--${f.name}${f.value ? ` ${f.value}` : ''}`;
  const w = Math.max(...spec.flags.map((f) => label(f).length));
  return [
    wrap(`usage: ga-collector ${spec.synopsis}`, 'usage: ga-collector '.length),
    '',
    spec.description
      .split('\n')
      .map((l) => wrap(l, 0))
      .join('\n'),
    '',
    'flags:',
    ...spec.flags.map((f) => wrap(`  ${label(f).padEnd(w)}  ${f.doc}`, w + 4)),
  ].join('\n');
}

/** Parses argv (without node and the script). Throws UsageError for anything it does not take. */
export function parseArgs(argv: string[]): CliArgs {
  const base = { once: false, dryRun: false, json: false, yes: false };
  const [first, ...rest] = argv;
  if (first === undefined) return { command: 'usage', ...base };
  if (first === '--help' || first === '-h') return { command: 'help', ...base };
  if (first === '--version' || first === '-v' || first === 'version') return { command: 'version', ...base };
  if (first === 'help') {
    const topic = rest[0];
    if (topic === undefined) return { command: 'help', ...base };
    if (!isCommand(topic)) throw unknownCommand(topic);
    return { command: 'help', topic, ...base };
  }
  if (!isCommand(first)) throw unknownCommand(first);
  const command = first;
  const spec = COMMANDS[command];
  const options = Object.fromEntries(
    spec.flags.map((f) => [f.name, { type: f.value ? ('string' as const) : ('boolean' as const), ...(f.name === 'help' ? { short: 'h' } : {}) }]),
  );
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseFlags({ args: rest, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw flagError(command, spec, err);
  }
  if (values['help'] === true) return { command: 'help', topic: command, ...base };
  for (const f of spec.flags) {
    if (f.value && values[f.name] === '') throw new UsageError(`${command}: --${f.name} needs a value (${f.value})`);
  }
  const str = (name: string) => (typeof values[name] === 'string' ? (values[name] as string) : undefined);
  const args: CliArgs = {
    command,
    once: values['once'] === true,
    dryRun: values['dry-run'] === true,
    json: values['json'] === true,
    yes: values['yes'] === true,
  };
  const assign = <K extends keyof CliArgs>(key: K, value: CliArgs[K] | undefined) => {
    if (value !== undefined) args[key] = value;
  };
  assign('config', str('config'));
  assign('property', str('property'));
  assign('site', str('site'));
  assign('report', str('report'));
  assign('from', str('from'));
  assign('to', str('to'));
  assign('dataDir', str('data-dir'));
  if (values['keep'] === true) args.keep = true;
  if (command === 'run' && args.dryRun && !args.once) {
    throw new UsageError('run: --dry-run goes with --once (the daemon itself has no dry run): ga-collector run --once --dry-run');
  }
  if (command === 'backfill') checkBackfill(args);
  if (command === 'prune') checkPrune(args);
  return args;
}

function isCommand(name: string): name is Command {
  return Object.hasOwn(COMMANDS, name);
}

function unknownCommand(name: string): UsageError {
  const hint = name.startsWith('-') ? didYouMean(name, ['--help', '--version']) : didYouMean(name, NAMES);
  return new UsageError(`unknown command ${JSON.stringify(name)} (commands: ${NAMES.join(', ')}; see --help)${hint}`);
}

/** parseArgs' errors, as one line naming the flag and the ones the command takes. */
function flagError(command: Command, spec: CommandSpec, err: unknown): UsageError {
  const code = (err as { code?: string }).code;
  const message = err instanceof Error ? err.message : String(err);
  const flags = spec.flags.map((f) => `--${f.name}`);
  const named = /'(-{1,2}[^' <]+)/.exec(message)?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && named) {
    return new UsageError(`${command}: unknown flag ${named} (flags: ${flags.join(', ')})${didYouMean(named, flags)}`);
  }
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && named) {
    const flag = spec.flags.find((f) => `--${f.name}` === named);
    if (flag?.value) return new UsageError(`${command}: ${named} needs a value (${flag.value})`);
    return new UsageError(`${command}: ${named} takes no value`);
  }
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    const arg = /'([^']*)'/.exec(message)?.[1] ?? '';
    return new UsageError(`${command}: unexpected argument ${JSON.stringify(arg)} (flags: ${flags.join(', ')})`);
  }
  return new UsageError(`${command}: ${message.split('\n')[0]}`);
}

function checkBackfill(args: CliArgs): void {
  if (args.property && args.site) throw new UsageError('backfill: give --property ID or --site URL, not both');
  if (!args.property && !args.site) throw new UsageError('backfill: --property ID (GA4) or --site URL (Search Console) is required');
  if (args.property && !/^[0-9]+$/.test(args.property))
    throw new UsageError(`backfill: --property must be a numeric GA4 property id, got ${JSON.stringify(args.property)}`);
  const from = backfillDate('from', args.from, args.site !== undefined);
  const to = backfillDate('to', args.to, args.site !== undefined);
  // comparable without the property's calendar when both are dates or both are relative
  const after = from.kind === 'date' && to.kind === 'date' ? from.date > to.date : from.kind === 'ago' && to.kind === 'ago' ? from.days < to.days : false;
  if (after) throw new UsageError(`backfill: --from ${args.from} is after --to ${args.to}`);
}

/** A backfill date: well formed, and never today (neither GA nor Search Console has finished it). */
function backfillDate(flag: 'from' | 'to', value: string | undefined, site: boolean): DateSpec {
  if (!value) throw new UsageError(`backfill: --${flag} DATE is required (YYYY-MM-DD, NdaysAgo or yesterday)`);
  const spec = parseDateSpec(value);
  if (!spec) throw new UsageError(`backfill: --${flag} must be a date as YYYY-MM-DD, NdaysAgo or yesterday, got ${JSON.stringify(value)}`);
  if (spec.kind === 'ago' && spec.days === 0) {
    throw new UsageError(
      site
        ? `backfill: --${flag} ${value}: Search Console has not finished today (Pacific), so it is never stored; the newest date to ask for is 3daysAgo for final data (dataState final), yesterday for dataState all`
        : `backfill: --${flag} ${value}: GA has not finished today, so it is never stored; the newest date to ask for is yesterday`,
    );
  }
  return spec;
}

function checkPrune(args: CliArgs): void {
  if (args.property && args.site) throw new UsageError('prune: give --property ID or --site URL, not both');
  if (!args.property && !args.site && !args.report)
    throw new UsageError('prune: say what to prune: --property ID, --site URL, --report NAME, or --report with one of the others (one report of it)');
  if (args.property && !/^[0-9]+$/.test(args.property))
    throw new UsageError(`prune: --property must be a numeric GA4 property id, got ${JSON.stringify(args.property)}`);
  const siteProblem = args.site ? siteUrlProblem(args.site) : null;
  if (siteProblem) throw new UsageError(`prune: --site is no Search Console site name: ${siteProblem}`);
  if (args.report) {
    const problem = validateReportName(args.report);
    if (problem) throw new UsageError(`prune: --report ${JSON.stringify(args.report)}: ${problem}`);
  }
}
