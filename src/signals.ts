/**
 * The process signals of the long-running commands (`run`, `demo`), handled in one place, in two
 * stages as graphile-worker does:
 *
 * - The first SIGTERM or SIGINT stops the service: no new work starts, jobs in flight get the
 *   grace period and are then aborted, the pool is closed. Exit 0 once it has stopped.
 * - A second one exits at once, with 143 (SIGTERM) or 130 (SIGINT), as a shell reports a process
 *   the signal ended: whoever sent it (an impatient operator, a service manager past its stop
 *   timeout) wants the process gone now.
 * - SIGHUP reloads, for a service that can (the daemon reads its configuration file again). One
 *   that arrives during start-up is applied once the service has started.
 *
 * The handlers go in before any start-up work: a SIGTERM while the daemon waits for its database,
 * or while a first token exchange hangs, is a prompt, clean stop (exit 0), not the end of the
 * process by the signal's default action. They are removed when the command is done, so nothing
 * outlives it (tests run several in one process).
 *
 * SIGPIPE is left alone: Node.js ignores it from the start, so a write to a closed pipe (a log
 * reader that went away) fails as EPIPE on that write instead of ending the process, and a
 * handler here could only turn that into a shutdown.
 */
import { AbortedError, describe } from './errors.js';
import type { Logger } from './log.js';

/** Something started once and stopped once; stop() may come during start() (lifecycle.ts). */
export interface Service {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface SignalHooks {
  logger: Logger;
  /** start() failed and no signal asked for a stop: say why; returns the exit code */
  startFailed: (err: unknown) => number;
  /** start() is done */
  started?: () => void;
  /** the first SIGTERM or SIGINT, before stop() */
  stopping?: (signal: NodeJS.Signals) => void;
  /** stop() is done after a signal; `wasStarted` false when the signal came during start-up */
  stopped?: (wasStarted: boolean) => void;
  /** SIGHUP; without it SIGHUP keeps its default action */
  reload?: () => Promise<void>;
}

/** The exit code of a process the signal forced out: 128 + the signal's number, as shells say. */
const FORCED_EXIT: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };
const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

/**
 * Starts `service` and runs it until a signal stops it, with the handlers above installed first
 * and removed before this returns.
 *
 * @returns the exit code: 0 after a stop (one asked during start-up included), 1 when stop()
 *   failed, 130/143 when a second signal forced the exit, else what `hooks.startFailed` said
 */
export async function runUntilSignalled(service: Service, hooks: SignalHooks): Promise<number> {
  const { logger } = hooks;
  let firstSignal: NodeJS.Signals | null = null;
  let stopping: Promise<void> | null = null;
  let running = false;
  let reloadWaiting = false;
  let stopAsked!: () => void;
  const stopRequested = new Promise<void>((resolve) => (stopAsked = resolve));
  let force!: (code: number) => void;
  const forced = new Promise<number>((resolve) => (force = resolve));

  const stop = (): Promise<void> => {
    stopping ??= service.stop();
    return stopping;
  };
  const onStopSignal = (signal: NodeJS.Signals) => {
    if (firstSignal) {
      logger.warn({ event: 'forced_exit', signal }, 'second signal: exiting now');
      force(FORCED_EXIT[signal] ?? 1);
      return;
    }
    firstSignal = signal;
    hooks.stopping?.(signal);
    stop().catch(() => undefined);
    stopAsked();
  };
  const onHangUp = () => {
    if (firstSignal || !hooks.reload) return;
    if (!running) {
      reloadWaiting = true;
      logger.info({ event: 'reload_deferred' }, 'SIGHUP during start-up: the configuration is reloaded once started');
      return;
    }
    void hooks.reload();
  };

  for (const signal of STOP_SIGNALS) process.on(signal, onStopSignal);
  if (hooks.reload) process.on('SIGHUP', onHangUp);
  try {
    const startOutcome = await Promise.race([
      service.start().then(
        () => ({ failure: null }),
        (err: unknown) => ({ failure: err }),
      ),
      forced.then((code) => ({ forcedCode: code })),
    ]);
    if ('forcedCode' in startOutcome) return startOutcome.forcedCode;
    if (startOutcome.failure !== null && !firstSignal) {
      const code = hooks.startFailed(startOutcome.failure);
      const afterStop = await Promise.race([
        stop().then(
          () => code,
          () => code,
        ),
        forced,
      ]);
      return afterStop;
    }
    if (firstSignal) {
      const why = startOutcome.failure instanceof AbortedError || startOutcome.failure === null ? {} : { err: describe(startOutcome.failure) };
      logger.info({ event: 'startup_interrupted', signal: firstSignal, ...why }, 'stopped during start-up');
    } else {
      running = true;
      hooks.started?.();
      if (reloadWaiting) void hooks.reload?.();
    }
    const wasStarted = running;
    return await Promise.race([
      stopRequested
        .then(() => stop())
        .then(
          () => {
            hooks.stopped?.(wasStarted);
            return 0;
          },
          (err: unknown) => {
            logger.error({ event: 'shutdown_failed', err: describe(err) }, 'shutdown failed');
            return 1;
          },
        ),
      forced,
    ]);
  } finally {
    for (const signal of STOP_SIGNALS) process.removeListener(signal, onStopSignal);
    process.removeListener('SIGHUP', onHangUp);
  }
}
