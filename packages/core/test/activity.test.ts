import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Docket, DocketError, defineJob, type JobActivity } from '@docket/core';
import { type Harness, harness } from './helpers.js';

let h: Harness;
before(async () => (h = await harness()));
after(() => h.close());

/** The next activity `fn` accepts, from a listener started before `act` runs. */
async function nextActivity<K extends JobActivity['kind']>(
  app: Docket,
  kind: K,
  accept: (a: Extract<JobActivity, { kind: K }>) => boolean,
  act: () => Promise<unknown>,
): Promise<Extract<JobActivity, { kind: K }>> {
  let off = () => {};
  const seen = new Promise<Extract<JobActivity, { kind: K }>>((resolve) => {
    void app
      .listenActivity((a) => {
        if (a.kind === kind && accept(a as Extract<JobActivity, { kind: K }>)) resolve(a as Extract<JobActivity, { kind: K }>);
      })
      .then(async (stop) => {
        off = stop;
        await act();
      });
  });
  try {
    return await seen;
  } finally {
    off();
  }
}

test('listenActivity announces pushes, scheduled pushes, settled jobs, pauses and resumes, from the statements that did them', async () => {
  const job = defineJob({ name: 'activity.job', queue: 'activity-a' }, async () => 'done');
  const pushed = await nextActivity(
    h.app,
    'pushed',
    (a) => a.queues.includes('activity-a'),
    () => h.app.push(job),
  );
  assert.deepEqual(pushed.queues, ['activity-a']);

  const scheduled = await nextActivity(
    h.app,
    'scheduled',
    (a) => a.queues.includes('activity-b'),
    () => h.app.push(job.withQueue('activity-b').withDelay(60_000)),
  );
  assert.deepEqual(scheduled.queues, ['activity-b'], 'the run time is not part of the queue name');

  let ref: { id: string } | undefined;
  const settled = await nextActivity(
    h.app,
    'settled',
    (a) => ref !== undefined && a.ids.includes(ref.id),
    async () => {
      ref = await h.app.push(job.withQueue('activity-c'));
      await h.worker({ jobs: [job], queues: { 'activity-c': {} } });
    },
  );
  assert.ok(ref && settled.ids.includes(ref.id));

  const paused = await nextActivity(
    h.app,
    'paused',
    (a) => a.queues.includes('activity-d'),
    () => h.app.pauseQueue('activity-d'),
  );
  assert.deepEqual(paused.queues, ['activity-d']);
  const resumed = await nextActivity(
    h.app,
    'pushed',
    (a) => a.queues.includes('activity-d'),
    () => h.app.resumeQueue('activity-d'),
  );
  assert.deepEqual(resumed.queues, ['activity-d'], 'a resume says runnable jobs may be there');
});

test('a stopped listener hears nothing more', async () => {
  const heard: JobActivity[] = [];
  const off = await h.app.listenActivity((a) => heard.push(a));
  off();
  const job = defineJob({ name: 'activity.quiet', queue: 'activity-quiet' }, async () => null);
  // A second listener proves the notification went out (and was delivered) while the first was off.
  await nextActivity(
    h.app,
    'pushed',
    (a) => a.queues.includes('activity-quiet'),
    () => h.app.push(job),
  );
  assert.deepEqual(heard, []);
});

test('listenActivity refuses an app that does not listen, and a listener that is not a function', async () => {
  const quiet = new Docket({ connection: h.db.url, listen: false, logger: false });
  try {
    await assert.rejects(
      quiet.listenActivity(() => {}),
      (e: unknown) => e instanceof DocketError && e.code === 'DOCKET_INVALID_OPTION',
    );
  } finally {
    await quiet.close();
  }
  await assert.rejects(h.app.listenActivity('nope' as never), (e: unknown) => e instanceof DocketError && e.code === 'DOCKET_INVALID_OPTION');
});
