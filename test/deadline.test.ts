import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { AbortedError, DeadlineExceededError } from '../src/errors.js';
import { clampTimerMs, MAX_TIMER_MS, withDeadline } from '../src/net/deadline.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

test('a call that never settles and ignores its signal still ends at the deadline', async () => {
  const started = Date.now();
  await assert.rejects(
    withDeadline('never', 200, undefined, () => new Promise(() => undefined)),
    (err: unknown) => err instanceof DeadlineExceededError && err.code === 'timeout' && /never timed out after 200 ms/.test(err.message),
  );
  assert.ok(Date.now() - started < 2_000);
});

test('the caller aborting ends the call with AbortedError and aborts the signal handed to the call', async () => {
  const outer = new AbortController();
  let inner: AbortSignal | undefined;
  const p = withDeadline('x', 60_000, outer.signal, (signal) => {
    inner = signal;
    return new Promise(() => undefined);
  });
  setTimeout(() => outer.abort(), 20);
  await assert.rejects(p, AbortedError);
  assert.equal(inner?.aborted, true);
});

test('a response that stalls mid-body is cut at the deadline even after forced garbage collections', async () => {
  // a server that sends headers and half a body, then nothing
  const sockets = new Set<import('node:net').Socket>();
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
    res.write('{"rows":[');
  });
  server.on('connection', (s) => sockets.add(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as import('node:net').AddressInfo;
  try {
    const started = Date.now();
    const p = withDeadline('stalled body', 500, undefined, async (signal) => {
      const res = await fetch(`http://127.0.0.1:${port}/`, { signal });
      return res.text();
    });
    // time passing with garbage collections in between is what is tested: a timer held only weakly
    // would be lost. The outcome is settled into a value at once: on a loaded machine the deadline may pass during the collections
    const outcome = p.then(
      () => null,
      (err: unknown) => err,
    );
    for (let i = 0; i < 5; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok((await outcome) instanceof DeadlineExceededError);
    assert.ok(Date.now() - started < 3_000, 'ended near its deadline');
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  }
});

test('a result or an error of the call itself comes through unchanged', async () => {
  assert.equal(await withDeadline('ok', 1_000, undefined, async () => 42), 42);
  await assert.rejects(
    withDeadline('bad', 1_000, undefined, async () => {
      throw new RangeError('boom');
    }),
    RangeError,
  );
});

test('timer delays are clamped to what Node can hold', () => {
  assert.equal(clampTimerMs(2 ** 40), MAX_TIMER_MS);
  assert.equal(clampTimerMs(Infinity), MAX_TIMER_MS);
  assert.equal(clampTimerMs(-5), 0);
  assert.equal(clampTimerMs(NaN), 0);
});
