/**
 * A refused SIGHUP reload is not only a log line: the status page shows a banner with the time
 * and the reason, `/api/status` says so in `lastReload`, and
 * `ga_collector_config_reloads_total{outcome="failure"}` counts it. A later reload that is applied
 * clears the banner and is counted as a success.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startFake, testDb, waitFor, writeConfig, type FakeSetup, type TestDb } from './helpers.js';
import { get, parseExposition, startDaemon, valueOf, type DaemonProcess } from './ops-helpers.js';

const P = '424242';

describe('a refused configuration reload', () => {
  let db: TestDb;
  let g: FakeSetup;
  let daemon: DaemonProcess;
  let config: string;

  before(async () => {
    db = await testDb('reloadrefused');
    g = await startFake([{ id: P, timeZone: 'UTC' }]);
    config = writeConfig(g.dir, db, g, {
      properties: [{ id: P }],
      reports: { daily: { metrics: ['sessions'], startDate: '3daysAgo' } },
      http: { host: '127.0.0.1', port: 0 },
    });
    daemon = await startDaemon(config);
    await waitFor(() => daemon.logs().some((l) => l['event'] === 'job_succeeded'), { timeoutMs: 30_000, what: 'the start-up fetch' });
  });
  after(async () => {
    await daemon?.stop();
    await g?.stop();
    await db?.drop();
  });

  const reloads = async () => {
    const families = parseExposition((await get(`${daemon.url}/metrics`)).body);
    return {
      success: valueOf(families, 'ga_collector_config_reloads_total', { outcome: 'success' }),
      failure: valueOf(families, 'ga_collector_config_reloads_total', { outcome: 'failure' }),
    };
  };
  const hup = async (event: string, count: number) => {
    daemon.child.kill('SIGHUP');
    await waitFor(() => daemon.logs().filter((l) => l['event'] === event).length === count, { what: `${event} #${count}` });
  };

  it('counts nothing before the first SIGHUP, but has both series', async () => {
    assert.deepEqual(await reloads(), { success: 0, failure: 0 });
    const doc = JSON.parse((await get(`${daemon.url}/api/status`)).body);
    assert.equal(doc.lastReload, null);
    assert.doesNotMatch((await get(`${daemon.url}/`)).body, /reload refused/i);
  });

  it('shows a refused reload on the page with its time and reason, in /api/status, and in the metric', async () => {
    const cfg = JSON.parse(fs.readFileSync(config, 'utf8'));
    // a setting the running daemon was built with: refused as a whole
    fs.writeFileSync(config, JSON.stringify({ ...cfg, concurrency: 9 }));
    const before = Date.now();
    await hup('reload_failed', 1);
    assert.deepEqual(await reloads(), { success: 0, failure: 1 });
    const doc = JSON.parse((await get(`${daemon.url}/api/status`)).body);
    assert.equal(doc.lastReload.ok, false);
    assert.match(doc.lastReload.error, /reload refused: concurrency changed; restart the daemon for that/);
    assert.ok(Date.parse(doc.lastReload.at) >= before - 1000, doc.lastReload.at);
    const html = (await get(`${daemon.url}/`)).body;
    const banner = /<div class="banner" role="alert" id="reload-refused">([\s\S]*?)<\/div>/.exec(html)?.[1];
    assert.ok(banner, 'a banner');
    assert.match(banner, /Configuration reload refused/);
    assert.match(banner, new RegExp(`<time datetime="${doc.lastReload.at.replace(/\./g, '\\.')}"`));
    assert.match(banner, /concurrency changed; restart the daemon for that/);
    assert.match(html, /<title>⚠ ga-collector status<\/title>/);

    // settings the API client and token manager were built with are refused too, each named
    fs.writeFileSync(config, JSON.stringify({ ...cfg, fetch: { timeoutSeconds: 3, maxAttempts: 2 }, log: { ...cfg.log, format: 'pretty' } }));
    await hup('reload_failed', 2);
    const refused = JSON.parse((await get(`${daemon.url}/api/status`)).body).lastReload.error;
    assert.match(refused, /reload refused: fetch\.timeoutSeconds, fetch\.maxAttempts, log\.format changed; restart the daemon for that/);

    // a file that does not even load: refused too, and the banner says why
    fs.writeFileSync(config, JSON.stringify({ ...cfg, bogus: true }));
    await hup('reload_failed', 3);
    assert.deepEqual(await reloads(), { success: 0, failure: 3 });
    assert.match((await get(`${daemon.url}/`)).body, /Configuration reload refused[\s\S]*bogus: unknown key/);
    assert.equal(daemon.child.exitCode, null, 'still running');
  });

  it('clears the banner once a reload is applied, and counts it as a success', async () => {
    const cfg = JSON.parse(fs.readFileSync(config, 'utf8'));
    delete cfg.bogus;
    fs.writeFileSync(config, JSON.stringify({ ...cfg, reports: { daily: { metrics: ['sessions'], startDate: '4daysAgo' } } }));
    await hup('reloaded', 1);
    assert.deepEqual(await reloads(), { success: 1, failure: 3 });
    const doc = JSON.parse((await get(`${daemon.url}/api/status`)).body);
    assert.equal(doc.lastReload.ok, true);
    assert.equal(doc.lastReload.error, null);
    assert.doesNotMatch((await get(`${daemon.url}/`)).body, /reload refused/i);
  });
});
