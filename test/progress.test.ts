import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { SCRIPT, skipUnless } from './tools.js';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../src/log.js';
import { ProgressTracker, renderBar } from '../src/progress.js';
import { MAIN, ROOT, logLines, startFake, testDb, waitFor, writeConfig, type FakeSetup, type TestDb } from './helpers.js';

function sink() {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  return { stream, text: () => chunks.join('') };
}

describe('progress', () => {
  it('logs dates done of total, rows and time left once per interval, only for jobs that moved', async () => {
    let now = 1_000_000;
    const log = sink();
    const tracker = new ProgressTracker({ logger: createLogger('info', log.stream), intervalMs: 20, now: () => now });
    tracker.start('123', 'daily', [
      ['2024-01-01', '2024-01-31'],
      ['2024-03-01', '2024-03-09'],
    ]); // 40 dates
    now += 10_000;
    tracker.advance('123', 'daily', 10, 5_000);
    await waitFor(() => logLines(log.text()).some((l) => l['event'] === 'progress'), { intervalMs: 5, what: 'the progress line' });
    now += 10_000;
    // a few intervals without movement: that no second line comes in them is what is asserted
    await new Promise((r) => setTimeout(r, 60));
    const lines = logLines(log.text()).filter((l) => l['event'] === 'progress');
    assert.equal(lines.length, 1, log.text());
    assert.deepEqual(
      {
        datesDone: lines[0]!['datesDone'],
        datesTotal: lines[0]!['datesTotal'],
        rows: lines[0]!['rows'],
        percent: lines[0]!['percent'],
        etaSeconds: lines[0]!['etaSeconds'],
        property: lines[0]!['property'],
        report: lines[0]!['report'],
      },
      // 10 dates took 10 s: 30 left take 30 s
      { datesDone: 10, datesTotal: 40, rows: 5_000, percent: 25, etaSeconds: 30, property: '123', report: 'daily' },
    );
    tracker.advance('123', 'daily', 30, 100);
    tracker.stop();
  });

  it('draws a bar: label, fill, percent, dates, rows, time left', () => {
    const bar = renderBar({ propertyId: '123', report: 'daily', total: 400, done: 180, rows: 12_345, startedAt: 0 }, 90_000, 100);
    assert.match(bar, /^123\/daily \[#+-+\] {2}45% {2}180\/400 dates {2}12,345 rows {2}~1m50s left$/);
    const filled = /\[(#*)(-*)\]/.exec(bar)!;
    assert.equal(Math.round((filled[1]!.length / (filled[1]!.length + filled[2]!.length)) * 100), 45);
    assert.match(renderBar({ propertyId: '1', report: 'r', total: 2, done: 2, rows: 3, startedAt: 0 }, 10, 80), /100% {2}2\/2 dates {2}3 rows {2}done$/);
  });

  describe('backfill on a terminal', () => {
    let db: TestDb;
    let g: FakeSetup;
    before(async () => {
      db = await testDb('progress');
      g = await startFake([{ id: '512345', timeZone: 'Europe/Berlin' }]);
    });
    after(async () => {
      await g?.stop();
      await db?.drop();
    });

    it('shows a progress bar on stderr that ends at 100%', { skip: skipUnless(SCRIPT) }, async () => {
      const config = writeConfig(g.dir, db, g, { properties: [{ id: '512345' }], log: { level: 'warn' } });
      // script(1) gives the command a pseudo-terminal, as a user's shell would
      const cmd = `${process.execPath} ${MAIN} backfill --config ${config} --property 512345 --from 2024-01-01 --to 2024-03-31 >/dev/null`;
      const out = await new Promise<{ code: number | null; text: string }>((resolve) => {
        const child = spawn('script', ['-qefc', cmd, '/dev/null'], {
          cwd: ROOT,
          env: { PATH: process.env['PATH'], TZ: 'UTC', COLUMNS: '100' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let text = '';
        child.stdout.on('data', (d) => (text += d));
        child.stderr.on('data', (d) => (text += d));
        child.on('close', (code) => resolve({ code, text }));
      });
      assert.equal(out.code, 0, out.text);
      // the bar redraws with a carriage return and ESC [K (erase to end of line)
      const redraw = '\r\x1b[K';
      const frames = out.text
        .split(redraw)
        .map((f) => f.trim())
        .filter((f) => f.startsWith('512345/daily'));
      assert.ok(frames.length >= 2, `a first and a last frame at least: ${JSON.stringify(out.text)}`);
      assert.match(frames[0]!, /\[-+\]\s+0%\s+0\/91 dates/);
      assert.match(frames.at(-1)!, /\[#+\]\s+100%\s+91\/91 dates\s+[\d,]+ rows\s+done/);
    });

    it('log lines on the same terminal never share a line with the bar', { skip: skipUnless(SCRIPT) }, async () => {
      const config = writeConfig(g.dir, db, g, { properties: [{ id: '512345' }], log: { level: 'info', format: 'json' } });
      // stdout and stderr both on the pseudo-terminal, as in a user's shell
      const cmd = `${process.execPath} ${MAIN} backfill --config ${config} --property 512345 --from 2023-01-01 --to 2023-06-30`;
      const out = await new Promise<{ code: number | null; text: string }>((resolve) => {
        const child = spawn('script', ['-qefc', cmd, '/dev/null'], {
          cwd: ROOT,
          env: { PATH: process.env['PATH'], TZ: 'UTC', COLUMNS: '100' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let text = '';
        child.stdout.on('data', (d) => (text += d));
        child.stderr.on('data', (d) => (text += d));
        child.on('close', (code) => resolve({ code, text }));
      });
      assert.equal(out.code, 0, out.text);
      const logStarts = [...out.text.matchAll(/\{"level":/g)].map((m) => m.index!);
      assert.ok(logStarts.length >= 3, `log lines were written: ${logStarts.length}`);
      for (const at of logStarts) {
        const before = out.text.slice(Math.max(0, at - 4), at);
        assert.ok(
          at === 0 || before.endsWith('\n') || before === '\r\x1b[K',
          `a log line starts on a line of its own, not after ${JSON.stringify(out.text.slice(Math.max(0, at - 40), at))}`,
        );
      }
      // and the bar is still drawn, to its end
      const frames = out.text
        .split('\r\x1b[K')
        .map((f) => f.split('\n')[0]!.trim())
        .filter((f) => f.startsWith('512345/daily'));
      assert.match(frames.at(-1)!, /100%\s+181\/181 dates/);
    });
  });
});
