/**
 * The logger factory. Redaction lives here and nowhere else: any field that can carry a secret
 * (a private key, an access token, a signed assertion, a connection string with a password) is
 * censored by pino before a line is written, whatever the caller passed.
 */
import { pino, type Logger, type DestinationStream } from 'pino';

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

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'ga-collector' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/** A connection string fit for a log line: the password is replaced, the rest kept for debugging. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '[unparseable url]';
  }
}
