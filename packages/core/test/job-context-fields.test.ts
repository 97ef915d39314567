import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Docket, DocketError, type DocketPlugin, defineJob, type JobContext } from '@docket/core';
import { type Harness, harness } from './helpers.js';

declare module '@docket/core' {
  interface JobContextExtensions {
    counter: { job: string; reads: number };
    stamp: string;
  }
}

describe('app.defineJobContextField', () => {
  const made: string[] = [];
  const fields: DocketPlugin = {
    name: 'fields-test',
    apply(app) {
      app.defineJobContextField('counter', (ctx) => {
        made.push(ctx.job.id);
        return { job: ctx.job.id, reads: 0 };
      });
      app.defineJobContextField('stamp', () => 'lazy');
      // A jobContext tap may still set a declared field eagerly: the assignment wins over init.
      app.hooks.jobContext.tap('fields-test', (ctx) => {
        if (ctx.job.meta.eager) ctx.stamp = 'eager';
      });
    },
  };

  let h: Harness;
  before(async () => {
    h = await harness({ plugins: [fields] });
  });
  after(() => h.close());

  test('a field is made on its first read in an attempt, once, and never for a handler that does not read it', async () => {
    const reads = defineJob({ name: 'reads', queue: 'ctx-fields' }, async (_: void, ctx) => {
      ctx.counter!.reads++;
      ctx.counter!.reads++;
      return { counter: ctx.counter, stamp: ctx.stamp, keys: Object.keys(ctx).sort() };
    });
    const ignores = defineJob({ name: 'ignores', queue: 'ctx-fields' }, async (_: void, ctx: JobContext) => Object.keys(ctx).sort());
    const eager = defineJob({ name: 'eager', queue: 'ctx-fields', meta: { eager: true } }, async (_: void, ctx) => ctx.stamp);
    await h.worker({ jobs: [reads, ignores, eager], queues: { 'ctx-fields': {} } });

    const [r, i, e] = await Promise.all([h.app.push(reads), h.app.push(ignores), h.app.push(eager)]);
    const [read, ignored, eagerDone] = await Promise.all([r, i, e].map((ref) => h.app.waitForJob(ref, { timeoutMs: 10_000 })));

    assert.equal(read!.state, 'succeeded');
    const result = read!.result as unknown as { counter: { job: string; reads: number }; stamp: string; keys: string[] };
    assert.deepEqual(result.counter, { job: r.id, reads: 2 }, 'both reads saw the one value made for the attempt');
    assert.equal(result.stamp, 'lazy');
    assert.deepEqual(made, [r.id], 'init ran once, for the one attempt that read the field');
    // A field read becomes the context's own (enumerable) property; one never read is not there.
    assert.ok(result.keys.includes('counter') && result.keys.includes('stamp'));
    assert.ok(!(ignored!.result as unknown as string[]).includes('counter'), 'a handler that never reads the field does not have it made');
    assert.equal(eagerDone!.result, 'eager');
  });

  test('names are checked: identifiers only, not a core field, not twice, only from apply', () => {
    const url = 'postgres://nobody@127.0.0.1:1/none';
    const code = (c: string) => (e: unknown) => e instanceof DocketError && e.code === c;
    const defining = (name: string, twice = false): DocketPlugin => ({
      name: `define-${name || 'empty'}`,
      apply(app) {
        app.defineJobContextField(name as 'stamp', () => 'x');
        if (twice) app.defineJobContextField(name as 'stamp', () => 'y');
      },
    });
    for (const name of ['signal', 'job', 'sql', 'progress', '', 'not a name']) {
      assert.throws(() => new Docket({ connection: url, plugins: [defining(name)] }), code('DOCKET_PLUGIN_INVALID'), name);
    }
    assert.throws(() => new Docket({ connection: url, plugins: [defining('stamp', true)] }), /defined twice/);
    const app = new Docket({ connection: url, logger: false });
    assert.throws(() => app.defineJobContextField('stamp', () => 'x'), /only be called from a plugin/);
  });
});
