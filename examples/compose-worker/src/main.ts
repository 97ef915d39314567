/**
 * `DATABASE_URL=postgres://… pnpm --filter @docket/example-compose-worker start` — runs one worker
 * until Ctrl-C (graceful: running jobs finish, the lease is released). Start it in several
 * terminals against the same database: one of them leads and fires the schedules; stop or kill it
 * and another takes over.
 */
import { composeApp, composeWorker } from './app.js';

const connection = process.env.DATABASE_URL;
if (!connection) {
  console.error('Set DATABASE_URL to a PostgreSQL database, e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/app');
  process.exit(1);
}
const { app } = composeApp({ connection });
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
