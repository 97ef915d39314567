import './sdk.js';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { defineJob, type JobContext } from '@docket/core';
import { chain, pushWorkflow, waitForWorkflow, workflows } from '@docket/plugin-workflow';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { canRecord } from '../src/can-record.js';
import { ATTR, otel, TRACEPARENT_META_KEY } from '../src/index.js';
import { type Harness, harness, nextMessage } from './helpers.js';
import { exporter, finished, type SpanSummary } from './sdk.js';

const consumerOf = (id: string) => finished().find((s) => s.kind === SpanKind.CONSUMER && s.attributes[ATTR.messageId] === id);

/** Waits until `find` finds a span: consumer spans end when the outcome's commit is announced (afterSettle), just after waitForJob returns. */
async function span(find: () => SpanSummary | undefined): Promise<SpanSummary> {
  for (let i = 0; i < 200; i++) {
    const found = find();
    if (found) return found;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error('the span was not exported');
}

describe('otel with the real SDK', () => {
  const plugin = otel();
  let h: Harness;
  before(async () => {
    h = await harness({ plugins: [plugin, workflows()] });
  });
  after(() => h.close());

  test('with the SDK registered, spans can record (every job is traced)', () => {
    assert.equal(canRecord(undefined), true);
  });

  test('a push in process A and its run in process B are one trace: the consumer span is a child of A’s producer span', {
    timeout: 60_000,
  }, async () => {
    const child = fork(new URL('./fixtures/producer.ts', import.meta.url), {
      env: { ...process.env, TEST_DATABASE_URL: h.db.url },
      execArgv: process.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const pushed = await nextMessage<{ type: 'pushed'; id: string; spans: SpanSummary[] }>(child, 'pushed');
    const request = pushed.spans.find((s) => s.name === 'POST /orders')!;
    const producer = pushed.spans.find((s) => s.kind === SpanKind.PRODUCER)!;
    assert.equal(producer.name, 'create otel-cross');
    assert.equal(producer.traceId, request.traceId);
    assert.equal(producer.parentSpanId, request.spanId, 'the producer span is a child of the span the push ran in');
    assert.equal(producer.attributes[ATTR.system], 'docket');
    assert.equal(producer.attributes[ATTR.operationType], 'create');
    assert.equal(producer.attributes[ATTR.destination], 'otel-cross');
    const stored = await h.app.getJob(pushed.id);
    assert.equal(stored.meta[TRACEPARENT_META_KEY], `00-${producer.traceId}-${producer.spanId}-01`);

    const job = defineJob({ name: 'cross.work', queue: 'otel-cross' }, async () => 'done');
    const worker = await h.worker({ jobs: [job], queues: { 'otel-cross': {} } });
    assert.equal((await h.app.waitForJob(pushed.id, { timeoutMs: 20_000 })).state, 'succeeded');
    const consumer = await span(() => consumerOf(pushed.id));
    assert.equal(consumer.name, 'process otel-cross');
    assert.equal(consumer.traceId, request.traceId, 'process B continues the trace of process A');
    assert.equal(consumer.parentSpanId, producer.spanId);
    assert.deepEqual(
      {
        system: consumer.attributes[ATTR.system],
        operation: consumer.attributes[ATTR.operationType],
        destination: consumer.attributes[ATTR.destination],
        id: consumer.attributes[ATTR.messageId],
        name: consumer.attributes[ATTR.jobName],
        attempt: consumer.attributes[ATTR.attempt],
        worker: consumer.attributes[ATTR.clientId],
        outcome: consumer.attributes[ATTR.outcome],
      },
      {
        system: 'docket',
        operation: 'process',
        destination: 'otel-cross',
        id: pushed.id,
        name: 'cross.work',
        attempt: 1,
        worker: worker.id,
        outcome: 'succeeded',
      },
    );
    assert.equal(consumer.status, SpanStatusCode.UNSET);
    await worker.stop();
  });

  test('a failing attempt records its exception and the retry; the handler’s own spans are children of the consumer span', {
    timeout: 30_000,
  }, async () => {
    let attempts = 0;
    const flaky = defineJob(
      { name: 'flaky', queue: 'otel-retry', maxAttempts: 2, retry: { backoff: 'fixed', delayMs: 10, jitter: false } },
      async (_args: unknown, ctx: JobContext) => {
        attempts++;
        await trace.getTracer('handler').startActiveSpan(`db query ${ctx.job.attempt}`, async (inner) => inner.end());
        if (ctx.job.attempt === 1) throw new RangeError('the first attempt fails');
        return 'ok';
      },
    );
    const worker = await h.worker({ jobs: [flaky], queues: { 'otel-retry': {} } });
    const ref = await trace.getTracer('test').startActiveSpan('request', async (s) => {
      try {
        return await h.app.push(flaky);
      } finally {
        s.end();
      }
    });
    assert.equal((await h.app.waitForJob(ref, { timeoutMs: 20_000 })).state, 'succeeded');
    assert.equal(attempts, 2);
    const spans = () => finished().filter((s) => s.kind === SpanKind.CONSUMER && s.attributes[ATTR.messageId] === ref.id);
    await span(() => (spans().length === 2 ? spans()[1] : undefined));
    const [first, second] = spans().sort((a, b) => Number(a.attributes[ATTR.attempt]) - Number(b.attributes[ATTR.attempt]));
    assert.equal(first!.status, SpanStatusCode.ERROR);
    assert.equal(first!.attributes[ATTR.outcome], 'retry');
    assert.equal(first!.attributes[ATTR.errorType], 'RangeError');
    assert.ok(typeof first!.attributes[ATTR.retryAt] === 'string');
    assert.deepEqual(first!.events, ['exception', 'docket.job.retry_scheduled']);
    const exception = exporter.getFinishedSpans().find((s) => s.spanContext().spanId === first!.spanId)!.events[0]!;
    assert.equal(exception.attributes?.['exception.message'], 'the first attempt fails');
    assert.equal(second!.attributes[ATTR.outcome], 'succeeded');
    assert.equal(second!.attributes[ATTR.attempt], 2);
    assert.equal(second!.traceId, first!.traceId, 'both attempts are in the trace of the push');
    assert.equal(second!.parentSpanId, first!.parentSpanId);
    for (const attempt of [first!, second!]) {
      const inner = finished().find((s) => s.name === `db query ${attempt.attributes[ATTR.attempt]}`)!;
      assert.equal(inner.parentSpanId, attempt.spanId, 'a span the handler starts is a child of its consumer span');
    }
    assert.equal(plugin.openSpans, 0, 'every consumer span ended with its outcome');
    await worker.stop();
  });

  test('subtasks and workflow steps keep their parent’s trace', { timeout: 30_000 }, async () => {
    const leaf = defineJob({ name: 'leaf', queue: 'otel-tree' }, async () => 'leaf');
    const parent = defineJob({ name: 'parent', queue: 'otel-tree' }, async (_args: unknown, ctx: JobContext) => {
      ctx.subtask!(leaf);
      return 'parent';
    });
    const stepA = defineJob({ name: 'step-a', queue: 'otel-tree' }, async () => 1);
    const stepB = defineJob({ name: 'step-b', queue: 'otel-tree' }, async (n: number) => n + 1);
    const worker = await h.worker({ jobs: [leaf, parent, stepA, stepB], queues: { 'otel-tree': {} } });
    const [ref, run] = await trace.getTracer('test').startActiveSpan('tree request', async (s) => {
      try {
        return [await h.app.push(parent), await pushWorkflow(h.app, chain(stepA, stepB))] as const;
      } finally {
        s.end();
      }
    });
    const request = finished().find((s) => s.name === 'tree request')!;
    assert.equal((await h.app.waitForJob(ref, { timeoutMs: 20_000 })).state, 'succeeded');
    assert.equal((await waitForWorkflow(h.app, run, { timeoutMs: 20_000 })).state, 'succeeded');

    const parentSpan = await span(() => consumerOf(ref.id));
    const [leafJob] = (await h.app.listJobs({ name: 'leaf' })).jobs;
    const leafSpan = await span(() => consumerOf(leafJob!.id));
    assert.equal(leafSpan.traceId, request.traceId);
    assert.equal(leafSpan.parentSpanId, parentSpan.spanId, 'a subtask runs as a child of its parent’s consumer span');

    const [a] = (await h.app.listJobs({ name: 'step-a' })).jobs;
    const [b] = (await h.app.listJobs({ name: 'step-b' })).jobs;
    const aSpan = await span(() => consumerOf(a!.id));
    const bSpan = await span(() => consumerOf(b!.id));
    assert.equal(aSpan.traceId, request.traceId);
    assert.equal(bSpan.traceId, request.traceId);
    assert.equal(bSpan.parentSpanId, aSpan.spanId, 'the next step runs as a child of the step that released it');
    await worker.stop();
  });
});
