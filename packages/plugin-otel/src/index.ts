/**
 * @docket/plugin-otel — OpenTelemetry tracing for Docket, on `@opentelemetry/api` alone (bring
 * your own SDK; without one every call is the API's no-op).
 *
 *   const app = new Docket({ connection, plugins: [otel()] });
 *
 * A push inside an active span opens a PRODUCER span `create <queue>` and stamps its W3C trace
 * context into each job's `meta` (`traceparent`, `tracestate`). A worker — in any process — runs
 * each attempt inside a CONSUMER span `process <queue>` that is a **child** of that span, so the
 * request that pushed a job and the attempts that ran it are one trace; code in the handler
 * (database calls, HTTP clients) lands in the consumer span. The span records the handler's
 * exception, and ends when the outcome is committed, with it (`docket.job.outcome`: succeeded,
 * failed, retry with its time, cancelled, waiting). Jobs pushed while other jobs settle —
 * subtasks, callbacks, the next steps of a workflow — continue the trace of the job their `meta`
 * names (`parentKeys`). Built only on the public hooks: `beforePush` (a tap that needs no
 * transaction), `wrapAttempt` and `afterSettle`.
 */

import {
  type Docket,
  type DocketPlugin,
  InvalidOptionError,
  integerOption,
  type JobInsert,
  type PushContext,
  pluginBinding,
  type RunningJob,
  rejectUnknownKeys,
  type SettledJob,
} from '@docket/core';
import {
  type Attributes,
  context,
  isSpanContextValid,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import { ATTR, MESSAGING_SYSTEM } from './attributes.js';
import { canRecord } from './can-record.js';
import { extractFrom, injectInto, TRACEPARENT_META_KEY } from './traceparent.js';

export { ATTR, MESSAGING_SYSTEM } from './attributes.js';
export { extractFrom, injectInto, TRACEPARENT_META_KEY, TRACESTATE_META_KEY } from './traceparent.js';

export const PLUGIN_NAME = 'otel';
export const PLUGIN_VERSION = '0.0.0';

/**
 * Meta keys that name the job a push made outside any span continues: a subtask's parent and a
 * callback's job (@docket/plugin-workflow's `parentId`, `callbackOf`), and the step whose
 * completion released a workflow step (`releasedBy`).
 */
export const DEFAULT_PARENT_KEYS: readonly string[] = Object.freeze(['parentId', 'callbackOf', 'releasedBy']);

export interface OtelOptions {
  /** Where spans go. Default: the global tracer provider (`trace.setGlobalTracerProvider`, or your SDK's `register()`). */
  tracerProvider?: TracerProvider;
  /** A PRODUCER span `create <queue>` per push made in an active span, the parent of the jobs' consumer spans. Default true; false stamps the active span itself. */
  producerSpans?: boolean;
  /** Meta keys naming the job a push made outside any span continues (see DEFAULT_PARENT_KEYS). */
  parentKeys?: readonly string[];
  /** Most consumer spans kept open awaiting their outcome; past it the oldest is ended without one. Default 10000. */
  maxOpenSpans?: number;
}

const OPTION_KEYS = ['tracerProvider', 'producerSpans', 'parentKeys', 'maxOpenSpans'] as const;

export interface OtelPlugin extends DocketPlugin {
  /** Consumer spans started by this process whose outcome is not committed yet (for tests and diagnostics). */
  readonly openSpans: number;
}

export function otel(options: OtelOptions = {}): OtelPlugin {
  const where = `${PLUGIN_NAME}(options)`;
  rejectUnknownKeys(where, options, OPTION_KEYS);
  if (options.tracerProvider !== undefined && typeof (options.tracerProvider as { getTracer?: unknown } | null)?.getTracer !== 'function') {
    throw new InvalidOptionError(`${where}: \`tracerProvider\` must be an OpenTelemetry TracerProvider (with getTracer).`, {
      details: { option: 'tracerProvider' },
    });
  }
  if (options.producerSpans !== undefined && typeof options.producerSpans !== 'boolean') {
    throw new InvalidOptionError(`${where}: \`producerSpans\` must be true or false.`, { details: { option: 'producerSpans' } });
  }
  const parentKeys = options.parentKeys ?? DEFAULT_PARENT_KEYS;
  if (!Array.isArray(parentKeys) || !parentKeys.every((k) => typeof k === 'string' && k.length > 0)) {
    throw new InvalidOptionError(`${where}: \`parentKeys\` must be a list of meta keys.`, { details: { option: 'parentKeys' } });
  }
  const producerSpans = options.producerSpans ?? true;
  const maxOpenSpans = integerOption(where, 'maxOpenSpans', options.maxOpenSpans, 10_000, { min: 1, max: 1_000_000 });
  // Resolved at each use, not now: an SDK registered after the app was built still gets the spans.
  const tracer = (): Tracer => (options.tracerProvider ?? trace.getTracerProvider()).getTracer('@docket/plugin-otel', PLUGIN_VERSION);

  /** Consumer spans by job id, in start order (a Map keeps insertion order: the first is the oldest). */
  const open = new Map<string, { span: Span; attempt: number }>();

  const stampPush = async (rows: JobInsert[], ctx: PushContext): Promise<JobInsert[]> => {
    const active = trace.getSpan(context.active());
    if (active && isSpanContextValid(active.spanContext())) {
      let stamp = active.spanContext();
      if (producerSpans) {
        const queues = new Set(rows.map((r) => r.queue));
        const queue = queues.size === 1 ? ([...queues][0] ?? null) : null;
        const attributes: Attributes = { [ATTR.system]: MESSAGING_SYSTEM, [ATTR.operationType]: 'create', [ATTR.operationName]: 'push' };
        if (queue !== null) attributes[ATTR.destination] = queue;
        if (rows.length > 1) attributes[ATTR.batchCount] = rows.length;
        else if (rows[0]) attributes[ATTR.jobName] = rows[0].name;
        const span = tracer().startSpan(queue === null ? 'create' : `create ${queue}`, { kind: SpanKind.PRODUCER, attributes });
        // The span stands for the jobs' creation; their ids are not known until the INSERT.
        span.end();
        if (isSpanContextValid(span.spanContext())) stamp = span.spanContext();
      }
      for (const row of rows) injectInto(row.meta, stamp);
      return rows;
    }
    await continueParents(rows, ctx);
    return rows;
  };

  /** Rows pushed outside any span (while other jobs settle): continue the trace of the job their meta names. */
  const continueParents = async (rows: JobInsert[], ctx: PushContext): Promise<void> => {
    let remote: Map<string, JobInsert[]> | null = null;
    for (const row of rows) {
      const parent = parentOf(row);
      if (parent === null) continue;
      const local = open.get(parent);
      if (local) {
        injectInto(row.meta, local.span.spanContext());
        continue;
      }
      remote ??= new Map();
      const list = remote.get(parent);
      if (list) list.push(row);
      else remote.set(parent, [row]);
    }
    if (remote === null) return;
    // A parent that ran elsewhere (or long ago): continue the context it was pushed with.
    for (const [id, waiting] of remote) {
      const stored = await ctx.app.getJob(id).then(
        (job) => extractFrom(job.meta),
        () => null,
      );
      if (stored) for (const row of waiting) injectInto(row.meta, stored);
    }
  };

  const parentOf = (row: JobInsert): string | null => {
    for (const key of parentKeys) {
      const value = row.meta[key];
      if (typeof value === 'string' && /^\d{1,19}$/.test(value)) return value;
    }
    return null;
  };

  const endSpan = (id: string, settled: SettledJob | null): void => {
    const entry = open.get(id);
    if (!entry) return;
    open.delete(id);
    const { span } = entry;
    if (settled) {
      const { outcome } = settled;
      span.setAttribute(ATTR.outcome, outcome.state);
      if (outcome.state === 'retry') {
        span.setAttribute(ATTR.retryAt, outcome.retryAt.toISOString());
        span.addEvent('docket.job.retry_scheduled', { [ATTR.retryAt]: outcome.retryAt.toISOString() });
      }
      if (outcome.state === 'failed' || outcome.state === 'retry') {
        span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error.message });
        span.setAttribute(ATTR.errorType, outcome.error.code ?? outcome.error.name);
      }
    }
    span.end();
  };

  const binding = pluginBinding(PLUGIN_NAME, PLUGIN_NAME);
  return {
    name: PLUGIN_NAME,
    version: PLUGIN_VERSION,
    get openSpans() {
      return open.size;
    },

    apply(app: Docket) {
      binding.bind(app);
      app.hooks.beforePush.tapPromise({ name: PLUGIN_NAME, transaction: false }, stampPush);

      // Only jobs with a span to record or a trace to carry on: with no SDK registered, a job
      // pushed outside any trace runs unwrapped (no attributes, no no-op span).
      const traced = (job: RunningJob) => typeof job.meta[TRACEPARENT_META_KEY] === 'string' || canRecord(options.tracerProvider);
      app.hooks.wrapAttempt.tap({ name: PLUGIN_NAME, wants: traced }, (run, ctx) => () => {
        const { job } = ctx;
        const pushed: SpanContext | null = extractFrom(job.meta);
        const parent = pushed ? trace.setSpanContext(ROOT_CONTEXT, pushed) : ROOT_CONTEXT;
        const attributes: Attributes = {
          [ATTR.system]: MESSAGING_SYSTEM,
          [ATTR.operationType]: 'process',
          [ATTR.operationName]: 'process',
          [ATTR.destination]: job.queue,
          [ATTR.messageId]: job.id,
          [ATTR.jobName]: job.name,
          [ATTR.attempt]: job.attempt,
          [ATTR.maxAttempts]: job.maxAttempts,
        };
        if (ctx.workerId !== null) attributes[ATTR.clientId] = ctx.workerId;
        const span = tracer().startSpan(`process ${job.queue}`, { kind: SpanKind.CONSUMER, attributes }, parent);
        // No SDK and no pushed context: a no-op span with nothing to carry; run the handler as it is.
        if (!isSpanContextValid(span.spanContext())) return run();
        endSpan(job.id, null);
        open.set(job.id, { span, attempt: job.attempt });
        if (open.size > maxOpenSpans) {
          const oldest = open.keys().next().value;
          if (oldest !== undefined) endSpan(oldest, null);
        }
        return context.with(trace.setSpan(parent, span), async () => {
          try {
            return await run();
          } catch (error) {
            span.recordException(error instanceof Error ? error : String(error));
            throw error;
          }
        });
      });

      app.hooks.afterSettle.tap(PLUGIN_NAME, (settled) => {
        if (open.size === 0) return;
        for (const s of settled) {
          const entry = open.get(s.job.id);
          if (entry && entry.attempt === s.job.attempt) endSpan(s.job.id, s);
        }
      });
    },
  };
}
