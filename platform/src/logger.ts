import pino from 'pino';
import type { LogLevel } from './config';

export type Logger = pino.Logger;

/** JSON lines on stdout; personal data is never logged (only ids, counts and codes). */
export const createLogger = (level: LogLevel, bindings: Record<string, unknown> = {}): Logger =>
  pino({ level, base: { service: 'notify', ...bindings }, timestamp: pino.stdTimeFunctions.isoTime });
