/**
 * The database unreachable for a while under a running app: its connections go through a TCP
 * proxy (@docket/testing) that resets every connection, and every new one, until restored. The
 * app must come back on its own once the database is reachable again: its LISTEN too (idle
 * workers woken by the next push, `waitForJob` by the next settle — not by a poll a minute later),
 * and within seconds however long the outage lasted.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Docket, defineJob, Worker } from '@docket/core';
import { createTestDatabase, startTcpProxy } from '@docket/testing';

const echo = defineJob({ name: 'echo', queue: 'loss' }, async ({ n }: { n: number }) => n);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A migrated database, and an app that reaches it only through a proxy. */
async function behindProxy() {
  const db = await createTestDatabase();
  const url = new URL(db.url);
  const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
  const app = new Docket({ connection: proxy.url(db.url), logger: false });
  return {
    db,
    proxy,
    app,
    async close() {
      await app.close();
      await proxy.close();
      await db.drop();
    },
  };
}

/** Retries `fn` until it succeeds (the first statements after an outage may meet closed connections). */
async function untilItWorks<T>(fn: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await fn();
    } catch {
      await sleep(20);
    }
  }
}

test('after an outage the LISTEN is back: an idle worker is woken by the next push and waitForJob by the next settle', {
  timeout: 60_000,
}, async () => {
  const h = await behindProxy();
  // Polls once a minute: within the test only a notification can wake it.
  const worker = new Worker(h.app, { jobs: [echo], queues: { loss: { pollIntervalMs: 60_000 } }, handleSignals: false });
  try {
    await worker.start();
    // Both LISTENs in place (the worker's, and waitForJob's for settled jobs).
    assert.equal((await h.app.waitForJob(await h.app.push(echo.withArgs({ n: 1 })), { timeoutMs: 10_000 })).result, 1);

    h.proxy.drop();
    await sleep(1500);
    h.proxy.restore();

    const pushedAt = Date.now();
    const ref = await untilItWorks(() => h.app.push(echo.withArgs({ n: 2 })));
    const job = await h.app.waitForJob(ref, { timeoutMs: 30_000 });
    const waited = Date.now() - pushedAt;
    assert.equal(job.result, 2);
    const startedAfterMs = job.startedAt!.getTime() - job.createdAt.getTime();
    assert.ok(startedAfterMs < 10_000, `the worker started the job ${startedAfterMs} ms after its push`);
    assert.ok(waited < 15_000, `waitForJob returned ${waited} ms after the push`);
  } finally {
    await worker.stop();
    await h.close();
  }
});

test('after a long outage with statements failing all along, the pool reconnects within seconds of the database being reachable', {
  timeout: 60_000,
}, async () => {
  const h = await behindProxy();
  try {
    await h.app.migrate();
    const ref = await h.app.push(echo.withArgs({ n: 3 }));
    h.proxy.drop();
    // Callers keep trying during the outage, as a worker's loops do.
    const until = Date.now() + 8000;
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (Date.now() < until) {
          await Promise.race([h.app.getJob(ref).catch(() => undefined), sleep(500)]);
          await sleep(20);
        }
      }),
    );
    h.proxy.restore();
    const back = Date.now();
    await untilItWorks(() => h.app.getJob(ref));
    const ms = Date.now() - back;
    assert.ok(ms < 2500, `the first statement succeeded ${ms} ms after the database was reachable again`);
  } finally {
    await h.close();
  }
});
