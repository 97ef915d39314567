/**
 * A job's page shows its last `ctx.progress` report (bar, percentage, attempt, time, data, escaped),
 * as `getJob` returns it; a job that never reported shows none.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { defineJob } from '@docket/core';
import { deferred } from '@docket/testing';
import type { ServedDashboard } from '../src/index.js';
import { Client, type Harness, harness, serve } from './helpers.js';

let h: Harness;
let dashboard: ServedDashboard;
let client: Client;
const reported = deferred();
const finish = deferred();

before(async () => {
  h = await harness();
  dashboard = await serve(h.app);
  client = new Client(dashboard.url);
});
after(async () => {
  finish.resolve();
  await dashboard.close();
  await h.close();
});

test('a running job’s page shows its progress; a quiet job’s shows none', async () => {
  const importing = defineJob({ name: 'ui.import', queue: 'ui-progress' }, async (_: void, ctx) => {
    ctx.progress(42.25, { rows: 7, note: '<script>alert(1)</script>' });
    reported.resolve();
    await finish.promise;
  });
  const quiet = defineJob({ name: 'ui.quiet', queue: 'ui-progress' }, async () => 'done');
  await h.worker({ jobs: [importing, quiet], queues: { 'ui-progress': { concurrency: 2 } }, progressIntervalMs: 10 });
  const ref = await h.app.push(importing);
  await reported.promise;
  // The first report of an attempt is stored at once; wait for it through the listener.
  const stored = deferred();
  const stop = await h.app.onProgress(ref, () => stored.resolve());
  await stored.promise;
  stop();
  const page = (await client.page(`/jobs/${ref.id}`)).text;
  assert.match(page, /<progress max="100" value="42.25">42.3%<\/progress> 42.3%/);
  assert.match(page, /attempt 1 · /);
  assert.match(page, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/, 'data escaped');
  assert.doesNotMatch(page, /<script>alert/);
  const done = await h.app.waitForJob(await h.app.push(quiet), { timeoutMs: 10_000 });
  assert.doesNotMatch((await client.page(`/jobs/${done.id}`)).text, /<progress/);
});
