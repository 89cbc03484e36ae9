/**
 * The logger factory. Redaction lives here and nowhere else: any field that can carry a secret
 * (a private key, an access token, a signed assertion, a connection string with a password) is
 * censored by pino before a line is written, whatever the caller passed.
 */
import { pino, type Logger, type DestinationStream } from 'pino';
import { createRequire } from 'node:module';

export type { Logger };

const REDACT_PATHS = [
  'private_key',
  '*.private_key',
  'privateKey',
  '*.privateKey',
  'access_token',
  '*.access_token',
  'accessToken',
  '*.accessToken',
  'assertion',
  '*.assertion',
  'authorization',
  '*.authorization',
  '*.headers.authorization',
  '*.headers.Authorization',
  'password',
  '*.password',
  'databaseUrl',
  '*.databaseUrl',
];

/** `json`: one pino JSON object per line (for journald, Docker, log shippers); `pretty`: for people. */
export type LogFormat = 'json' | 'pretty';

/** The format when none is configured: pretty on a terminal, JSON everywhere else. */
export function defaultLogFormat(stream: { isTTY?: boolean } = process.stdout): LogFormat {
  return stream.isTTY ? 'pretty' : 'json';
}

/**
 * A logger at `level` writing to `destination` (default: stdout, synchronously, so nothing is lost
 * on exit). `pretty` goes through pino-pretty, the pino ecosystem's own formatter, in this thread
 * (no transport worker): redaction has already happened when it formats a line.
 */
export function createLogger(level: string, destination?: DestinationStream, format: LogFormat = 'json'): Logger {
  const dest = destination ?? pino.destination({ dest: 1, sync: true });
  const out =
    format === 'pretty'
      ? loadPinoPretty()({
          destination: dest,
          sync: true,
          colorize: destination === undefined && process.stdout.isTTY === true,
          translateTime: 'SYS:HH:MM:ss.l',
          ignore: 'pid,hostname,service',
          singleLine: true,
        })
      : dest;
  return pino(
    {
      level,
      base: { service: 'ga-collector' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    out,
  );
}

/**
 * pino-pretty, loaded only for the `pretty` format (a terminal): a service logging JSON never loads
 * it. Synchronous (the package is CommonJS), as createLogger is.
 */
function loadPinoPretty(): typeof import('pino-pretty').PinoPretty {
  return (createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty')).PinoPretty;
}

/**
 * A connection string fit for a log line: the password is replaced (in the user part, or given as
 * libpq's `password` / `sslpassword` parameter), the rest kept for debugging.
 */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const k of ['password', 'sslpassword']) if (u.searchParams.has(k)) u.searchParams.set(k, '***');
    return u.toString();
  } catch {
    return '[unparseable url]';
  }
}
