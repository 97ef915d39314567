/**
 * The real OpenTelemetry SDK for a test process: a tracer provider that keeps finished spans in
 * memory, and the AsyncLocalStorage context manager, registered globally (as an app's setup
 * would). Import it first in a test file; every file runs in its own process.
 */
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

export const exporter = new InMemorySpanExporter();
export const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(provider);

/** What a test compares of a span (and what a child process sends over IPC). */
export interface SpanSummary {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  attributes: Record<string, unknown>;
  status: number;
  events: string[];
}

export function summary(span: ReadableSpan): SpanSummary {
  return {
    name: span.name,
    kind: span.kind,
    traceId: span.spanContext().traceId,
    spanId: span.spanContext().spanId,
    parentSpanId: span.parentSpanContext?.spanId ?? null,
    attributes: { ...span.attributes },
    status: span.status.code,
    events: span.events.map((e) => e.name),
  };
}

/** Finished spans so far. */
export function finished(): SpanSummary[] {
  return exporter.getFinishedSpans().map(summary);
}
