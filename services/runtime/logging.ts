import { type Logger, pino } from "pino";

/**
 * Structured logs (pino) on stderr, so stdout stays free for data (findings as JSON lines).
 * Anything that could hold a secret is redacted.
 */
export function createLogger(level: string, name = "driftwatch"): Logger {
  return pino(
    {
      name,
      level,
      redact: {
        paths: ["secret", "*.secret", "*.*.secret", "token", "*.token", "headers.authorization", "*.headers.authorization"],
        censor: "[redacted]",
      },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}

export type { Logger };
