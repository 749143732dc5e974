/**
 * Structured logging (pino). Log lines carry operator names, codes and counts: never a device id, patient ref or
 * payload value. Logs go to stderr so a command's stdout stays machine-readable (`--json`).
 */
import { pino } from 'pino';

export type Logger = pino.Logger;

export function createLogger(name: string, level = process.env.VIGIL_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { service: 'vigil' } }, pino.destination(2));
}

/** A logger that drops everything: tests and benchmarks. */
export const silentLogger: Logger = pino({ level: 'silent' });
