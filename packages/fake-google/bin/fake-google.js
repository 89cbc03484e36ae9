#!/usr/bin/env node
// The package's command. A committed shim rather than dist/cli.js itself: npm links a workspace's
// bins at `npm ci`, before any build has made dist/, and skips a bin whose file is missing.
import { existsSync } from 'node:fs';
import { URL } from 'node:url';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('fake-google: not built yet; run `npm run build` at the repository root first\n');
  process.exit(1);
}
await import(cli.href);
