/**
 * `pnpm --filter @docket/example-compose-worker start` — runs one worker until Ctrl-C. Start it in
 * several terminals against the same DATABASE_URL: one of them leads and fires the schedules; stop
 * or kill it and another takes over.
 *
 * Without DATABASE_URL, an embedded PostgreSQL is started for this one process (via @docket/testing).
 */
import { createTestDatabase } from '@docket/testing';
import { composeApp, composeWorker } from './app.js';

const db = process.env.DATABASE_URL ? null : await createTestDatabase({ template: false });
const { app } = composeApp({ connection: process.env.DATABASE_URL ?? db!.url });
await app.migrate(); // the core's, the lease's and cron's tables; writes the declared schedules

app.hooks.event.tapPromise('example', async (event) => {
  if (event.type.startsWith('leadership.')) console.log(event.type, JSON.stringify(event.payload));
  if (event.type === 'cron.fired') {
    const { schedule, fireAt } = event.payload as { schedule: string; fireAt: Date };
    console.log(`fired ${schedule} for ${fireAt.toISOString()}`);
  }
});

const worker = composeWorker(app);
await worker.start();
console.log(`worker ${worker.id} started; Ctrl-C to stop`);
await worker.stopped;
await app.close();
await db?.drop();
