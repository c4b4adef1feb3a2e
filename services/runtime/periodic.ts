import type { Logger } from "pino";

/**
 * Runs `work` every `intervalMs`, never two at once (a run still going when the next is due
 * skips that one), never keeping the process alive for it. A failed run is logged as
 * `<what> failed` and tried again at the next interval. For the sweeps that look for what no
 * message triggers: silent and idle tasks, tasks to learn, retries due.
 */
export function every(intervalMs: number, work: () => Promise<unknown>, log: { logger: Logger; what: string }): { stop(): void } {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    work()
      .catch((err: unknown) => log.logger.warn({ err }, `${log.what} failed; trying again at the next interval`))
      .finally(() => {
        running = false;
      });
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
