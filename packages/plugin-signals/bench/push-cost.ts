// Push cost of the enqueued signal: N sequential single pushes and one pushMany, with and without the plugin.
// Run: node --import tsx packages/plugin-signals/bench/push-cost.ts  (DATABASE_URL or an embedded server)

import { Docket, defineJob } from '@docket/core';
import { signals } from '@docket/plugin-signals';
import { createTestDatabase } from '@docket/testing';

const job = defineJob({ name: 'b', queue: 'b' }, async (_: { n: number }) => 1);
const db = await createTestDatabase({ template: false });
const plain = new Docket({ connection: db.url, logger: false });
await plain.migrate();
const s = signals();
const withSignals = new Docket({ connection: db.url, logger: false, plugins: [s] });
let heard = 0;
await s.on('enqueued', () => void heard++);
async function time(label: string, fn: () => Promise<unknown>) {
  const t = performance.now();
  await fn();
  const ms = performance.now() - t;
  console.log(label.padEnd(40), ms.toFixed(0).padStart(6), 'ms');
  return ms;
}
const N = 2000;
for (let round = 0; round < 3; round++) {
  await time(`plain: ${N} single pushes`, async () => {
    for (let i = 0; i < N; i++) await plain.push(job.withArgs({ n: i }));
  });
  await time(`signals: ${N} single pushes`, async () => {
    for (let i = 0; i < N; i++) await withSignals.push(job.withArgs({ n: i }));
  });
  await time('plain: pushMany 10,000', () => plain.pushMany(Array.from({ length: 10000 }, (_, n) => job.withArgs({ n }))));
  await time('signals: pushMany 10,000', () => withSignals.pushMany(Array.from({ length: 10000 }, (_, n) => job.withArgs({ n }))));
}
const expected = 3 * (N + 10000);
const t = performance.now();
while (heard < expected && performance.now() - t < 10000) await new Promise((r) => setTimeout(r, 10));
console.log('enqueued signals heard', heard, 'of', expected);
await plain.close();
await withSignals.close();
await db.drop();
