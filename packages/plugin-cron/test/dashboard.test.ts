/** cron's page on the dashboard (schedules, next and last time, "Run now"), and runNow itself. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Docket, defineJob, isDocketError } from '@docket/core';
import { serveDashboard } from '@docket/dashboard';
import { createTestDatabase, type TestDatabase } from '@docket/testing';
import { type CronPlugin, cron } from '../src/index.js';

const report = defineJob({ name: 'reports.nightly', queue: 'reports' }, async (_: { kind: string }) => 'done');

let db: TestDatabase;
let app: Docket;
let schedules: CronPlugin;
before(async () => {
  db = await createTestDatabase();
  schedules = cron();
  app = new Docket({ connection: db.url, plugins: [schedules], logger: false });
  await app.migrate();
  await schedules.schedule({ name: 'nightly-report', cron: '0 3 * * *', job: report.withArgs({ kind: 'daily' }) });
});
after(async () => {
  await app.close();
  await db.drop();
});

test('runNow pushes the schedule’s job at once, marked manual, as its latest job; the schedule’s times stay', async () => {
  const [before] = await schedules.list();
  const ref = await schedules.runNow('nightly-report');
  const job = await app.getJob(ref);
  assert.equal(job.name, 'reports.nightly');
  assert.equal(job.queue, 'reports');
  assert.deepEqual(job.args, { kind: 'daily' });
  assert.equal((job.meta.cron as { manual?: boolean; schedule?: string }).manual, true);
  assert.equal((job.meta.cron as { schedule?: string }).schedule, 'nightly-report');
  assert.ok(job.scheduledAt.getTime() <= Date.now() + 1000, 'runnable now');
  const [after] = await schedules.list();
  assert.equal(after?.lastJobId, ref.id);
  assert.equal(after?.nextFireAt.getTime(), before?.nextFireAt.getTime(), 'the next time is not moved');
  await assert.rejects(schedules.runNow('no-such-schedule'), (e: unknown) => isDocketError(e, 'DOCKET_CRON_SCHEDULE_NOT_FOUND'));
  await assert.rejects(schedules.runNow('bad name!'), (e: unknown) => isDocketError(e, 'DOCKET_INVALID_OPTION'));
});

test('the Schedules page lists each schedule; its "Run now" pushes a job and opens it', async () => {
  const served = await serveDashboard(app, { port: 0 });
  const get = async (path: string, cookie = '') => {
    const res = await fetch(new URL(path.replace(/^\//, ''), served.url), { headers: { cookie }, redirect: 'manual' });
    return { res, text: await res.text() };
  };
  try {
    const { res, text } = await get('/p/schedules');
    assert.equal(res.status, 200);
    assert.match(text, /<a href="\/p\/schedules" class="active"[^>]*>Schedules<\/a>/, 'in the navigation');
    assert.match(text, /<tr data-schedule="nightly-report">/);
    assert.match(text, /<span class="mono">0 3 \* \* \*<\/span>/);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(text)?.[1] ?? '';
    const cookie = (res.headers.getSetCookie()[0] ?? '').split(';')[0] ?? '';
    const posted = await fetch(new URL('p/schedules/actions/run-now', served.url), {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: csrf, name: 'nightly-report' }),
      redirect: 'manual',
    });
    assert.equal(posted.status, 303);
    const location = posted.headers.get('location') ?? '';
    const id = /^\/jobs\/(\d+)$/.exec(location)?.[1];
    assert.ok(id, `redirected to the new job, got ${location}`);
    assert.equal((await app.getJob(id)).name, 'reports.nightly');
    const [schedule] = await schedules.list();
    assert.equal(schedule?.lastJobId, id);
  } finally {
    await served.close();
  }
});
