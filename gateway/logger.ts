/**
 * The one pino root logger; every module takes a child (`log.child({ module: 'ingest' })`).
 * Secrets never reach a log line: the fields that could carry one are redacted as a second line
 * of defence, and the code does not log them in the first place.
 */
import pino, { type Logger, type DestinationStream } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'password',
  '*.password',
  'secret',
  '*.secret',
  'token',
  '*.token',
  'macKey',
  '*.macKey',
  'keys',
  '*.keys',
  'pin',
  '*.pin',
  'duressPin',
  '*.duressPin',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { name: 'lianfang', pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
