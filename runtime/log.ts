/**
 * Structured logging (pino). Log lines carry operator names, codes and counts: never a device id, patient ref or
 * payload value. Logs go to stderr so a command's stdout stays machine-readable (`--json`).
 *
 * Secrets are kept out twice: connection secrets are `Secret`s that serialise as `[redacted]` (runtime/connections.ts),
 * and pino censors the fields below wherever a client's options or an HTTP request end up in a log object.
 */
import { pino } from 'pino';

export type Logger = pino.Logger;

/** Fields censored in every log line (top level and up to two levels deep): passwords, tokens, librdkafka secrets. */
const SECRET_FIELDS = [
  'password',
  'secret',
  'token',
  'authorization',
  'clientSecret',
  'keyPassword',
  '["sasl.password"]',
  '["ssl.key.password"]',
  '["sasl.oauthbearer.client.secret"]',
];
export const LOG_REDACT_PATHS: readonly string[] = SECRET_FIELDS.flatMap((field) => {
  const member = field.startsWith('[') ? field : `.${field}`;
  return [field, `*${member}`, `*.*${member}`];
});

export function createLogger(
  name: string,
  level = process.env.VIGIL_LOG_LEVEL ?? 'info',
  /** Where lines go (stderr); tests pass a stream to read what was logged. */
  destination: pino.DestinationStream = pino.destination(2),
): Logger {
  return pino(
    { name, level, base: { service: 'vigil' }, redact: { paths: [...LOG_REDACT_PATHS], censor: '[redacted]' } },
    destination,
  );
}

/** A logger that drops everything: tests and benchmarks. */
export const silentLogger: Logger = pino({ level: 'silent' });
