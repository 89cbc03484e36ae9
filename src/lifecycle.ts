/**
 * The start and stop bookkeeping of a part made of parts (the daemon, the demo), as pg-boss keeps
 * it: start() brings the parts up in order, stop() takes them down in reverse, and both are safe
 * to call at any moment.
 *
 * - stop() may come while start() is still at work (a SIGTERM during the start-up's database
 *   wait, or during a first token exchange that hangs): it ends the start-up's waits at once, so
 *   start() rejects with AbortedError, and then takes down whatever had come up.
 * - Concurrent and later calls share one outcome: a second stop() awaits the first one's promise,
 *   a second start() the first one's. Once stop() was called, start() rejects and starts nothing.
 */
import { AbortedError } from './errors.js';

export class Lifecycle {
  private readonly stopRequested = new AbortController();
  private starting: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;

  /** Aborted (reason: AbortedError) once stop() was called. */
  get stopSignal(): AbortSignal {
    return this.stopRequested.signal;
  }

  /**
   * Runs `bringUp` once; later calls return its promise, until stop() is called.
   * @throws AbortedError when stop() was called before or during it; once stopped, nothing starts again
   */
  start(bringUp: () => Promise<void>): Promise<void> {
    if (this.stopRequested.signal.aborted) return Promise.reject(new AbortedError('stopped: a stopped part does not start again'));
    this.starting ??= bringUp();
    return this.starting;
  }

  /**
   * Ends the start-up's waits, lets start() settle, then runs `takeDown` (the first caller's).
   * Every call returns the same promise.
   */
  stop(takeDown: () => Promise<void>): Promise<void> {
    this.stopping ??= (async () => {
      this.stopRequested.abort(new AbortedError('stopped during start-up'));
      await this.starting?.catch(() => undefined);
      await takeDown();
    })();
    return this.stopping;
  }

  /**
   * `work`, or AbortedError as soon as stop() is called, whichever comes first. For the start-up
   * steps that may wait long; the work itself runs on, and takeDown stops the part it belongs to.
   */
  step<T>(work: Promise<T>): Promise<T> {
    const signal = this.stopRequested.signal;
    if (signal.aborted) {
      work.catch(() => undefined);
      return Promise.reject(new AbortedError('stopped during start-up'));
    }
    return new Promise<T>((resolve, reject) => {
      const onStop = () => reject(new AbortedError('stopped during start-up'));
      signal.addEventListener('abort', onStop, { once: true });
      work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onStop));
    });
  }

  /** Between start-up steps: AbortedError when stop() was called. */
  checkpoint(): void {
    if (this.stopRequested.signal.aborted) throw new AbortedError('stopped during start-up');
  }
}

/** How far start() brings the daemon up; each stage includes the ones before it. */
export type StartStage = 'database' | 'services' | 'schedule';

export interface StartOptions {
  /**
   * `database`: the migrations only (`migrate`). `services`: also the metrics' start values, HTTP
   * (when the daemon serves it) and tokens, for the one-shot commands (`run --once`, `backfill`)
   * that hand the scheduler their jobs themselves. `schedule` (the default): also the cron
   * schedule and a first run of whatever is due (`run`, `demo`).
   */
  upTo?: StartStage;
  /**
   * How long to wait for a database that is down or still starting, ms (store/databaseWait.ts).
   * The daemon waits up to a minute, as under systemd or compose; commands fail at once (default 0).
   */
  databaseWaitMs?: number;
}
