import { AsyncLocalStorage } from 'node:async_hooks';
import pino from 'pino';
import { trace } from '@opentelemetry/api';
import type { LogLevel } from './config';

export type Logger = pino.Logger;

/** What every log line caused by one request carries, wherever in the code it is written. */
export type LogContext = Readonly<{ requestId: string }>;

const context = new AsyncLocalStorage<LogContext>();

/** Runs `work` with the request's id on every log line it causes (through async calls too). */
export const withLogContext = <T>(ctx: LogContext, work: () => T): T => context.run(ctx, work);

export const currentRequestId = (): string | undefined => context.getStore()?.requestId;

/** The request id and, when tracing is on, the trace and span ids of the active span. */
export const logContextFields = (): Record<string, string> => {
  const fields: Record<string, string> = {};
  const requestId = context.getStore()?.requestId;
  if (requestId) fields['requestId'] = requestId;
  const span = trace.getActiveSpan()?.spanContext();
  if (span && span.traceId !== '00000000000000000000000000000000') {
    fields['traceId'] = span.traceId;
    fields['spanId'] = span.spanId;
  }
  return fields;
};

export const loggerOptions = (level: LogLevel | 'debug', bindings: Record<string, unknown> = {}): pino.LoggerOptions => ({
  level,
  base: { service: 'notify', ...bindings },
  timestamp: pino.stdTimeFunctions.isoTime,
  mixin: logContextFields,
});

/** JSON lines on stdout; personal data is never logged (only ids, counts and codes). */
export const createLogger = (level: LogLevel, bindings: Record<string, unknown> = {}, destination?: pino.DestinationStream): Logger =>
  destination ? pino(loggerOptions(level, bindings), destination) : pino(loggerOptions(level, bindings));
