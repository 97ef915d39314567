/**
 * A believable history for the browser tests and screenshots: several queues, every state, failures
 * with stacks, and an hour of finished jobs (their finish times spread over it, as a day of work leaves them).
 */
import { defineJob, type Pushable } from '@docket/core';
import type { Harness } from './helpers.js';

export const sendEmail = defineJob({ name: 'emails.send', queue: 'emails' }, async (_args: { to: string; template: string }) => ({
  messageId: 'msg-1',
}));
export const renderReport = defineJob({ name: 'reports.render', queue: 'reports' }, async (_args: { report: string; month: string }) => ({
  pages: 12,
}));
export const deliverWebhook = defineJob({ name: 'webhooks.deliver', queue: 'webhooks' }, async (_args: { url: string; event: string }) => ({
  status: 200,
}));
export const resizeImage = defineJob({ name: 'images.resize', queue: 'images' }, async (_args: { key: string; width: number }) => ({ bytes: 48213 }));

const STACK = `Error: connect ECONNREFUSED 10.0.4.17:443
    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1607:16)
    at deliver (/srv/app/src/jobs/webhooks.ts:41:11)
    at async Object.handler (/srv/app/src/jobs/webhooks.ts:18:5)
    at async AsyncExecutor.run (/srv/app/node_modules/@docket/core/dist/executors/async.js:31:22)`;

/** Pushes the history; returns the ids of one failed webhook job and one failed report. */
export async function seedHistory(h: Harness, finishedPerQueue = 150): Promise<{ failedWebhook: string; failedReport: string }> {
  const sql = h.db.sql;
  // Pushed interleaved, as a day of traffic leaves them: the newest page of the list shows every queue.
  const emails: Array<{ id: string }> = [];
  const reports: Array<{ id: string }> = [];
  const hooks: Array<{ id: string }> = [];
  const images: Array<{ id: string }> = [];
  for (let i = 0; i < finishedPerQueue; i++) {
    const round: Array<[Array<{ id: string }>, Pushable]> = [
      [emails, sendEmail.withArgs({ to: `user${i}@example.com`, template: i % 3 ? 'welcome' : 'receipt' })],
    ];
    if (i % 3 === 0) round.push([reports, renderReport.withArgs({ report: 'revenue', month: `2026-${String((i % 12) + 1).padStart(2, '0')}` })]);
    if (i % 3 !== 2) round.push([hooks, deliverWebhook.withArgs({ url: `https://hooks.example.com/${i}`, event: 'order.paid' })]);
    if (i % 2 === 0) round.push([images, resizeImage.withArgs({ key: `uploads/${i}.jpg`, width: 640 })]);
    const refs = await h.app.pushMany(round.map(([, job]) => job));
    refs.forEach((ref, k) => {
      round[k]?.[0].push(ref);
    });
  }
  const finish = async (ids: string[], state: string, error: { name: string; message: string; stack: string } | null = null) => {
    if (ids.length === 0) return;
    // Finish times spread over the last hour, a little denser lately; each job ran for 0.1–1.5 s, a few seconds after it was pushed.
    await sql`UPDATE docket.jobs SET state = ${state}, attempt = 1, created_at = f - d - interval '3 s', scheduled_at = f - d - interval '3 s',
                started_at = f - d, finished_at = f,
                errors = CASE WHEN ${error === null} THEN '[]'::jsonb ELSE jsonb_build_array(jsonb_build_object(
                  'attempt', 1, 'name', ${error?.name ?? ''}::text, 'message', ${error?.message ?? ''}::text, 'stack', ${error?.stack ?? ''}::text,
                  'at', to_jsonb(f), 'startedAt', to_jsonb(f - d))) END,
                result = CASE WHEN ${state} = 'succeeded' THEN '{"ok": true}'::jsonb END
              FROM (SELECT id AS jid, now() - (power(random(), 1.4) * interval '58 minutes') AS f, (0.1 + random() * 1.4) * interval '1 s' AS d
                    FROM docket.jobs WHERE id = ANY(${ids}::bigint[])) t
              WHERE id = t.jid`;
  };
  const failure = (message: string, stack: string) => ({ name: stack.slice(0, stack.indexOf(':')), message, stack });
  const ids = (refs: Array<{ id: string }>) => refs.map((r) => r.id);
  // States spread through each queue (as a day of traffic leaves them), not in blocks.
  const where = (refs: Array<{ id: string }>, keep: (i: number) => boolean) => ids(refs).filter((_, i) => keep(i));
  const reportFailure = failure(
    "Cannot read properties of undefined (reading 'total')",
    `TypeError: Cannot read properties of undefined (reading 'total')\n    at renderTotals (/srv/app/src/reports/render.ts:88:23)\n    at async Object.handler (/srv/app/src/jobs/reports.ts:12:3)`,
  );
  await finish(
    where(emails, (i) => i % 15 !== 7 && i % 70 !== 3),
    'succeeded',
  );
  await finish(
    where(emails, (i) => i % 70 === 3),
    'cancelled',
  );
  await finish(
    where(reports, (i) => i % 25 !== 11 && i % 25 !== 4),
    'succeeded',
  );
  await finish(
    where(reports, (i) => i % 25 === 11),
    'failed',
    reportFailure,
  );
  await finish(
    where(hooks, (i) => i % 12 !== 5 && i % 17 !== 9),
    'succeeded',
  );
  await finish(
    where(hooks, (i) => i % 12 === 5 && i % 17 !== 9),
    'failed',
    failure('connect ECONNREFUSED 10.0.4.17:443', STACK),
  );
  await finish(
    where(images, (i) => i % 12 !== 1),
    'succeeded',
  );
  // The rest stays pending (a backlog), some scheduled later.
  await sql`UPDATE docket.jobs SET scheduled_at = now() + interval '25 minutes' WHERE id = ANY(${where(images, (i) => i % 12 === 1).slice(-3)}::bigint[])`;
  await sql`ANALYZE docket.jobs`;
  return {
    failedWebhook: where(hooks, (i) => i % 12 === 5 && i % 17 !== 9).at(-1) as string,
    failedReport: where(reports, (i) => i % 25 === 11).at(-1) as string,
  };
}
