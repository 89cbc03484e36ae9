#!/usr/bin/env node
/**
 * Runs a fake Google by hand, to try the collector without a Google account (the package's
 * `fake-google` command; from the repository root after `npm run build`):
 *
 *   npx fake-google --port 8089 --key-out /tmp/ga-key.json \
 *     --property 123456:America/Los_Angeles --property 654321:Pacific/Auckland
 *
 * Creates collector@demo-project.iam.gserviceaccount.com, writes its key file
 * (mode 0600), grants it every property and every Search Console site (`--site URL`, repeatable;
 * default sc-domain:example.com), prints one JSON line
 * {url, tokenUrl, apiRootUrl, searchConsoleRootUrl, keyFile} and serves until SIGTERM or SIGINT.
 *
 * `--token-expires-in VALUE` plays a token endpoint that answers differently from Google: VALUE is
 * the JSON sent as `expires_in` (`'"3600"'` a string, `0`, `99999999`), or `omit` to leave it out.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { FakeGoogle } from './server.js';

const ACCOUNT = 'collector@demo-project.iam.gserviceaccount.com';

class UsageError extends Error {}

function positiveInt(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new UsageError(`--${flag} must be a positive integer, got "${value}"`);
  return Number(value);
}

function parse(argv: string[]): { fake: FakeGoogle; keyFile: string; properties: Array<{ id: string; timeZone: string }>; sites: string[] } {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        port: { type: 'string', default: '8089' },
        host: { type: 'string', default: '127.0.0.1' },
        'key-out': { type: 'string', default: '/tmp/ga-key.json' },
        property: { type: 'string', multiple: true, default: [] },
        site: { type: 'string', multiple: true, default: [] },
        'page-size': { type: 'string' },
        'token-lifetime': { type: 'string' },
        'token-expires-in': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const port = Number(values.port);
  if (!/^\d+$/.test(values.port) || port > 65535) throw new UsageError(`--port must be 0-65535, got "${values.port}"`);
  const properties = (values.property.length ? values.property : ['123456:America/Los_Angeles']).map((spec) => {
    const i = spec.indexOf(':');
    const id = i < 0 ? spec : spec.slice(0, i);
    const timeZone = i < 0 ? 'UTC' : spec.slice(i + 1);
    if (!/^\d+$/.test(id)) throw new UsageError(`--property wants ID:TIME_ZONE with a numeric ID, got "${spec}"`);
    try {
      new Intl.DateTimeFormat('en', { timeZone });
    } catch {
      throw new UsageError(`--property ${spec}: unknown time zone "${timeZone}"`);
    }
    return { id, timeZone };
  });
  const maxPageSize = positiveInt('page-size', values['page-size']);
  const tokenLifetimeSeconds = positiveInt('token-lifetime', values['token-lifetime']);
  const fake = new FakeGoogle({
    host: values.host,
    port,
    ...(maxPageSize !== undefined ? { maxPageSize } : {}),
    ...(tokenLifetimeSeconds !== undefined ? { tokenLifetimeSeconds } : {}),
  });
  const expiresIn = values['token-expires-in'];
  if (expiresIn !== undefined) {
    let value: unknown;
    if (expiresIn !== 'omit') {
      try {
        value = JSON.parse(expiresIn);
      } catch {
        throw new UsageError(`--token-expires-in wants a JSON value (3600, '"3600"', null) or omit, got "${expiresIn}"`);
      }
    }
    fake.rewriteTokenResponse((body) => {
      const { expires_in: _, ...rest } = body;
      return expiresIn === 'omit' ? rest : { ...rest, expires_in: value };
    });
  }
  const sites = values.site.length ? values.site : ['sc-domain:example.com'];
  for (const url of sites) {
    try {
      fake.addSite({ url });
    } catch (err) {
      throw new UsageError(`--site: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return { fake, keyFile: resolve(values['key-out']), properties, sites };
}

async function main(): Promise<void> {
  const { fake, keyFile, properties, sites } = parse(process.argv.slice(2));
  await fake.start();
  const key = fake.createAccount(ACCOUNT, { projectId: 'demo-project' });
  for (const p of properties) {
    fake.addProperty(p);
    fake.grant(ACCOUNT, p.id);
  }
  for (const url of sites) fake.grantSite(ACCOUNT, url, 'siteOwner');
  writeFileSync(keyFile, `${JSON.stringify(key, null, 2)}\n`, { mode: 0o600 });
  chmodSync(keyFile, 0o600); // writeFileSync keeps the mode of a file that already exists
  process.stdout.write(
    `${JSON.stringify({ url: fake.url, tokenUrl: fake.tokenUrl, apiRootUrl: fake.apiRootUrl, searchConsoleRootUrl: fake.searchConsoleRootUrl, keyFile })}\n`,
  );
  const shutdown = (): void => {
    fake.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

main().catch((err: unknown) => {
  const usage = err instanceof UsageError;
  process.stderr.write(`fake-google: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(usage ? 2 : 1);
});
