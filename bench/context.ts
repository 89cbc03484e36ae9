/** What every benchmark scenario shares: the database, the fake Google (in this process), a key file and a directory. */
import fs from 'node:fs';
import path from 'node:path';
import type { FakeGoogle } from '@ga-collector/fake-google';
import { createLogger } from '../src/log.js';
import type { BenchDb } from './lib.js';

export interface BenchContext {
  db: BenchDb;
  fake: FakeGoogle;
  /** the service account's key file (token_uri: the fake's token URL) and its email */
  keyFile: string;
  account: string;
  tmp: string;
}

export const silentLogger = createLogger('silent');

/** Writes a collector config file (JSON, log level info so job_succeeded lines can be read); returns its path. */
export function writeConfig(ctx: BenchContext, name: string, value: Record<string, unknown>): string {
  const file = path.join(ctx.tmp, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify({ log: { level: 'info' }, ...value }));
  return file;
}
