/**
 * The payload codec hooks with toy codecs (each wraps a value in an object named after it):
 * untapped is a no-op, two codecs compose through stages, null is never handed to a codec, every
 * way in and out of the database goes through it (push, claim, completion, a held result and its
 * release, reads), and a codec's errors surface as the hook contract says.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Docket, type DocketPlugin, defineJob, HOOK_STAGE, InvalidOptionError, type Outcome, PluginFailedError, Worker } from '@docket/core';
import { createTestDatabase, deferred, type TestDatabase } from '@docket/testing';

/** Wraps every value in `{ [name]: value }`; `seen` records what the codec was handed. */
function wrapping(name: string, stage: number) {
  const seen: unknown[] = [];
  let failWith: Error | null = null;
  const unwrap = (v: unknown) => {
    if (failWith) throw failWith;
    if (v === null || typeof v !== 'object' || !(name in v)) throw new Error(`${name}: not wrapped: ${JSON.stringify(v)}`);
    return (v as Record<string, unknown>)[name];
  };
  const plugin: DocketPlugin = {
    name,
    apply(app) {
      const encode = async (values: unknown[]) => {
        seen.push(...values);
        return values.map((v) => ({ [name]: v }));
      };
      const decode = async (values: unknown[]) => {
        seen.push(...values);
        return values.map(unwrap);
      };
      app.hooks.encodeArgs.tapPromise({ name, stage }, encode);
      app.hooks.encodeResults.tapPromise({ name, stage }, encode);
      app.hooks.decodeArgs.tapPromise({ name, stage: -stage }, decode);
      app.hooks.decodeResults.tapPromise({ name, stage: -stage }, decode);
    },
  };
  return { plugin, seen, fail: (error: Error | null) => (failWith = error) };
}

const echo = defineJob({ name: 'codec.echo', queue: 'codec' }, (args: { v: string } | null) => ({ got: args }));
const hold = defineJob({ name: 'codec.hold', queue: 'codec' }, ({ v }: { v: string }) => ({ held: v }));
const release = defineJob({ name: 'codec.release', queue: 'codec' }, (_: { id: string }) => null);

let db: TestDatabase;
let app: Docket;
let worker: Worker;
const inner = wrapping('inner', HOOK_STAGE.DEFAULT);
const outer = wrapping('outer', HOOK_STAGE.LATE);
const nowWaiting = deferred();
/** Outcomes the settle tap observed for released jobs. */
const observed: Outcome[] = [];

/** Holds 'codec.hold' jobs `waiting`; a 'codec.release' job releases the one its args name, with a new result. */
const holder: DocketPlugin = {
  name: 'holder',
  apply(app) {
    app.hooks.settle.tapPromise('holder', async (settlements, ctx) => {
      for (const s of settlements) {
        if (s.ctx && s.job.name === 'codec.hold' && s.outcome.state === 'succeeded') {
          s.outcome = { state: 'waiting', result: s.outcome.result };
          ctx.afterCommit(() => nowWaiting.resolve());
        }
        if (s.ctx && s.job.name === 'codec.release' && s.outcome.state === 'succeeded') {
          await ctx.app.releaseWaitingJobs(ctx, [{ id: (s.job.args as { id: string }).id, state: 'succeeded', result: { released: 'yes' } }]);
        }
        if (!s.ctx && s.job.name === 'codec.hold') observed.push(s.outcome);
      }
      return settlements;
    });
  },
};

before(async () => {
  db = await createTestDatabase();
  app = new Docket({ connection: db.url, logger: false, plugins: [outer.plugin, inner.plugin, holder] });
  await app.migrate();
  worker = new Worker(app, { jobs: [echo, hold, release], queues: { codec: { pollIntervalMs: 50 } } });
  await worker.start();
});

after(async () => {
  await worker?.stop({ timeoutMs: 5000 });
  await app?.close();
  await db?.drop();
});

const raw = async (id: string) => (await app.sql.unsafe(`SELECT args, result FROM docket.jobs WHERE id = $1`, [id]))[0]!;

test('without a codec plugin app.codec is inactive and hands values back as they are', async () => {
  await using plain = new Docket({ connection: db.url, logger: false });
  assert.equal(plain.codec.active, false);
  assert.deepEqual(await plain.codec.encodeArgs([{ a: 1 }, null]), [{ a: 1 }, null]);
  const ref = await plain.push(echo.withArgs({ v: 'clear' }).withQueue('idle'));
  assert.deepEqual((await raw(ref.id)).args, { v: 'clear' });
  await plain.cancelJob(ref);
});

test('two codecs compose in stage order: encoding inner then outer, decoding outer then inner', async () => {
  assert.equal(app.codec.active, true);
  const [single] = await app.pushMany([echo.withArgs({ v: 'one' }).withQueue('idle'), echo.withArgs({ v: 'two' }).withQueue('idle')]);
  assert.deepEqual((await raw(single!.id)).args, { outer: { inner: { v: 'one' } } });
  assert.deepEqual((await app.getJob(single!)).args, { v: 'one' });
  assert.deepEqual(await app.codec.decodeArgs(await app.codec.encodeArgs(['x', null, 2])), ['x', null, 2]);
  await app.cancelJob(single!);
});

test('claim and completion: the handler gets plaintext, the result is stored encoded; null is never encoded', async () => {
  inner.seen.length = 0;
  const withArgs = await app.push(echo.withArgs({ v: 'run' }));
  const without = await app.push(echo.withArgs(null));
  const done = await app.waitForJob(withArgs, { timeoutMs: 10_000 });
  assert.equal(done.state, 'succeeded');
  assert.deepEqual(done.result, { got: { v: 'run' } });
  assert.deepEqual((await raw(withArgs.id)).result, { outer: { inner: { got: { v: 'run' } } } });
  const none = await app.waitForJob(without, { timeoutMs: 10_000 });
  assert.deepEqual(none.result, { got: null });
  assert.equal((await raw(without.id)).args, null);
  assert.ok(!inner.seen.includes(null) && !inner.seen.includes(undefined), 'the codec was never handed null');
});

test('a held (waiting) result and the result a release gives are stored encoded; settle taps observe them decoded', async () => {
  const held = await app.push(hold.withArgs({ v: 'h' }));
  await nowWaiting.promise;
  assert.equal((await app.getJob(held)).state, 'waiting');
  assert.deepEqual((await raw(held.id)).result, { outer: { inner: { held: 'h' } } });
  // The release job finds the held one by its id, which its own (encoded) arguments carry.
  assert.equal((await app.waitForJob(await app.push(release.withArgs({ id: held.id })), { timeoutMs: 10_000 })).state, 'succeeded');
  const done = await app.waitForJob(held, { timeoutMs: 10_000 });
  assert.equal(done.state, 'succeeded');
  assert.deepEqual(done.result, { released: 'yes' });
  assert.deepEqual((await raw(held.id)).result, { outer: { inner: { released: 'yes' } } });
  assert.deepEqual(observed.at(-1), { state: 'succeeded', result: { released: 'yes' } });
});

test("a codec's DocketError surfaces as it is; any other throw, or a wrong answer, is a PluginFailedError", async () => {
  const ref = await app.push(echo.withArgs({ v: 'e' }).withQueue('idle'));
  try {
    const own = new InvalidOptionError('the codec says no');
    inner.fail(own);
    await assert.rejects(app.getJob(ref), (e: unknown) => e === own);
    inner.fail(new Error('boom'));
    await assert.rejects(app.getJob(ref), (e: unknown) => {
      assert.ok(e instanceof PluginFailedError);
      assert.equal(e.plugin, 'inner');
      assert.equal(e.hook, 'decodeArgs');
      return true;
    });
  } finally {
    inner.fail(null);
  }
  await using bad = new Docket({
    connection: db.url,
    logger: false,
    plugins: [{ name: 'short', apply: (a) => a.hooks.encodeArgs.tapPromise('short', async () => []) }],
  });
  await assert.rejects(bad.push(echo.withArgs({ v: 'x' })), (e: unknown) => e instanceof PluginFailedError && /one value per value/.test(e.message));
  await app.cancelJob(ref);
});
