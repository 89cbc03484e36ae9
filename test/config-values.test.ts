import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { configSchema, loadConfig, schemaLeaves } from '../src/config/index.js';
import { UsageError } from '../src/errors.js';
import { runCli, tmpDir } from './helpers.js';

const dir = tmpDir('config-values');
const DB = 'postgres://u:secretpw@localhost/db';

function file(content: string): string {
  const f = path.join(dir, `c-${Math.random().toString(36).slice(2)}.yaml`);
  fs.writeFileSync(f, content);
  return f;
}

/** The one-line UsageError loading `content` (and `env`) gives. */
function refused(content: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    loadConfig({ file: file(content), env: { DATABASE_URL: DB, ...env } });
  } catch (err) {
    assert.ok(err instanceof UsageError, `expected UsageError, got ${String(err)}`);
    assert.ok(!err.message.includes('\n'), 'one line');
    return err.message;
  }
  assert.fail(`expected ${JSON.stringify(content)} ${JSON.stringify(env)} to be refused`);
}

const load = (content: string, env: NodeJS.ProcessEnv = {}) => loadConfig({ file: file(content), env: { DATABASE_URL: DB, ...env } });

/** Every schema key whose default is a number, with its variable: concurrency, http.port, fetch.*, shutdown.graceSeconds. */
function numericLeaves(): Array<{ key: string; env: string; integer: boolean }> {
  const defaults = configSchema() as unknown as Record<string, unknown>;
  const defaultOf = (key: string) => key.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown>)[part], defaults) as { default: unknown };
  return schemaLeaves()
    .filter((l) => l.env !== undefined && typeof defaultOf(l.key).default === 'number')
    .map((l) => ({ key: l.key, env: l.env!, integer: Number.isInteger(defaultOf(l.key).default) }));
}

describe('numbers are read whole', () => {
  it('refuses trailing garbage, exponents, hex and fractions for whole-number keys from the environment', () => {
    for (const [variable, key] of [
      ['GA_COLLECTOR_PER_PROPERTY_CONCURRENCY', 'fetch.perPropertyConcurrency'],
      ['GA_COLLECTOR_CONCURRENCY', 'concurrency'],
    ] as const) {
      for (const value of ['4x', '1e1', '0x10', '2.5', '+', '', '4 4']) {
        assert.equal(refused('', { [variable]: value }), `config: ${key}: must be a positive integer, got ${JSON.stringify(value)} from ${variable}`);
      }
    }
    assert.equal(refused('', { GA_COLLECTOR_HTTP_PORT: '95x' }), 'config: http.port: must be a port from 0 to 65535, got "95x" from GA_COLLECTOR_HTTP_PORT');
    assert.equal(
      refused('', { GA_COLLECTOR_HTTP_PORT: '70000' }),
      'config: http.port: must be a port from 0 to 65535, got "70000" from GA_COLLECTOR_HTTP_PORT',
    );
    // the refusals that were already right stay as they were
    assert.equal(refused('', { GA_COLLECTOR_CONCURRENCY: 'abc' }), 'config: concurrency: must be a positive integer, got "abc" from GA_COLLECTOR_CONCURRENCY');
    assert.equal(refused('', { GA_COLLECTOR_CONCURRENCY: '0' }), 'config: concurrency: must be at least 1, got "0" from GA_COLLECTOR_CONCURRENCY');
  });

  it('takes a whole number, with spaces around it, from the environment', () => {
    const c = load('', { GA_COLLECTOR_CONCURRENCY: ' 4 ', GA_COLLECTOR_PER_PROPERTY_CONCURRENCY: '10', GA_COLLECTOR_HTTP_PORT: '0' });
    assert.equal(c.concurrency, 4);
    assert.equal(c.fetch.perPropertyConcurrency, 10);
    assert.equal(c.http.port, 0);
  });

  it('refuses every numeric key given a number with garbage after it, naming the key and the variable', () => {
    const leaves = numericLeaves();
    assert.ok(leaves.length >= 9, `numeric keys: ${leaves.map((l) => l.key).join(', ')}`);
    for (const leaf of leaves) {
      for (const value of leaf.integer ? ['4x', '1e1', '0x10', '2.5', ' 4 x'] : ['0.1x', '0x1', 'Infinity', '.']) {
        assert.match(
          refused('', { [leaf.env]: value }),
          new RegExp(`^config: ${leaf.key.replace('.', '\\.')}: must be [^,]+, got ${JSON.stringify(value).replace('.', '\\.')} from ${leaf.env}$`),
        );
      }
    }
  });

  it('reads a share as a decimal number, from the environment and from a quoted value in the file', () => {
    assert.equal(load('', { GA_COLLECTOR_QUOTA_RESERVE: '0.1' }).fetch.quotaReserve, 0.1);
    assert.equal(load('', { GA_COLLECTOR_QUOTA_RESERVE: ' .25 ' }).fetch.quotaReserve, 0.25);
    assert.equal(load('fetch:\n  quotaReserve: "0.3"\n').fetch.quotaReserve, 0.3);
    assert.equal(load('fetch:\n  quotaReserve: 0.2\n').fetch.quotaReserve, 0.2);
    assert.equal(
      refused('', { GA_COLLECTOR_QUOTA_RESERVE: '0.1x' }),
      'config: fetch.quotaReserve: must be a number, got "0.1x" from GA_COLLECTOR_QUOTA_RESERVE',
    );
    assert.equal(refused('fetch:\n  quotaReserve: "0.1x"\n'), 'config: fetch.quotaReserve: must be a number, got "0.1x"');
    assert.equal(
      refused('', { GA_COLLECTOR_QUOTA_RESERVE: '1' }),
      'config: fetch.quotaReserve: must be a share from 0 to below 1, e.g. 0.1, got "1" from GA_COLLECTOR_QUOTA_RESERVE',
    );
  });

  it('refuses a quoted number with garbage in the file, and takes a clean one', () => {
    assert.equal(refused('concurrency: "4x"\n'), 'config: concurrency: must be a positive integer, got "4x"');
    assert.equal(refused('http:\n  port: "95x"\n'), 'config: http.port: must be a port from 0 to 65535, got "95x"');
    assert.equal(refused('fetch:\n  pageSize: "1e3"\n'), 'config: fetch.pageSize: must be a positive integer, got "1e3"');
    assert.equal(refused('concurrency: 2.5\n'), 'config: concurrency: must be a positive integer, got 2.5');
    assert.equal(load('concurrency: " 6 "\nhttp:\n  port: "8080"\n').concurrency, 6);
    assert.equal(load('http:\n  port: "8080"\n').http.port, 8080);
  });

  it('exits 2 with one line from the command line', async () => {
    const cfg = file('properties: []\n');
    for (const [variable, value, key] of [
      ['GA_COLLECTOR_PER_PROPERTY_CONCURRENCY', '4x', 'fetch.perPropertyConcurrency'],
      ['GA_COLLECTOR_PER_PROPERTY_CONCURRENCY', '1e1', 'fetch.perPropertyConcurrency'],
      ['GA_COLLECTOR_HTTP_PORT', '95x', 'http.port'],
      ['GA_COLLECTOR_CONCURRENCY', '4x', 'concurrency'],
    ] as const) {
      const r = await runCli(['config', '--config', cfg], { env: { DATABASE_URL: DB, [variable]: value } });
      assert.equal(r.code, 2, `${variable}=${value}: ${r.stdout}`);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`config: ${key.replace('.', '\\.')}: must be .*, got "${value}" from ${variable}`));
    }
  });
});

describe('a misspelt map is named, with the map it should be', () => {
  it('names the misspelt key itself, not the keys it swallowed, and suggests the right one', () => {
    const cases: Array<[string, string]> = [
      [
        'searchConsole:\n  reprots:\n    performance:\n      dimensions: [date, query]\n',
        'searchConsole.reprots: unknown key; did you mean searchConsole.reports?',
      ],
      ['searchConsole:\n  stes:\n    - sc-domain:example.com\n', 'searchConsole.stes: unknown key; did you mean searchConsole.sites?'],
      ['serchConsole:\n  schema: gsc\n', 'serchConsole: unknown key; did you mean searchConsole?'],
      ['googel:\n  credentials: key.json\n', 'googel: unknown key; did you mean google?'],
      ['google:\n  credentails: key.json\n', 'google.credentails: unknown key; did you mean google.credentials?'],
      ['fecth:\n  pageSize: 5\n', 'fecth: unknown key; did you mean fetch?'],
      ['fetch:\n  pageSzie: 5\n', 'fetch.pageSzie: unknown key; did you mean fetch.pageSize?'],
      ['disocvery:\n  enabled: true\n', 'disocvery: unknown key; did you mean discovery?'],
      ['discovery:\n  acounts: [1]\n', 'discovery.acounts: unknown key; did you mean discovery.accounts?'],
      ['htpp:\n  port: 5\n', 'htpp: unknown key; did you mean http?'],
      ['http:\n  prot: 5\n', 'http.prot: unknown key; did you mean http.port?'],
      ['databse:\n  url: postgres://x/y\n', 'databse: unknown key; did you mean database?'],
      ['database:\n  shcema: x\n', 'database.shcema: unknown key; did you mean database.schema?'],
      ['shutdwon:\n  graceSeconds: 5\n', 'shutdwon: unknown key; did you mean shutdown?'],
      ['reprots:\n  daily:\n    metrics: [sessions]\n', 'reprots: unknown key; did you mean reports?'],
      ['nothingLikeIt:\n  a:\n    b: 1\n', 'nothingLikeIt: unknown key'],
    ];
    for (const [content, message] of cases) assert.equal(refused(content), `config: ${message}`, content);
  });
});
