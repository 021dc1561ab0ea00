import { context, propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerTenant, startHarness, type Harness } from './testing/harness';
import { until } from './testing/until';

/**
 * One trace follows a send on the embedded default: the GraphQL mutation, the appended event
 * (trace context in its metadata), the planner, the bus message (its headers), the worker's
 * planning of the slice and the provider call, recorded by an in-memory exporter.
 */
describe('a send is one trace, from the mutation to the provider call', () => {
  const exporter = new InMemorySpanExporter();
  let h: Harness;
  let admin: string;

  beforeAll(async () => {
    const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(provider);
    h = await startHarness();
    admin = await registerTenant(h, 'traced');
    await h.ok(admin, `mutation($in: RegisterUserInput!) { registerUser(input: $in) { userId } }`, {
      in: { userId: 'u1', name: 'Traced User', consent: { start: '2026-01-01T00:00:00Z', end: '2099-01-01T00:00:00Z' }, devices: [{ kind: 'SMS', address: '+821055550001' }, { kind: 'EMAIL', address: 'traced@example.com' }] },
    });
  });
  afterAll(async () => {
    await h.stop();
    trace.disable();
    propagation.disable();
    context.disable();
  });

  it('links the mutation, the event, the planner, the bus message, the worker and the provider calls', async () => {
    // The caller's own trace is continued (W3C traceparent in, the same trace id throughout).
    const callerTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const res = await fetch(h.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}`, traceparent: `00-${callerTrace}-00f067aa0ba902b7-01` },
      body: JSON.stringify({ query: 'mutation { sendNotification(input: { userIds: ["u1"], text: "traced" }) { notification { notificationId } } }' }),
    });
    const id = ((await res.json()) as any).data.sendNotification.notification.notificationId as string;
    await until(async () => (await h.ok<any>(admin, `{ notification(notificationId: "${id}") { status } }`)).notification.status === 'COMPLETED', 30_000, 'the send to complete');

    const requested = (await h.app.eventStore.readAll({ after: 0, maxCount: 10_000, tenantId: 'traced', types: ['NotificationRequested'] })).at(-1)!;
    expect(requested.metadata.traceparent).toMatch(new RegExp(`^00-${callerTrace}-[0-9a-f]{16}-01$`));

    await until(() => exporter.getFinishedSpans().filter((s) => s.name === 'provider.send' && s.spanContext().traceId === callerTrace).length >= 2, 5_000, 'the provider spans');
    const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === callerTrace);
    const byName = (name: string) => spans.filter((s) => s.name === name);
    const parentOf = (s: ReadableSpan) => spans.find((p) => p.spanContext().spanId === s.parentSpanContext?.spanId);

    const mutation = byName('graphql mutation.sendNotification')[0]!;
    expect(mutation).toBeDefined();
    expect(mutation.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    // The event's metadata names the mutation's span: the planner continues from it.
    expect(requested.metadata.traceparent).toContain(mutation.spanContext().spanId);
    const planner = byName('planner.slice')[0]!;
    expect(planner.parentSpanContext?.spanId).toBe(mutation.spanContext().spanId);
    const publish = byName('bus.publish')[0]!;
    expect(parentOf(publish)).toBe(planner);
    // The worker continues from the bus message's headers; the provider calls from the worker's slice.
    const pages = byName('delivery.plan-page');
    expect(pages.length).toBeGreaterThan(0);
    for (const p of pages) expect(parentOf(p)).toBe(publish);
    const calls = byName('provider.send');
    expect(calls.map((c) => c.attributes['notify.channel']).sort()).toEqual(['email', 'sms']);
    for (const c of calls) expect(parentOf(c)).toBe(publish);
    expect(calls.every((c) => c.attributes['notify.tenant'] === 'traced')).toBe(true);
  });

  it('every event an API request appends carries that request\'s trace context', async () => {
    const before = exporter.getFinishedSpans().length;
    expect(before).toBeGreaterThan(0);
    const events = await h.app.eventStore.readAll({ after: 0, maxCount: 10_000, tenantId: 'traced', types: ['TenantRegistered'] });
    // Registered through the API: that request had its own (new) trace.
    expect(events[0]!.metadata.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });
});
