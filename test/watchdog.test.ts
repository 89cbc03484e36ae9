/**
 * The job watchdog, through the scheduler, with jobs that hang: a job past fetch.jobDeadlineSeconds
 * is aborted, logged and counted, and its slot goes to the next job; a job that ignores its abort
 * is let go; shutdown aborts every job through the job's own signal; in daemon mode a stuck job is
 * tried again. The runner here is a stand-in whose jobs end only when told or aborted (the real
 * runner against a hanging Google: test/stuck-fetch.test.ts).
 */
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import type { TokenManager } from '../src/auth/tokenManager.js';
import { loadConfig, type Config } from '../src/config/index.js';
import { createLogger } from '../src/log.js';
import { Metrics } from '../src/metrics.js';
import type { JobResult, JobRunner, JobSpec } from '../src/schedule/runner.js';
import { Scheduler } from '../src/schedule/scheduler.js';
import { JobBoard } from '../src/schedule/jobBoard.js';
import { metricSum, tmpDir, waitFor, writeJson } from './helpers.js';

type Behaviour = 'ok' | 'hang' | 'ignore-abort';

/** Stands in for the runner: each property behaves as told; a hanging job ends only on abort, as the real one does. */
class StubRunner {
  readonly started: Array<{ property: string; at: number }> = [];
  readonly behaviour = new Map<string, Behaviour>();
  readonly signals: AbortSignal[] = [];
  private readonly release = new Set<() => void>();

  run(job: JobSpec, signal: AbortSignal): Promise<JobResult> {
    this.started.push({ property: job.propertyId, at: Date.now() });
    this.signals.push(signal);
    const how = this.behaviour.get(job.propertyId) ?? 'ok';
    if (how === 'ok') return Promise.resolve({ ok: true, rows: 1, dates: 1 });
    return new Promise((resolve) => {
      const end = () => resolve({ ok: false, rows: 0, dates: 0, error: 'aborted' });
      if (how === 'hang') signal.addEventListener('abort', end, { once: true });
      else this.release.add(end);
    });
  }

  /** Ends the jobs that ignore their abort. */
  releaseAll(): void {
    for (const r of this.release) r();
    this.release.clear();
  }
}

const dir = tmpDir('watchdog');
// never read: the stand-in runner asks for no token
const keyFile = writeJson(path.join(dir, 'unused-key.json'), {});

function config(properties: string[], extra: Record<string, unknown> = {}): Config {
  const file = writeJson(path.join(dir, `config-${properties.join('-')}-${Date.now()}.json`), {
    database: { url: 'postgres://unused@127.0.0.1:1/none' },
    google: { credentials: keyFile },
    concurrency: 1, // two job slots (capacity.ts)
    properties: properties.map((id) => ({ id })),
    schedule: '0 4 * * *',
    ...extra,
  });
  return loadConfig({ file, env: {} });
}

function setup(properties: string[], opts: { deadlineSeconds?: number; abandonAfterMs?: number; continueBacklog?: boolean } = {}) {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const logger = createLogger('info', sink);
  const metrics = new Metrics({ defaultMetrics: false });
  const board = new JobBoard();
  const runner = new StubRunner();
  const tokens = { forKeyFile: () => ({}), forPrincipal: () => ({}) } as unknown as TokenManager;
  const scheduler = new Scheduler({
    config: config(properties, { fetch: { jobDeadlineSeconds: opts.deadlineSeconds ?? 1 } }),
    runner: runner as unknown as JobRunner,
    tokens,
    board,
    logger,
    metrics,
    continueBacklog: opts.continueBacklog ?? false,
    ...(opts.abandonAfterMs !== undefined ? { abandonAfterMs: opts.abandonAfterMs } : {}),
  });
  const gauge = async () => metricSum(await metrics.text(), 'ga_collector_oldest_running_job_seconds');
  const events = (event: string) => lines.filter((l) => l['event'] === event);
  return { scheduler, runner, metrics, board, lines, events, gauge };
}

describe('job watchdog', () => {
  const schedulers: Scheduler[] = [];
  after(async () => {
    for (const s of schedulers) await s.stop(0);
  });

  it('aborts a job past its deadline, logs job_stuck, counts a failure, and gives its slot to a queued job', async () => {
    const t = setup(['101', '102', '103']);
    schedulers.push(t.scheduler);
    t.runner.behaviour.set('101', 'hang').set('102', 'hang');
    const started = Date.now();
    const results = t.scheduler.runOnce();
    // two slots, both taken by hanging jobs: the third waits
    await waitFor(() => t.runner.started.length === 2, { what: 'two jobs started' });
    assert.ok((await waitFor(async () => (await t.gauge()) > 0, { what: 'the gauge counting' })) > 0);
    assert.deepEqual(
      t.runner.started.map((s) => s.property),
      ['101', '102'],
    );

    const [r101, r102, r103] = await results;
    assert.equal(r103!.ok, true, 'the queued job ran once a slot was freed');
    const third = t.runner.started.find((s) => s.property === '103')!;
    assert.ok(third.at - started >= 900, `the third job started only after the deadline (${third.at - started} ms)`);
    for (const [id, r] of [
      ['101', r101],
      ['102', r102],
    ] as const) {
      assert.equal(r!.ok, false);
      assert.match(r!.error ?? '', /ran past fetch\.jobDeadlineSeconds \(1 s\) and was aborted/);
      const stuck = t.events('job_stuck').find((l) => l['property'] === id);
      assert.ok(stuck, `job_stuck logged for ${id}`);
      assert.equal(stuck['report'], 'daily');
      assert.equal(stuck['level'], 'error');
      assert.equal(stuck['deadlineSeconds'], 1);
      assert.ok((stuck['durationMs'] as number) >= 990, `how long: ${String(stuck['durationMs'])} ms`);
      assert.equal(t.board.job(id, 'daily').lastError, r!.error, 'the status page shows why');
    }
    const text = await t.metrics.text();
    assert.equal(metricSum(text, 'ga_collector_fetch_runs_total', { property: '101', outcome: 'failure' }), 1);
    assert.equal(metricSum(text, 'ga_collector_fetch_runs_total', { property: '103', outcome: 'failure' }), 0);
    assert.equal(metricSum(text, 'ga_collector_jobs_aborted_total', { reason: 'deadline' }), 2);
    assert.equal(metricSum(text, 'ga_collector_jobs_aborted_total', { reason: 'shutdown' }), 0);
    assert.equal(metricSum(text, 'ga_collector_job_deadline_seconds'), 1);
    assert.equal(await t.gauge(), 0, 'nothing runs any more');
    assert.equal(t.events('job_abandoned').length, 0, 'the aborted jobs ended on their abort');
  });

  it('lets go of a job that ignores its abort: its slot is freed, the gauge keeps counting it until it ends', async () => {
    const t = setup(['201', '202', '203'], { abandonAfterMs: 300 });
    schedulers.push(t.scheduler);
    t.runner.behaviour.set('201', 'ignore-abort').set('202', 'ignore-abort');
    const results = t.scheduler.runOnce();
    const [r201, , r203] = await results;
    assert.equal(r203!.ok, true, 'the queued job ran');
    assert.equal(r201!.ok, false);
    assert.match(r201!.error ?? '', /did not end when aborted/);
    const abandoned = t.events('job_abandoned');
    assert.deepEqual(abandoned.map((l) => l['property']).sort(), ['201', '202']);
    assert.equal(abandoned[0]!['reason'], 'deadline');
    // still running, unwatched: the age goes past the deadline, which is what GaCollectorStuck looks for
    const age = await t.gauge();
    assert.ok(age >= 1.2, `oldest running job ${age} s`);
    t.runner.releaseAll();
    await waitFor(async () => (await t.gauge()) === 0, { what: 'the gauge back at 0 once the jobs ended' });
    assert.equal(metricSum(await t.metrics.text(), 'ga_collector_fetch_runs_total', { property: '201', outcome: 'failure' }), 1, 'counted once');
  });

  it('shutdown aborts each job through its own signal without counting a failure, and leaves no listener behind', async () => {
    const t = setup(['301', '302'], { deadlineSeconds: 3600 });
    schedulers.push(t.scheduler);
    // many finished jobs first: none may leave a listener on the long-lived shutdown signal
    for (let i = 0; i < 20; i++) await t.scheduler.runOnce();
    assert.equal(getEventListeners(t.scheduler.signal, 'abort').length, 0, 'no listener left by finished jobs');
    t.runner.behaviour.set('301', 'hang').set('302', 'hang');
    const results = t.scheduler.runOnce();
    await waitFor(() => t.runner.started.length === 42, { what: 'both hanging jobs started' });
    const [a, b] = t.runner.signals.slice(-2);
    assert.notEqual(a, b, 'each job has a signal of its own');
    assert.notEqual(a, t.scheduler.signal);
    await t.scheduler.stop(50);
    const [r301, r302] = await results;
    assert.equal(r301!.ok, false);
    assert.equal(r302!.ok, false);
    assert.ok(a!.aborted && b!.aborted, 'both aborted by the shutdown');
    assert.equal(t.events('job_stuck').length, 0);
    const text = await t.metrics.text();
    assert.equal(metricSum(text, 'ga_collector_jobs_aborted_total', { reason: 'shutdown' }), 2);
    assert.equal(metricSum(text, 'ga_collector_fetch_runs_total', { outcome: 'failure' }), 0, 'a shutdown is not a failure');
  });

  it('in daemon mode tries a stuck job again after a pause as long as its deadline', async () => {
    const t = setup(['401'], { continueBacklog: true });
    schedulers.push(t.scheduler);
    t.runner.behaviour.set('401', 'hang');
    const first = await t.scheduler.runOnce();
    assert.equal(first[0]!.ok, false);
    t.runner.behaviour.set('401', 'ok');
    const stuckAt = Date.now();
    const deferred = await waitFor(() => t.events('job_deferred')[0], { what: 'the retry planned' });
    assert.equal(deferred['property'], '401');
    await waitFor(() => t.runner.started.length === 2, { timeoutMs: 10_000, what: 'the retry' });
    const waited = t.runner.started[1]!.at - stuckAt;
    assert.ok(waited >= 900, `retried after a pause (${waited} ms)`);
    assert.equal(metricSum(await t.metrics.text(), 'ga_collector_fetch_runs_total', { property: '401', outcome: 'failure' }), 1);
  });
});
