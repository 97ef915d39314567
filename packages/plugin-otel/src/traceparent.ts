/**
 * The W3C Trace Context headers as a job carries them in `meta`: `traceparent`
 * (`00-<trace id>-<span id>-<flags>`) and, when the span has one, `tracestate`. Written and read
 * here rather than through the globally registered propagator, so that a job always carries the
 * W3C form whatever propagators an app installs, and any language reading the jobs table can
 * continue the trace.
 */
import { createTraceState, isSpanContextValid, type SpanContext, TraceFlags } from '@opentelemetry/api';

/** The `meta` key of the W3C `traceparent` of the span a job continues. */
export const TRACEPARENT_META_KEY = 'traceparent';
/** The `meta` key of the W3C `tracestate` (absent when the span has none). */
export const TRACESTATE_META_KEY = 'tracestate';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** Stamps `context` into `meta` (replacing what was there). */
export function injectInto(meta: Record<string, unknown>, context: SpanContext): void {
  meta[TRACEPARENT_META_KEY] = `00-${context.traceId}-${context.spanId}-${(context.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
  const state = context.traceState?.serialize();
  if (state) meta[TRACESTATE_META_KEY] = state;
  else delete meta[TRACESTATE_META_KEY];
}

/** The remote span context a job's `meta` carries, or null when it carries none (or a malformed one). */
export function extractFrom(meta: Readonly<Record<string, unknown>>): SpanContext | null {
  const header = meta[TRACEPARENT_META_KEY];
  if (typeof header !== 'string') return null;
  const [, traceId, spanId, flags] = TRACEPARENT.exec(header) ?? [];
  if (traceId === undefined || spanId === undefined || flags === undefined) return null;
  const state = meta[TRACESTATE_META_KEY];
  const context: SpanContext = {
    traceId,
    spanId,
    traceFlags: Number.parseInt(flags, 16) & TraceFlags.SAMPLED,
    isRemote: true,
    ...(typeof state === 'string' && state.length > 0 ? { traceState: createTraceState(state) } : {}),
  };
  return isSpanContextValid(context) ? context : null;
}
