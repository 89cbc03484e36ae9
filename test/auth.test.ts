import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TokenManager, TokenSource } from '../src/auth/tokenManager.js';
import { exchangeToken } from '../src/auth/exchange.js';
import { readServiceAccountKey } from '../src/auth/serviceAccountKey.js';
import { PermanentError } from '../src/errors.js';
import { FakeGoogle } from '@ga-collector/fake-google';
import { Ga4Client } from '../src/ga4/client.js';
import { Limiter } from '../src/ga4/limiter.js';
import { createLogger } from '../src/log.js';
import { Metrics } from '../src/metrics.js';
import { SA_EMAIL, tmpDir, writeJson } from './helpers.js';

const logger = createLogger('silent');

describe('token exchange', () => {
  let fake: FakeGoogle;
  let keyFile: string;
  const dir = tmpDir('auth');

  before(async () => {
    fake = new FakeGoogle();
    await fake.start();
    keyFile = writeJson(path.join(dir, 'key.json'), fake.createAccount(SA_EMAIL));
  });
  after(() => fake.stop());

  it('gets a token that the fake verified (signature, iss, aud, scope, iat/exp)', async () => {
    const key = readServiceAccountKey(keyFile);
    const t = await exchangeToken(key, { tokenUrl: fake.tokenUrl });
    assert.match(t.accessToken, /^ya29\./);
    assert.ok(t.expiresAt > Date.now() + 3500_000 && t.expiresAt <= Date.now() + 3600_000);
    const ev = fake.events.filter((e) => e.kind === 'token');
    assert.equal(ev.length, 1);
    assert.equal(ev[0]!.status, 200);
    assert.equal(ev[0]!.account, SA_EMAIL);
  });

  it('uses the key file token_uri when google.tokenUrl is not set', async () => {
    const source = new TokenSource({ spec: { credentials: keyFile, impersonate: '' }, tokenUrl: '', logger, metrics: new Metrics({ defaultMetrics: false }) });
    assert.equal(source.tokenUrl, fake.tokenUrl);
  });

  it('a forged key (same account, unregistered key) is refused with a clear, secret-free error', async () => {
    const real = readServiceAccountKey(keyFile);
    const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const forged = { ...real, privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
    await assert.rejects(exchangeToken(forged, { tokenUrl: fake.tokenUrl }), (err: Error) => {
      assert.ok(err instanceof PermanentError);
      assert.match(err.message, /invalid_grant/);
      assert.match(err.message, new RegExp(`${SA_EMAIL}.*key id ${real.privateKeyId}`));
      assert.match(err.message, /deleted or rotated|Signature/i);
      assert.doesNotMatch(err.message, /PRIVATE KEY|eyJ/);
      return true;
    });
  });

  it('an assertion outside the accepted time frame (clock skew) is refused, and the error says to check the clock', async () => {
    const skewed = new FakeGoogle({ now: () => Date.now() + 2 * 3600_000 });
    await skewed.start();
    try {
      const k = writeJson(path.join(dir, 'skew.json'), skewed.createAccount(SA_EMAIL));
      await assert.rejects(exchangeToken(readServiceAccountKey(k), { tokenUrl: skewed.tokenUrl }), /invalid_grant.*(short-lived|timeframe).*clock/);
    } finally {
      await skewed.stop();
    }
  });

  it('a revoked key is refused', async () => {
    const other = writeJson(path.join(dir, 'other.json'), fake.createAccount('other@test-project.iam.gserviceaccount.com'));
    fake.revokeKey('other@test-project.iam.gserviceaccount.com');
    await assert.rejects(exchangeToken(readServiceAccountKey(other), { tokenUrl: fake.tokenUrl }), /invalid_grant/);
  });
});

describe('proactive refresh', () => {
  it('renews each token while a quarter of its lifetime is left, so no API call ever waits for an exchange', async () => {
    const lifetime = 4; // seconds; Google says expires_in = lifetime - 1
    const fake = new FakeGoogle({ tokenLifetimeSeconds: lifetime });
    await fake.start();
    const dir = tmpDir('refresh');
    const keyFile = writeJson(path.join(dir, 'key.json'), fake.createAccount(SA_EMAIL));
    fake.addProperty({ id: '42', timeZone: 'UTC' });
    fake.grant(SA_EMAIL, '42');
    const metrics = new Metrics({ defaultMetrics: false });
    // 3-second tokens renew every 2.25 s: below the default floor of 10 s between exchanges
    const manager = new TokenManager({ tokenUrl: fake.tokenUrl, logger, metrics, minExchangeIntervalMs: 1_000 });
    const tokens = manager.forKeyFile(keyFile);
    assert.equal(manager.forKeyFile(keyFile), tokens, 'one source per account');
    await manager.start();
    const client = new Ga4Client({ apiRootUrl: fake.apiRootUrl, timeoutMs: 5000, maxAttempts: 1, limiter: new Limiter(4), metrics });
    const waits: number[] = [];
    const deadline = Date.now() + 9_000;
    try {
      while (Date.now() < deadline) {
        const t0 = performance.now();
        await tokens.getToken();
        waits.push(performance.now() - t0);
        await client.runReport(
          { propertyId: '42', tokens, logger },
          { dateRanges: [{ startDate: 'yesterday', endDate: 'yesterday' }], metrics: [{ name: 'sessions' }] },
        );
        // calls at a steady pace across several token lifetimes: the pacing is the load under test
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      manager.stop();
      await fake.stop();
    }
    const exchanges = fake.events.filter((e) => e.kind === 'token');
    const calls = fake.events.filter((e) => e.kind === 'runReport');
    // renewals every ~2.25 s (three quarters of 3 s) over 9 s: about 5, not one per call
    assert.ok(exchanges.length >= 3 && exchanges.length <= 7, `renewals in 9 s of 3-second tokens: ${exchanges.length}`);
    assert.ok(exchanges.every((e) => e.status === 200));
    assert.ok(calls.length > 40);
    assert.ok(
      calls.every((c) => c.status === 200),
      'no API call was refused',
    );
    // Each renewal happened while the previous token still had time left (before it expired).
    const lifeMs = (lifetime - 1) * 1000;
    for (let i = 1; i < exchanges.length; i++) {
      const prevExpiry = exchanges[i - 1]!.respondedAt + lifeMs;
      const left = prevExpiry - exchanges[i]!.receivedAt;
      assert.ok(left > 0.15 * lifeMs, `renewal ${i} came with ${left} ms left of ${lifeMs}`);
    }
    // No API call waited on an exchange: none arrived while an exchange was in flight for it,
    // and the caller never waited for getToken().
    assert.ok(Math.max(...waits.slice(1)) < 20, `getToken waited ${Math.max(...waits.slice(1)).toFixed(1)} ms`);
    for (const c of calls) assert.ok(c.tokenIssuedAt! < c.receivedAt, 'token issued before the call');
    const m = await metrics.registry.getSingleMetricAsString('ga_collector_token_refreshes_total');
    assert.match(m, new RegExp(`ga_collector_token_refreshes_total\\{account="${SA_EMAIL}",outcome="success"\\} ${exchanges.length}`));
  });
});
