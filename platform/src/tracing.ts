import { context, propagation, trace, SpanKind, SpanStatusCode, type Attributes, type Context, type Span } from '@opentelemetry/api';

/**
 * Manual spans on the path of a send (API operation, planner, bus, worker, provider call) and W3C
 * trace context carried across the log (event metadata) and the bus (message headers). With no
 * OpenTelemetry SDK registered (OTEL_* unset) every call here is a no-op of the API package.
 */
const tracer = () => trace.getTracer('notify');

export type TraceCarrier = Readonly<Record<string, string>>;

/** The active (or given) context as W3C headers: `{}` when tracing is off or no span is active. */
export const injectTrace = (ctx: Context = context.active()): TraceCarrier => {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier;
};

/** The context a carrier (event metadata, bus headers, HTTP headers) continues; the active one without it. */
export const extractTrace = (carrier: Readonly<Record<string, unknown>> | null | undefined): Context => {
  if (!carrier || typeof carrier['traceparent'] !== 'string') return context.active();
  return propagation.extract(context.active(), carrier as Record<string, string>);
};

/** The traceparent of the active span, for event metadata; absent when tracing is off. */
export const currentTraceparent = (): Readonly<{ traceparent?: string }> => {
  const t = injectTrace()['traceparent'];
  return t ? { traceparent: t } : {};
};


/** Runs `work` in a new active span (a child of `parent`, else of the active context), ending it with the outcome. */
export const inSpan = <T>(
  name: string,
  options: Readonly<{ parent?: Context | undefined; kind?: SpanKind; attributes?: Attributes }>,
  work: (span: Span) => Promise<T>,
): Promise<T> =>
  tracer().startActiveSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, ...(options.attributes ? { attributes: options.attributes } : {}) }, options.parent ?? context.active(), async (span) => {
    try {
      return await work(span);
    } catch (e) {
      span.recordException(e as Error);
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw e;
    } finally {
      span.end();
    }
  });

/** Names the active span once what it is became known (a GraphQL operation, after parsing). */
export const describeActiveSpan = (name: string, attributes: Attributes): void => {
  const span = trace.getActiveSpan();
  if (!span?.isRecording()) return;
  span.updateName(name);
  span.setAttributes(attributes);
};

export { SpanKind };
