/**
 * What cannot work behind a transaction-mode pooler fails with DOCKET_POOLER_INCOMPATIBLE, saying
 * what to configure — never quietly. Provoked without a pooler where it can be: a server that
 * answers the startup message the way PgBouncer refuses a parameter, and a LISTEN connection that
 * cannot receive the app's notifications (it is on another database, as a pooler's server
 * connection is on another session). Prepared statements need a real PgBouncer (skipped, saying
 * so, without the binary); the whole tour through one is packages/reliability/test/pgbouncer.test.ts.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { Docket, defineJob, isDocketError, PoolerIncompatibleError, Worker } from '@docket/core';
import { createTestDatabase, pgBouncerMissing, startPgBouncer } from '@docket/testing';

const hello = defineJob({ name: 'hello', queue: 'pooled' }, async () => 'hi');

/** Answers every startup message with PgBouncer's refusal of `parameter` (ErrorResponse FATAL 08P01). */
async function refusingPooler(parameter: string): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('data', () => {
      const fields = [
        ['S', 'FATAL'],
        ['C', '08P01'],
        ['M', `unsupported startup parameter: ${parameter}`],
      ];
      const body = Buffer.concat([...fields.map(([k, v]) => Buffer.from(`${k}${v}\0`)), Buffer.from([0])]);
      const head = Buffer.alloc(5);
      head.write('E');
      head.writeInt32BE(body.length + 4, 1);
      socket.end(Buffer.concat([head, body]));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

test('a pooler refusing the jit startup parameter: DOCKET_POOLER_INCOMPATIBLE naming it and ignore_startup_parameters', async () => {
  const pooler = await refusingPooler('jit');
  try {
    await using app = new Docket({ connection: `postgres://app@127.0.0.1:${pooler.port}/app`, logger: false });
    await assert.rejects(app.push(hello), (error: unknown) => {
      assert.ok(error instanceof PoolerIncompatibleError, `got ${String(error)}`);
      assert.deepEqual({ ...error.details }, { feature: 'startup-parameter', parameter: 'jit', host: '127.0.0.1', port: String(pooler.port) });
      assert.match(error.message, /refused the startup parameter `jit`/);
      assert.match(error.message, /ignore_startup_parameters = jit/);
      assert.match(error.message, /ALTER ROLE app SET jit = off/);
      assert.equal((error.cause as { code?: string }).code, '08P01');
      return true;
    });
    await assert.rejects(new Worker(app, { jobs: [hello], queues: { pooled: {} }, handleSignals: false }).start(), (error: unknown) =>
      isDocketError(error, 'DOCKET_POOLER_INCOMPATIBLE'),
    );
  } finally {
    await pooler.close();
  }
});

test('a LISTEN that never receives the app’s notifications: worker.start(), waitForJob and listen fail with DOCKET_POOLER_INCOMPATIBLE', {
  timeout: 60_000,
}, async () => {
  await using db = await createTestDatabase();
  await using elsewhere = await createTestDatabase();
  await using app = new Docket({ connection: db.url, listen: { connection: elsewhere.url }, logger: false });
  const ref = await app.push(hello);
  const incompatible = (error: unknown) => {
    assert.ok(isDocketError(error, 'DOCKET_POOLER_INCOMPATIBLE'), `got ${String(error)}`);
    assert.equal(error.details.feature, 'listen');
    assert.match(error.message, /did not reach its own LISTEN connection within 5000 ms/);
    assert.match(error.message, /listen: \{ connection: <a URL straight to PostgreSQL> \}`, or `listen: false`/);
    return true;
  };
  await assert.rejects(new Worker(app, { jobs: [hello], queues: { pooled: {} }, handleSignals: false }).start(), incompatible);
  await assert.rejects(app.waitForJob(ref, { timeoutMs: 30_000 }), incompatible);
  await assert.rejects(
    app.listen('topic', () => {}),
    incompatible,
  );
});

test('the check passes on a direct LISTEN, whichever channel the app listens to first (waitForJob: the settled channel)', {
  timeout: 60_000,
}, async () => {
  await using db = await createTestDatabase();
  await using waiter = new Docket({ connection: db.url, logger: false });
  await using runner = new Docket({ connection: db.url, logger: false });
  const worker = new Worker(runner, { jobs: [hello], queues: { pooled: {} }, handleSignals: false });
  try {
    await worker.start();
    const job = await waiter.waitForJob(await waiter.push(hello), { timeoutMs: 10_000 });
    assert.equal(job.result, 'hi');
    let delivered!: (payload: string) => void;
    const got = new Promise<string>((resolve) => (delivered = resolve));
    await waiter.listen('topic', (payload) => delivered(payload));
    await runner.notify('topic', 'delivered');
    assert.equal(await got, 'delivered');
  } finally {
    await worker.stop();
  }
});

test('prepare: true behind PgBouncer: every call is refused (feature prepared-statements), the first push included', {
  skip: pgBouncerMissing() ?? false,
  timeout: 60_000,
}, async () => {
  await using db = await createTestDatabase();
  await using bouncer = await startPgBouncer({ serverUrl: db.url, ignoreStartupParameters: ['jit'] });
  await using app = new Docket({ connection: bouncer.url(db.url), listen: false, logger: false });
  const refused = (error: unknown) => {
    assert.ok(isDocketError(error, 'DOCKET_POOLER_INCOMPATIBLE'), `got ${String(error)}`);
    assert.equal(error.details.feature, 'prepared-statements');
    assert.match(error.message, /Set `prepare: false`/);
    return true;
  };
  await assert.rejects(app.push(hello), refused);
  await assert.rejects(app.getJob('1'), refused);
  await assert.rejects(new Worker(app, { jobs: [hello], queues: { pooled: {} }, handleSignals: false }).start(), refused);
  // With prepare: false the same pooler serves the app.
  await using fixed = new Docket({ connection: bouncer.url(db.url), prepare: false, listen: false, logger: false });
  const ref = await fixed.push(hello);
  assert.equal((await fixed.getJob(ref)).state, 'pending');
});
