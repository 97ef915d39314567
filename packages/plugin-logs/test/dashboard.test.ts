/** The logs panel on a job's page: its lines, escaped; nothing for a job without lines. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Docket, defineJob, Worker } from '@docket/core';
import { serveDashboard } from '@docket/dashboard';
import { createTestDatabase, type TestDatabase } from '@docket/testing';
import { jobLogs } from '../src/index.js';

let db: TestDatabase;
let app: Docket;
let worker: Worker;
const chatty = defineJob({ name: 'logs.chatty', queue: 'logs-panel' }, async (_: unknown, ctx) => {
  ctx.log?.('starting <b>import</b>');
  ctx.log?.('row 7 is odd: "><img src=x onerror=alert(1)>', { level: 'warn' });
  ctx.log?.('done', { level: 'info' });
});
const quiet = defineJob({ name: 'logs.quiet', queue: 'logs-panel' }, async () => null);

before(async () => {
  db = await createTestDatabase();
  app = new Docket({ connection: db.url, plugins: [jobLogs()], logger: false });
  await app.migrate();
  worker = new Worker(app, { jobs: [chatty, quiet], queues: { 'logs-panel': {} } });
  await worker.start();
});
after(async () => {
  await worker.stop();
  await app.close();
  await db.drop();
});

test("a job's page shows its log lines with their levels, escaped; a job without lines shows no Logs section", async () => {
  const loud = await app.push(chatty);
  const silent = await app.push(quiet);
  await app.waitForJob(loud, { timeoutMs: 10_000 });
  await app.waitForJob(silent, { timeoutMs: 10_000 });
  const served = await serveDashboard(app, { port: 0 });
  try {
    const text = await (await fetch(new URL(`jobs/${loud.id}`, served.url))).text();
    assert.match(text, /<section class="card panel" id="panel-logs"[^>]*><h2>Logs<\/h2>/);
    assert.match(text, /starting &lt;b&gt;import&lt;\/b&gt;/);
    assert.match(text, /<tr data-level="warn">[\s\S]*row 7 is odd: &quot;&gt;&lt;img src=x onerror=alert\(1\)&gt;/);
    assert.doesNotMatch(text, /<img src=x/);
    assert.equal([...text.matchAll(/<tr data-level=/g)].length, 3);
    const none = await (await fetch(new URL(`jobs/${silent.id}`, served.url))).text();
    assert.doesNotMatch(none, /id="panel-logs"/);
  } finally {
    await served.close();
  }
});
