/**
 * The token manager's guarantees hold for every credential kind, not only for keys: tokens are
 * renewed before they expire while nothing asks for them, one principal never exchanges in a
 * storm, and once renewals fail past expiry no API call goes out with an expired token.
 * Short-lived tokens (6 s) and the in-process token manager, against the fake Google.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TokenExpiredError } from '../src/errors.js';
import { TokenManager, type TokenSource } from '../src/auth/tokenManager.js';
import { Ga4Client } from '../src/ga4/client.js';
import { Limiter } from '../src/ga4/limiter.js';
import { createLogger } from '../src/log.js';
import { Metrics } from '../src/metrics.js';
import { metricSum, waitFor } from './helpers.js';
import { keylessWorld, type KeylessWorld } from './keyless-helpers.js';

// google-auth-library reads this from the process itself before running a subject-token executable
process.env['GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES'] = '1';

const LIFETIME_S = 6;
const logger = createLogger(process.env['TEST_LOG_LEVEL'] ?? 'silent');

describe('renewal, for every credential kind', () => {
  let w: KeylessWorld;
  let manager: TokenManager;
  let metrics: Metrics;
  let sources: TokenSource[];
  before(async () => {
    w = await keylessWorld({ tokenLifetimeSeconds: LIFETIME_S, firstProperty: 820_001 });
    metrics = new Metrics({ defaultMetrics: false });
    manager = new TokenManager({ tokenUrl: '', iamCredentialsRootUrl: `${w.fake.url}/`, logger, metrics, minExchangeIntervalMs: 1_000, env: w.env });
    sources = w.principals.map((p) => manager.forPrincipal({ credentials: p.config.credentials ?? '', impersonate: p.config.impersonate ?? '' }));
  });
  after(async () => {
    manager?.stop();
    await w?.stop();
  });

  it('renews each token before it expires while idle, without a storm, counted per principal', async () => {
    const started = Date.now();
    await manager.start();
    for (const [i, s] of sources.entries()) assert.ok(s.status().valid, `${w.principals[i]!.name}: ${s.status().lastError}`);
    const idleMs = 2 * LIFETIME_S * 1000;
    const gaps: string[] = [];
    while (Date.now() - started < idleMs) {
      for (const [i, s] of sources.entries()) if (!s.status().valid) gaps.push(`${w.principals[i]!.name} at ${Date.now() - started} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(gaps, [], 'a valid token at every moment: renewed before expiry');
    const elapsed = Date.now() - started;
    const text = await metrics.text();
    for (const [i, s] of sources.entries()) {
      const p = w.principals[i]!;
      assert.equal(s.account, p.account, `${p.name}: the account label`);
      const renewals = metricSum(text, 'ga_collector_token_refreshes_total', { account: p.account, outcome: 'success' });
      // renewal when a quarter of ~5 s is left, i.e. every ~3.75 s: about 3 in 12 s, never a storm
      assert.ok(renewals >= 2 && renewals <= Math.ceil(elapsed / 3_000) + 1, `${p.name}: ${renewals} exchanges in ${elapsed} ms`);
      assert.ok(metricSum(text, 'ga_collector_token_expiry_timestamp_seconds', { account: p.account }) > Date.now() / 1000, `${p.name}: expiry gauge ahead`);
      assert.equal(metricSum(text, 'ga_collector_token_refreshes_total', { account: p.account, outcome: 'failure' }), 0, p.name);
    }
    // principals sharing nothing exchanged at their own pace: no endpoint saw more than its principals' share
    const stsCalls = w.fake.events.filter((e) => e.kind === 'sts').length;
    assert.ok(stsCalls <= 4 * (Math.ceil(elapsed / 3_000) + 1), `STS calls: ${stsCalls}`);
  });

  it('renewals failing past expiry: calls fail at once, and no API call carries an expired token', async () => {
    for (const endpoint of ['token', 'sts', 'generateAccessToken', 'gceMetadata'] as const) w.fake.inject({ endpoint, kind: 'status', status: 503 });
    await waitFor(() => sources.every((s) => !s.status().valid), { timeoutMs: (LIFETIME_S + 5) * 1000, what: 'every token expired' });
    const before = w.fake.events.filter((e) => e.kind === 'runReport').length;
    const client = new Ga4Client({ apiRootUrl: w.fake.apiRootUrl, timeoutMs: 5_000, maxAttempts: 3, limiter: new Limiter(4), metrics });
    for (const [i, s] of sources.entries()) {
      const p = w.principals[i]!;
      const t0 = Date.now();
      await assert.rejects(
        client.runReport(
          { propertyId: p.property, tokens: s, logger },
          { dateRanges: [{ startDate: 'yesterday', endDate: 'yesterday' }], metrics: [{ name: 'sessions' }] },
        ),
        (err: unknown) =>
          err instanceof TokenExpiredError &&
          new RegExp(`token for ${p.account.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} expired; refresh failing since .*503`).test((err as Error).message),
        p.name,
      );
      assert.ok(Date.now() - t0 < 1_000, `${p.name}: fails at once`);
    }
    assert.equal(w.fake.events.filter((e) => e.kind === 'runReport').length, before, 'no API call was sent');
    assert.equal(w.fake.events.filter((e) => e.kind === 'runReport' && e.status === 401).length, 0, 'no API call ever carried an expired token');
    const text = await metrics.text();
    for (const p of w.principals) assert.ok(metricSum(text, 'ga_collector_token_refreshes_total', { account: p.account, outcome: 'failure' }) >= 1, p.name);
    w.fake.clearFaults();
  });
});
