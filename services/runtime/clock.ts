import type { Logger } from "pino";
import { every } from "./periodic.js";

/**
 * What time it is, and the sweeps that run now and then (silent and idle tasks, tasks to
 * learn): a port, so that the same stage code runs on the wall clock live and on the
 * recording's clock in a replay. A replay on the recording's clock is deterministic: the same
 * recording gives the same findings, however fast the machine or long the replay.
 */
export interface Clock {
  now(): number;
  /** Runs `work` every `intervalMs` (never two at once, failures logged) until stopped. */
  every(intervalMs: number, work: () => Promise<unknown>, log: { logger: Logger; what: string }): { stop(): void };
}

/** The wall clock and real timers: what every service runs on live. */
export const systemClock: Clock = {
  now: () => Date.now(),
  every,
};

interface Job {
  intervalMs: number;
  dueMs: number;
  work: () => Promise<unknown>;
  log: { logger: Logger; what: string };
  stopped: boolean;
}

/**
 * A clock that moves only when told (replay): `advanceTo` sets the time and runs each
 * periodic job that fell due by then, once, in the order they were registered, awaiting each.
 * Before it is first advanced, it reads as `startMs`.
 */
export class ManualClock implements Clock {
  private t: number;
  private readonly jobs: Job[] = [];

  constructor(startMs = 0) {
    this.t = startMs;
  }

  now(): number {
    return this.t;
  }

  every(intervalMs: number, work: () => Promise<unknown>, log: { logger: Logger; what: string }): { stop(): void } {
    const job: Job = { intervalMs, dueMs: this.t + intervalMs, work, log, stopped: false };
    this.jobs.push(job);
    return {
      stop: () => {
        job.stopped = true;
      },
    };
  }

  /** Moves the time forward (never back) and runs the jobs due by then; how many ran. */
  async advanceTo(ms: number): Promise<number> {
    if (ms > this.t) this.t = ms;
    let ran = 0;
    for (const job of this.jobs) {
      if (job.stopped || job.dueMs > this.t) continue;
      // once however many intervals passed: a sweep looks at the state as it is now
      job.dueMs = this.t + job.intervalMs;
      ran++;
      await job.work().catch((err: unknown) => job.log.logger.warn({ err }, `${job.log.what} failed; trying again when next due`));
    }
    return ran;
  }
}
