import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import { README, readmeBlock, renderConfigReference } from '../scripts/config-reference.js';
import { configSchema } from '../src/config/index.js';

describe('configuration reference in README.md', () => {
  it('is exactly what `npm run docs` generates from the convict schema', () => {
    const expected = renderConfigReference();
    assert.equal(readmeBlock(fs.readFileSync(README, 'utf8')), expected, 'README.md is stale: run `npm run docs`');
  });

  it('has a row for every schema key and for reports, with env and default', () => {
    const table = renderConfigReference();
    const walk = (node: Record<string, unknown>, prefix = ''): string[] =>
      Object.entries(node).flatMap(([k, v]) => {
        const key = prefix ? `${prefix}.${k}` : k;
        return typeof v === 'object' && v !== null && 'doc' in v ? [key] : walk(v as Record<string, unknown>, key);
      });
    const keys = walk(configSchema() as unknown as Record<string, unknown>);
    assert.ok(keys.length >= 15, `${keys.length} keys`);
    for (const key of [...keys, 'reports']) assert.match(table, new RegExp(`^\\| \`${key.replace('.', '\\.')}\` \\|`, 'm'), key);
    assert.match(table, /^\| `database\.url` \| `DATABASE_URL` \| — \| .*Never logged\. \|$/m);
    assert.match(table, /^\| `http\.port` \| `GA_COLLECTOR_HTTP_PORT` \| `9464` \|/m);
    assert.match(table, /^\| `log\.level` \| `LOG_LEVEL` \| `info` \| .*One of: fatal, error, warn, info, debug, trace, silent\. \|$/m);
    assert.match(table, /^\| `reports` \| — \| `\{ daily: \{ dimensions: \[date\], metrics: \[sessions, totalUsers, screenPageViews\] \} \}` \|/m);
  });
});
