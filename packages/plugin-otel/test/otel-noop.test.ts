// No SDK in this process: every OpenTelemetry call is the API's no-op (each test file runs in a process of its own).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { defineJob } from '@docket/core';
import { trace } from '@opentelemetry/api';
import { canRecord } from '../src/can-record.js';
import { otel, TRACEPARENT_META_KEY } from '../src/index.js';
import { type Harness, harness } from './helpers.js';

const plugin = otel();
let h: Harness;
before(async () => (h = await harness({ plugins: [plugin] })));
after(() => h.close());

test('without an SDK nothing breaks: jobs push, run, fail and retry as without the plugin, and no context is stamped', {
  timeout: 30_000,
}, async () => {
  const ok = defineJob({ name: 'noop.ok', queue: 'otel-noop' }, async () => 'fine');
  const fails = defineJob(
    { name: 'noop.fails', queue: 'otel-noop', maxAttempts: 2, retry: { backoff: 'fixed', delayMs: 10, jitter: false } },
    async () => {
      throw new Error('always');
    },
  );
  // What makes the plugin leave untraced jobs alone here (it wraps only jobs carrying a context).
  assert.equal(canRecord(undefined), false, 'no SDK registered: the global provider cannot record');
  const spy = defineJob({ name: 'noop.spy', queue: 'otel-noop' }, async () => trace.getActiveSpan()?.spanContext().traceId ?? null);
  await h.worker({ jobs: [ok, fails, spy], queues: { 'otel-noop': {} } });
  const untraced = await h.app.waitForJob(await h.app.push(spy), { timeoutMs: 20_000 });
  assert.equal(untraced.result, null, 'an untraced job runs outside any span');

  const [a, b] = await trace.getTracer('no-sdk').startActiveSpan('request', async (span) => {
    try {
      return [await h.app.push(ok), await h.app.push(fails)];
    } finally {
      span.end();
    }
  });
  // A context written by someone else's tracer is carried and read without an SDK too.
  const carried = await h.app.push(ok.withMeta({ [TRACEPARENT_META_KEY]: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }));
  const done = await Promise.all([a!, b!, carried].map((ref) => h.app.waitForJob(ref, { timeoutMs: 20_000 })));
  assert.deepEqual(
    done.map((j) => j.state),
    ['succeeded', 'failed', 'succeeded'],
  );
  assert.equal(done[1]!.attempt, 2, 'the failing job was retried once');
  assert.equal(done[0]!.meta[TRACEPARENT_META_KEY], undefined, 'no span, no context stamped');
  assert.equal(done[2]!.meta[TRACEPARENT_META_KEY], '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
});
