/**
 * The errors a new user meets first, said as what to do: a schema not migrated yet, and every way
 * a connection can fail — each provoked for real (a closed port, a server that accepts and says
 * nothing, a database that does not exist, a server that refuses the password, a malformed URL).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { inspect } from 'node:util';
import { ConnectionFailedError, Docket, type DocketError, defineJob, isDocketError, Worker } from '@docket/core';
import { createTestDatabase, type TestDatabase } from '@docket/testing';
import postgres from 'postgres';

const hello = defineJob({ name: 'hello', queue: 'default' }, async () => 'hi');
const PASSWORD = 's3cret-pw';

/** A server on 127.0.0.1 that answers each connection with `onConnection`; closed after the test. */
async function server(onConnection: (socket: net.Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const s = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    onConnection(socket);
  });
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  return {
    port: (s.address() as net.AddressInfo).port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => s.close(resolve));
    },
  };
}

async function closedPort(): Promise<number> {
  const s = await server(() => {});
  await s.close();
  return s.port;
}

function connectionFailed(reason: string, pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof ConnectionFailedError, `expected DOCKET_CONNECTION_FAILED, got ${inspect(error)}`);
    assert.equal(error.code, 'DOCKET_CONNECTION_FAILED');
    assert.equal(error.details.reason, reason);
    assert.match(error.message, pattern);
    assert.ok(error.cause !== undefined, 'the driver error is kept as cause');
    assert.ok(!inspect(error, { depth: 10 }).includes(PASSWORD), 'the password is never printed');
    return true;
  };
}

let unmigrated: TestDatabase;
before(async () => {
  unmigrated = await createTestDatabase({ template: false });
});
after(() => unmigrated.drop());

test('push, getJob and worker.start before migrate say to run app.migrate() (DOCKET_MIGRATIONS_PENDING, the driver error as cause)', async () => {
  await using app = new Docket({ connection: unmigrated.url, logger: false });
  const pending = (error: unknown) =>
    isDocketError(error, 'DOCKET_MIGRATIONS_PENDING') &&
    /Run `await app\.migrate\(\)`/.test(error.message) &&
    (error.cause === undefined || ['42P01', '3F000'].includes((error.cause as { code?: string }).code!));
  await assert.rejects(app.push(hello), (e: unknown) => pending(e) && (e as DocketError).cause !== undefined);
  await assert.rejects(app.pushMany([hello, hello]), pending);
  await assert.rejects(app.getJob('1'), pending);
  await assert.rejects(app.listJobs(), pending);
  await assert.rejects(new Worker(app, { jobs: [hello], queues: { default: {} }, handleSignals: false }).start(), pending);
  await app.migrate();
  assert.equal((await app.push(hello)).name, 'hello', 'after migrate the same app works');
});

test('a refused port: DOCKET_CONNECTION_FAILED naming host:port, reason refused', async () => {
  const port = await closedPort();
  await using app = new Docket({ connection: `postgres://app:${PASSWORD}@127.0.0.1:${port}/app`, logger: false });
  await assert.rejects(
    app.push(hello),
    connectionFailed(
      'refused',
      new RegExp(
        `the server at 127\\.0\\.0\\.1:${port} refused the connection\\. Is PostgreSQL running there\\? Check the host and port in DATABASE_URL`,
      ),
    ),
  );
  await assert.rejects(app.migrate(), connectionFailed('refused', /refused/));
});

test('an address that accepts TCP but never answers: fails within connectTimeoutMs, reason timeout (also worker.start)', {
  timeout: 30_000,
}, async () => {
  const silent = await server(() => {});
  try {
    await using app = new Docket({ connection: `postgres://app:${PASSWORD}@127.0.0.1:${silent.port}/app`, logger: false, connectTimeoutMs: 300 });
    const started = Date.now();
    await assert.rejects(
      app.push(hello),
      connectionFailed('timeout', new RegExp(`no PostgreSQL answer from 127\\.0\\.0\\.1:${silent.port} within 300 ms \\(connectTimeoutMs\\)`)),
    );
    assert.ok(Date.now() - started < 10_000, 'failed in about connectTimeoutMs, not after minutes');
    await assert.rejects(
      new Worker(app, { jobs: [hello], queues: { default: {} }, handleSignals: false }).start(),
      connectionFailed('timeout', /connectTimeoutMs/),
    );
  } finally {
    await silent.close();
  }
});

test('the default connect timeout fails in seconds, not minutes', { timeout: 30_000 }, async () => {
  const silent = await server(() => {});
  try {
    await using app = new Docket({ connection: `postgres://app@127.0.0.1:${silent.port}/app`, logger: false });
    await assert.rejects(app.getJob('1'), connectionFailed('timeout', /within 10000 ms/));
  } finally {
    await silent.close();
  }
});

test('a database that does not exist on the real server: reason database-missing, naming it and the fix', async () => {
  const url = new URL(unmigrated.url);
  url.pathname = '/docket_no_such_database_rt12';
  await using app = new Docket({ connection: url.toString(), logger: false });
  await assert.rejects(
    app.push(hello),
    connectionFailed(
      'database-missing',
      /database "docket_no_such_database_rt12" does not exist on .*\. Create it \(`createdb docket_no_such_database_rt12`\)/,
    ),
  );
});

test('a wrong password: reason authentication, naming the user, never the password', async (t) => {
  // The test server trusts 127.0.0.1 (any password is accepted), so a wrong password cannot be
  // provoked there. This server answers the startup message the way PostgreSQL answers a wrong
  // password (ErrorResponse FATAL 28P01), so the driver raises what it raises against a real one.
  t.diagnostic('the test PostgreSQL uses trust auth: the 28P01 answer comes from a socket speaking the protocol');
  const refusing = await server((socket) =>
    socket.once('data', () => {
      const fields = [
        ['S', 'FATAL'],
        ['V', 'FATAL'],
        ['C', '28P01'],
        ['M', 'password authentication failed for user "app"'],
      ];
      const body = Buffer.concat([...fields.map(([k, v]) => Buffer.from(`${k}${v}\0`)), Buffer.from([0])]);
      const head = Buffer.alloc(5);
      head.write('E');
      head.writeInt32BE(body.length + 4, 1);
      socket.end(Buffer.concat([head, body]));
    }),
  );
  try {
    await using app = new Docket({ connection: `postgres://app:${PASSWORD}@127.0.0.1:${refusing.port}/app`, logger: false });
    await assert.rejects(
      app.push(hello),
      connectionFailed(
        'authentication',
        /password authentication failed for user "app" at 127\.0\.0\.1:\d+\. Check the user and password in DATABASE_URL/,
      ),
    );
  } finally {
    await refusing.close();
  }
});

test('a malformed URL is refused by new Docket: reason invalid-url, without echoing the URL (or its password)', () => {
  assert.throws(
    () => new Docket({ connection: `postgres://app:${PASSWORD}@db.example:notaport/app`, logger: false }),
    connectionFailed('invalid-url', /`connection` is not a valid PostgreSQL URL .* Check DATABASE_URL/),
  );
  assert.throws(
    () => new Docket({ connection: 'postgres://app@127.0.0.1/app', listen: { connection: `postgres://app:${PASSWORD}@[nope/app` }, logger: false }),
    connectionFailed('invalid-url', /not a valid PostgreSQL URL/),
  );
});

test('an unknown host: reason host-not-found', { timeout: 30_000 }, async () => {
  await using app = new Docket({ connection: 'postgres://app@docket-no-such-host.invalid:5432/app', logger: false, connectTimeoutMs: 5000 });
  await assert.rejects(
    app.push(hello),
    (e: unknown) =>
      e instanceof ConnectionFailedError &&
      ['host-not-found', 'unreachable', 'timeout'].includes(String(e.details.reason)) &&
      /docket-no-such-host\.invalid/.test(e.message),
  );
});

test('connectTimeoutMs and statementTimeoutMs are validated, and refused for a pool you pass in', async () => {
  const url = unmigrated.url;
  assert.throws(() => new Docket({ connection: url, connectTimeoutMs: 5 }), /`connectTimeoutMs` must be an integer between 100 and 600000/);
  assert.throws(() => new Docket({ connection: url, statementTimeoutMs: -1 }), /`statementTimeoutMs` must be an integer/);
  assert.throws(() => new Docket({ connection: url, connectTimeout: 5 } as never), /did you mean `connectTimeoutMs`\?/);
  const pool = postgres(url);
  try {
    assert.throws(() => new Docket({ connection: pool, connectTimeoutMs: 1000 }), /Set `connect_timeout` \(seconds\) on your pool instead/);
    assert.throws(() => new Docket({ connection: pool, statementTimeoutMs: 1000 }), /Set `connection: \{ statement_timeout \}` on your pool instead/);
  } finally {
    await pool.end();
  }
});

test('statementTimeoutMs cuts a long statement on the pool, but not a migration that waits for another one', { timeout: 30_000 }, async () => {
  const db = await createTestDatabase({ template: false });
  const holder = postgres(db.url, { max: 1 });
  try {
    await using app = new Docket({ connection: db.url, logger: false, statementTimeoutMs: 100 });
    await assert.rejects(app.sql`SELECT pg_sleep(1)`, (e: unknown) => (e as { code?: string }).code === '57014');
    // Another process migrating: holds the migration lock for longer than the statement timeout.
    let held!: () => void;
    const lockHeld = new Promise<void>((resolve) => (held = resolve));
    const locked = holder.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(hashtext(${'docket.migrate:"docket"'}))`;
      held();
      await tx`SELECT pg_sleep(0.5)`;
    });
    await lockHeld;
    const applied = await app.migrate();
    await locked;
    assert.ok(applied.length > 0, 'the migration waited past statementTimeoutMs and ran');
  } finally {
    await holder.end();
    await db.drop();
  }
});
