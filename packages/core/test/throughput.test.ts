import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DocketError, defineJob } from '@docket/core';
import { type Harness, harness } from './helpers.js';

let h: Harness;
before(async () => (h = await harness()));
after(() => h.close());

const job = defineJob({ name: 'tp.job', queue: 'tp-a' }, async () => null);

/** Pushes a job and leaves it as finished at `finishedAt` in `state`. */
async function finished(queue: string, state: 'succeeded' | 'failed' | 'cancelled', finishedAt: Date): Promise<string> {
  const ref = await h.app.push(job.withQueue(queue));
  await h.db.sql`UPDATE docket.jobs SET state = ${state}, attempt = 1, finished_at = ${finishedAt} WHERE id = ${ref.id}`;
  return ref.id;
}

test('jobThroughput counts finished jobs per queue and bucket by final state, inside the window only', async () => {
  const base = Date.UTC(2030, 0, 1, 12, 0, 0);
  const at = (minute: number, second = 0) => new Date(base + minute * 60_000 + second * 1000);
  await finished('tp-a', 'succeeded', at(0, 5));
  await finished('tp-a', 'succeeded', at(0, 59));
  await finished('tp-a', 'failed', at(0, 30));
  await finished('tp-b', 'cancelled', at(0, 1));
  await finished('tp-a', 'succeeded', at(2));
  await finished('tp-a', 'succeeded', at(-1)); // before the window
  await finished('tp-a', 'succeeded', at(10)); // at `until`: excluded
  await h.app.push(job.withQueue('tp-a')); // pending: not finished

  const t = await h.app.jobThroughput({ since: at(0), until: at(10) });
  assert.equal(t.bucketMs, 60_000);
  assert.equal(t.since.getTime(), at(0).getTime());
  assert.equal(t.until.getTime(), at(10).getTime());
  assert.deepEqual(
    t.buckets.map((b) => [b.start.getTime() - base, b.queue, b.succeeded, b.failed, b.cancelled]),
    [
      [0, 'tp-a', 2, 1, 0],
      [0, 'tp-b', 0, 0, 1],
      [120_000, 'tp-a', 1, 0, 0],
    ],
  );

  const onlyB = await h.app.jobThroughput({ since: at(0), until: at(10), queue: 'tp-b', bucketMs: 300_000 });
  assert.deepEqual(
    onlyB.buckets.map((b) => [b.start.getTime() - base, b.queue, b.cancelled]),
    [[0, 'tp-b', 1]],
  );
});

test('by default the window is the last hour on the database clock, returned even when nothing finished in it', async () => {
  const [{ now }] = await h.db.sql<{ now: Date }[]>`SELECT now()`;
  const id = await finished('tp-recent', 'succeeded', new Date(now.getTime() - 5 * 60_000));
  const t = await h.app.jobThroughput({ queue: 'tp-recent' });
  assert.ok(Math.abs(t.until.getTime() - t.since.getTime() - 3_600_000) < 5, 'an hour');
  assert.ok(Math.abs(t.until.getTime() - Date.now()) < 60_000, 'ending now');
  assert.equal(
    t.buckets.reduce((n, b) => n + b.succeeded, 0),
    1,
    `job ${id} is counted`,
  );
  const empty = await h.app.jobThroughput({ queue: 'tp-none' });
  assert.deepEqual(empty.buckets, []);
  assert.ok(empty.since < empty.until);
});

test('jobThroughput validates its options', async () => {
  const invalid = (e: unknown) => e instanceof DocketError && e.code === 'DOCKET_INVALID_OPTION';
  await assert.rejects(h.app.jobThroughput({ bucketMs: 10 }), invalid);
  await assert.rejects(h.app.jobThroughput({ since: new Date('2030-01-02'), until: new Date('2030-01-01') }), invalid);
  await assert.rejects(h.app.jobThroughput({ since: new Date('2020-01-01'), until: new Date('2030-01-01') }), invalid, 'too many buckets');
  await assert.rejects(h.app.jobThroughput({ since: 'yesterday' as never }), invalid);
  await assert.rejects(h.app.jobThroughput({ intervalMs: 1000 } as never), invalid);
  await assert.rejects(
    h.app.jobThroughput({ queue: 'bad queue!' }),
    (e: unknown) => e instanceof DocketError && e.code === 'DOCKET_INVALID_QUEUE_NAME',
  );
});
