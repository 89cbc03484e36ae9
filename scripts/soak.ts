/**
 * `npm run soak -- --minutes 15`: the real daemon (`node dist/main.js run`), unattended, through
 * the faults of a long life, with a verdict at the end. Not part of `npm test`.
 *
 * It starts its own embedded PostgreSQL (never a shared server), the fake Google in this process
 * (three properties in three time zones, small pages, short-lived tokens) behind a proxy that adds
 * latency, and the daemon with a schedule that fires every minute, so each property's refresh
 * window is fetched again every minute: there is always new work. During the run it
 *   - restarts the database twice (stopped, down for a few seconds, started again on the same
 *     port and data directory),
 *   - makes the token endpoint accept one exchange and never answer,
 *   - makes the Data API accept one runReport and never answer, and stalls another mid-body,
 * and every 10 s samples the daemon's PID, RSS (/proc/PID/status VmRSS), open descriptors
 * (/proc/PID/fd) and successful runs (/metrics). At the end it checks: one process throughout
 * and a clean exit on SIGTERM; every stored date whole (ledger row_count = rows, no duplicates,
 * the fake's own values) and no date missing; successful runs of every property after the last
 * fault; RSS and descriptors flat (last quarter against first). It prints the tables and exits 0
 * when every check passed, 1 otherwise.
 *
 *   --minutes N   length of the run (default 15; under 3 the faults crowd each other)
 *   --faults LIST comma-separated subset of db,token,api-hang,api-stall (default all)
 *   --keep        keep the work directory (database, config, the daemon's log)
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { EmbeddedPostgres } from '../src/demo/embeddedPostgres.js';
import { FakeGoogle } from '@ga-collector/fake-google';
import { checkData, quarterAverages, table, type Check } from './soak-checks.js';
import { DaemonChild, MAIN, sampleProcess, scrapeSuccesses } from './soak-daemon.js';
import { StallProxy } from './soak-proxy.js';

const ACCOUNT = 'soak@soak-project.iam.gserviceaccount.com';
const PROPERTIES = [
  { id: '300001', timeZone: 'UTC' },
  { id: '300002', timeZone: 'America/Los_Angeles' },
  { id: '300003', timeZone: 'Asia/Tokyo' },
];
const SCHEMA = 'soak';
const START_DAYS_AGO = 45;
const REPORT = { dimensions: ['date', 'deviceCategory'], metrics: ['sessions', 'screenPageViews'], startDate: `${START_DAYS_AGO}daysAgo`, refreshDays: 3 };
const PAGE_SIZE = 10;
const LATENCY_MS = 100;
const CONCURRENCY = 2;
const SAMPLE_MS = 10_000;
const DB_DOWN_MS = 8_000;
/**
 * The database goes down this long after a firing of the schedule (every minute, on the minute),
 * while the jobs it started hold their connections: a lost connection in use, not only idle ones.
 */
const DB_AFTER_FIRING_MS = 250;
/** A window between two faults this long holds a firing of the every-minute schedule and its runs. */
const WINDOW_CHECKED_MS = 75_000;
/**
 * Memory: V8 sizes its heap to the load during the first minutes and RSS then saws with each
 * garbage collection by some MiB; a flat process stays within 25 % + 16 MiB of its first-quarter
 * average, a leak per job or per request (3 jobs a minute, ~30 requests) grows past it in 15 min.
 */
const RSS_MARGIN = { share: 0.25, bytes: 16 * 1024 * 1024 };
/**
 * Descriptors: the pool opens up to poolSize(concurrency) = 8 connections on demand and closes
 * idle ones after 30 s, and HTTP keeps a few sockets alive (token endpoint, API, scrapes), so a
 * healthy daemon's count moves by up to about a dozen; one leaked socket per job exceeds it.
 */
const FD_MARGIN = 12;

type FaultName = 'db1' | 'token' | 'db2' | 'api-hang' | 'api-stall';
/** When each fault starts, as a share of the run; the rest of the run after the last is for recovery. */
const TIMELINE: Array<[FaultName, number]> = [
  ['db1', 0.15],
  ['token', 0.3],
  ['db2', 0.45],
  ['api-hang', 0.55],
  ['api-stall', 0.65],
];

interface Sample {
  t: number;
  alive: boolean;
  pid: number | null;
  rss: number | null;
  fds: number | null;
  /** ga_collector_fetch_runs_total{outcome="success"} per property; null when /metrics did not answer */
  successes: Record<string, number> | null;
}

interface FaultRecord {
  name: FaultName;
  injectedAt: number;
  /** when it met the daemon: the database went down, the request that hangs or stalls arrived */
  hitAt: number | null;
  detail: string;
}

function usage(message: string): never {
  process.stderr.write(`soak: ${message}\nusage: npm run soak -- [--minutes N] [--faults db,token,api-hang,api-stall] [--keep]\n`);
  process.exit(2);
}

function options() {
  let values;
  try {
    ({ values } = parseArgs({
      args: process.argv.slice(2),
      options: {
        minutes: { type: 'string', default: '15' },
        faults: { type: 'string', default: 'db,token,api-hang,api-stall' },
        keep: { type: 'boolean', default: false },
      },
      strict: true,
    }));
  } catch (err) {
    usage((err as Error).message);
  }
  const minutes = Number(values.minutes);
  if (!(minutes > 0 && minutes <= 24 * 60)) usage(`--minutes must be a positive number, got "${values.minutes}"`);
  const faults = new Set(
    values.faults
      .split(',')
      .map((f) => f.trim())
      .filter(Boolean),
  );
  for (const f of faults) if (!['db', 'token', 'api-hang', 'api-stall'].includes(f)) usage(`unknown fault "${f}"`);
  return { minutes, faults, keep: values.keep };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const mib = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MiB`;
const clock = (t0: number, t: number | null) => (t === null ? '-' : `${((t - t0) / 1000).toFixed(0)} s`);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function main(): Promise<number> {
  const opts = options();
  const runMs = opts.minutes * 60_000;
  if (!fs.existsSync(MAIN)) usage(`${MAIN} is missing: run \`npm run build\` first (npm run soak does)`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ga-collector-soak-'));
  // as root, PostgreSQL runs as another user, who must reach the data directory inside
  fs.chmodSync(work, 0o711);
  const say = (msg: string) => process.stdout.write(`soak: ${msg}\n`);
  say(`work directory ${work}; ${opts.minutes} min; faults: ${[...opts.faults].join(', ')}`);

  let db: EmbeddedPostgres | null = null;
  let fake: FakeGoogle | null = null;
  let proxy: StallProxy | null = null;
  let daemon: DaemonChild | null = null;
  let interrupted = false;
  process.once('SIGINT', () => {
    interrupted = true;
    say('interrupted: finishing early');
  });
  try {
    // 1. the database: our own server, on a port of its own, restartable in place
    const dbPort = await freePort();
    const dataDir = path.join(work, 'pg');
    db = await EmbeddedPostgres.start({ dataDir, port: dbPort });
    const dbUrl = db.url;

    // 2. the fake Google: tokens that live a fraction of the run, so exchanges happen during it
    const tokenLifetime = Math.max(120, Math.min(600, Math.round(runMs / 2000)));
    fake = new FakeGoogle({ maxPageSize: PAGE_SIZE, tokenLifetimeSeconds: tokenLifetime });
    await fake.start();
    const key = fake.createAccount(ACCOUNT, { projectId: 'soak-project' });
    for (const p of PROPERTIES) {
      fake.addProperty(p);
      fake.grant(ACCOUNT, p.id);
    }
    const keyFile = path.join(work, 'key.json');
    fs.writeFileSync(keyFile, JSON.stringify(key), { mode: 0o600 });
    proxy = new StallProxy(new URL(fake.url), LATENCY_MS);
    await proxy.start();

    // 3. the daemon
    const httpPort = await freePort();
    const config = path.join(work, 'config.json');
    fs.writeFileSync(
      config,
      JSON.stringify(
        {
          database: { url: dbUrl, schema: SCHEMA },
          google: { credentials: keyFile, tokenUrl: fake.tokenUrl, apiRootUrl: proxy.url },
          properties: PROPERTIES.map((p) => ({ id: p.id })),
          schedule: '* * * * *',
          concurrency: CONCURRENCY,
          reports: { daily: REPORT },
          fetch: { pageSize: PAGE_SIZE, timeoutSeconds: 20, jobDeadlineSeconds: 120, maxAttempts: 6 },
          http: { host: '127.0.0.1', port: httpPort },
          shutdown: { graceSeconds: 5 },
          log: { level: 'info' },
        },
        null,
        2,
      ),
      { mode: 0o600 },
    );
    daemon = new DaemonChild(config, path.join(work, 'daemon.log'));
    const pid = daemon.child.pid!;
    for (let i = 0; i < 600 && !daemon.url && daemon.alive; i++) await sleep(100);
    if (!daemon.url) throw new Error(`the daemon did not start (see ${path.join(work, 'daemon.log')})`);
    const t0 = Date.now();
    say(`daemon PID ${pid} at ${daemon.url}; database ${dbUrl}; running until ${new Date(t0 + runMs).toISOString()}`);

    // 4. the run: samples every 10 s, faults at their times
    const samples: Sample[] = [];
    const faults: FaultRecord[] = [];
    const enabled = (name: FaultName) => opts.faults.has(name.startsWith('db') ? 'db' : name);
    const onFiring = (t: number) => Math.ceil(t / 60_000) * 60_000 + DB_AFTER_FIRING_MS;
    const pending = TIMELINE.filter(([name]) => enabled(name))
      .map(([name, share]) => ({ name, at: name.startsWith('db') ? onFiring(t0 + share * runMs) : t0 + share * runMs }))
      .sort((a, b) => a.at - b.at);
    let restarting: Promise<void> = Promise.resolve();
    const take = async () => {
      const proc = sampleProcess(daemon!.alive ? pid : undefined);
      samples.push({
        t: Date.now(),
        alive: daemon!.alive,
        pid: daemon!.alive ? pid : null,
        ...proc,
        successes: daemon!.alive ? await scrapeSuccesses(daemon!.url) : null,
      });
    };
    const restartDb = async (name: FaultName) => {
      const rec: FaultRecord = { name, injectedAt: Date.now(), hitAt: null, detail: '' };
      faults.push(rec);
      await db!.stop();
      rec.hitAt = Date.now();
      await sleep(DB_DOWN_MS);
      db = await EmbeddedPostgres.start({ dataDir, port: dbPort });
      rec.detail = `down ${((Date.now() - rec.hitAt) / 1000).toFixed(1)} s (from ${DB_AFTER_FIRING_MS} ms after a firing), back on port ${dbPort}`;
    };
    const inject = (name: FaultName) => {
      const rec: FaultRecord = { name, injectedAt: Date.now(), hitAt: null, detail: '' };
      faults.push(rec);
      if (name === 'token') {
        fake!.inject({ endpoint: 'token', kind: 'hang', times: 1 });
        rec.detail = `next token exchange never answered (tokens live ${tokenLifetime} s)`;
      } else if (name === 'api-hang') {
        fake!.inject({ endpoint: 'runReport', kind: 'hang', times: 1 });
        rec.detail = 'next runReport accepted, never answered';
      } else {
        proxy!.stallNextReport();
        rec.detail = 'next runReport: headers and half a chunk, then nothing';
      }
    };
    const noteHits = () => {
      for (const rec of faults) {
        if (rec.hitAt !== null) continue;
        if (rec.name === 'api-stall') rec.hitAt = proxy!.stalledAt;
        else {
          const kind = rec.name === 'token' ? 'token' : 'runReport';
          const e = fake!.events.find((x) => x.kind === kind && x.fault === 'hang' && x.receivedAt >= rec.injectedAt);
          if (e) rec.hitAt = e.receivedAt;
        }
      }
    };
    let nextSample = t0;
    while (Date.now() < t0 + runMs && !interrupted) {
      if (!daemon.alive) {
        say(`the daemon exited (code ${daemon.exit!.code}, signal ${daemon.exit!.signal}) at ${clock(t0, daemon.exit!.at)}; ending the run`);
        break;
      }
      if (Date.now() >= nextSample) {
        await take();
        nextSample += SAMPLE_MS;
      }
      const due = pending[0];
      if (due && Date.now() >= due.at) {
        pending.shift();
        say(`${clock(t0, Date.now())}: fault ${due.name}`);
        // the sampling goes on while the database is down
        if (due.name.startsWith('db')) {
          restarting = restarting
            .then(() => restartDb(due.name))
            .catch((err: Error) => {
              say(`database restart failed: ${err.message}`);
            });
        } else inject(due.name);
      }
      noteHits();
      await sleep(200);
    }
    await restarting;
    await take();
    noteHits();
    const end = Date.now();

    // 5. the verdict
    const checks: Check[] = [];
    const alive = samples.filter((s) => s.alive);
    checks.push({
      name: 'one process throughout',
      ok: alive.length === samples.length && alive.every((s) => s.pid === pid),
      detail: `PID ${pid} in ${alive.length} of ${samples.length} samples${daemon.exit ? `; exited with ${daemon.exit.code ?? daemon.exit.signal} at ${clock(t0, daemon.exit.at)}` : ''}`,
    });
    const last = [...samples].reverse().find((s) => s.successes)?.successes ?? null;
    const lastFault = faults.length ? Math.max(...faults.map((f) => f.hitAt ?? f.injectedAt)) : t0;
    const before = samples.find((s) => s.t >= lastFault && s.successes)?.successes ?? null;
    const resumed = PROPERTIES.map((p) => ({ id: p.id, after: last && before ? (last[p.id] ?? 0) - (before[p.id] ?? 0) : 0 }));
    checks.push({
      name: 'every property fetched after the last fault',
      ok: last !== null && before !== null && resumed.every((r) => r.after > 0),
      detail:
        last && before
          ? resumed.map((r) => `${r.id}: +${r.after}`).join(', ') + ` (from ${clock(t0, lastFault)})`
          : '/metrics did not answer after the last fault',
    });
    const unhit = faults.filter((f) => f.hitAt === null);
    checks.push({
      name: 'every fault met the daemon',
      ok: pending.length === 0 && unhit.length === 0,
      detail: [
        `${faults.length - unhit.length} of ${faults.length + pending.length}`,
        ...(unhit.length ? [`not met: ${unhit.map((f) => f.name).join(', ')}`] : []),
        ...(pending.length ? [`not injected: ${pending.map((f) => f.name).join(', ')}`] : []),
      ].join('; '),
    });
    // a success between each fault meeting the daemon and the next one doing so, where that window holds a firing
    const met = (f: FaultRecord) => f.hitAt ?? f.injectedAt;
    faults.sort((a, b) => met(a) - met(b));
    const windows = faults.map((f, i) => {
      const from = met(f);
      const to = i + 1 < faults.length ? met(faults[i + 1]!) : end;
      const a = samples.find((s) => s.t >= from && s.successes)?.successes;
      const b = [...samples].reverse().find((s) => s.t <= to && s.successes)?.successes;
      const n = a && b ? Object.keys(b).reduce((sum, k) => sum + (b[k] ?? 0) - (a[k] ?? 0), 0) : null;
      return { f, to, n, checked: to - from >= WINDOW_CHECKED_MS };
    });
    const silent = windows.filter((w) => w.checked && !(w.n && w.n > 0));
    checks.push({
      name: 'fetching resumed after each fault',
      ok: silent.length === 0,
      detail: silent.length
        ? `no success after: ${silent.map((w) => w.f.name).join(', ')}`
        : `${windows.filter((w) => w.checked).length} windows of >= ${WINDOW_CHECKED_MS / 1000} s checked`,
    });
    const rss = quarterAverages(samples, 'rss');
    checks.push({
      name: 'memory flat (RSS, last quarter vs first)',
      ok: rss !== null && rss.last <= rss.first * (1 + RSS_MARGIN.share) + RSS_MARGIN.bytes,
      detail: rss
        ? `${mib(rss.first)} -> ${mib(rss.last)} (limit ${mib(rss.first * (1 + RSS_MARGIN.share) + RSS_MARGIN.bytes)})`
        : 'too few samples to judge (the run ended early?)',
    });
    const fds = quarterAverages(samples, 'fds');
    checks.push({
      name: 'descriptors flat (last quarter vs first)',
      ok: fds !== null && fds.last <= fds.first + FD_MARGIN,
      detail: fds
        ? `${fds.first.toFixed(1)} -> ${fds.last.toFixed(1)} (limit ${(fds.first + FD_MARGIN).toFixed(1)})`
        : 'too few samples to judge (the run ended early?)',
    });

    // stop the daemon (a clean exit is part of a long life), then read the data at rest
    const wasAlive = daemon.alive;
    await daemon.stop();
    if (wasAlive) checks.push({ name: 'clean exit on SIGTERM', ok: daemon.exit!.code === 0, detail: `exit ${daemon.exit!.code ?? daemon.exit!.signal}` });
    try {
      checks.push(...(await checkData(db.url, fake, { schema: SCHEMA, properties: PROPERTIES, startDaysAgo: START_DAYS_AGO, metrics: REPORT.metrics })));
    } catch (err) {
      checks.push({ name: 'data readable', ok: false, detail: (err as Error).message });
    }

    process.stdout.write(`\nFaults (times from the daemon's start)\n`);
    process.stdout.write(
      `${table(
        ['fault', 'injected', 'met the daemon', 'successes until the next', 'detail'],
        windows.map((w) => [w.f.name, clock(t0, w.f.injectedAt), clock(t0, w.f.hitAt), w.n === null ? '?' : String(w.n), w.f.detail]),
      )}\n`,
    );
    process.stdout.write(`\nSamples (every ${SAMPLE_MS / 1000} s)\n`);
    const every = Math.max(1, Math.ceil(samples.length / 12));
    process.stdout.write(
      `${table(
        ['t', 'PID', 'RSS', 'fds', 'successes'],
        samples
          .filter((_, i) => i % every === 0 || i === samples.length - 1)
          .map((s) => [
            clock(t0, s.t),
            s.pid === null ? 'gone' : String(s.pid),
            s.rss === null ? '-' : mib(s.rss),
            s.fds === null ? '-' : String(s.fds),
            s.successes ? String(Object.values(s.successes).reduce((a, b) => a + b, 0)) : '-',
          ]),
      )}\n`,
    );
    const events = [...daemon.events.entries()].sort((a, b) => b[1] - a[1]);
    process.stdout.write(
      `\nDaemon log events\n${table(
        ['event', 'count'],
        events.map(([e, n]) => [e, String(n)]),
      )}\n`,
    );
    if (daemon.stderrHead.trim()) {
      const head = daemon.stderrHead
        .trim()
        .split('\n')
        .filter((l) => !/^\s+at /.test(l))
        .slice(0, 8);
      process.stdout.write(`\nThe daemon's stderr (first lines)\n${head.map((l) => `  ${l}`).join('\n')}\n`);
    }
    process.stdout.write(
      `\nChecks\n${table(
        ['check', 'result', 'detail'],
        checks.map((c) => [c.name, c.ok ? 'PASS' : 'FAIL', c.detail]),
      )}\n`,
    );
    const failed = checks.filter((c) => !c.ok).length;
    process.stdout.write(
      `\nsoak: ${failed ? `${failed} of ${checks.length} checks FAILED` : `all ${checks.length} checks passed`} after ${((end - t0) / 60_000).toFixed(1)} min; the daemon's log: ${opts.keep ? path.join(work, 'daemon.log') : '(removed; --keep keeps it)'}\n`,
    );
    return failed ? 1 : 0;
  } finally {
    await daemon?.stop().catch(() => undefined);
    await proxy?.stop().catch(() => undefined);
    await fake?.stop().catch(() => undefined);
    await db?.stop().catch(() => undefined);
    if (!opts.keep) fs.rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
