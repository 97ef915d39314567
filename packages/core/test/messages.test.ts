/**
 * Option messages read as sentences: one closing mark per clause, and the `where` names what the
 * user wrote (the function and its parameter), not an internal name.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Docket, DocketError, defineJob, oneOfOption, rejectUnknownKeys, Worker } from '@docket/core';

const message = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof DocketError && error.code === 'DOCKET_INVALID_OPTION', String(error));
    return error.message;
  }
  assert.fail('expected a throw');
};

test('an unknown key with a suggestion ends with the question; the known keys follow as their own sentence', () => {
  const text = message(() => rejectUnknownKeys('defineJob(options, handler)', { maxAttempt: 3 }, ['name', 'maxAttempts']));
  assert.equal(text, 'Unknown option `maxAttempt` in defineJob(options, handler); did you mean `maxAttempts`? Known options: name, maxAttempts.');
  assert.doesNotMatch(text, /\?\./);
});

test('an unknown key without a suggestion lists the known keys; an options object that takes none says so', () => {
  assert.equal(
    message(() => rejectUnknownKeys('f(options)', { zzzzzz: 1 }, ['alpha', 'beta'])),
    'Unknown option `zzzzzz` in f(options); known options: alpha, beta.',
  );
  assert.equal(
    message(() => rejectUnknownKeys('g(options)', { x: 1 }, [])),
    'Unknown option `x` in g(options); g(options) takes no options.',
  );
});

test('oneOfOption: a suggestion ends the message with its question mark', () => {
  const text = message(() => oneOfOption("declareQueue('q')", 'executor', 'thred', ['async', 'thread', 'process'], 'async'));
  assert.match(text, /got "thred"; did you mean 'thread'\?$/);
  assert.match(
    message(() => oneOfOption('w', 'executor', 'zzzzzzz', ['async', 'thread'], 'async')),
    /got "zzzzzzz"\.$/,
  );
});

test('core option objects name the call the user wrote', async () => {
  assert.match(
    message(() => defineJob({ name: 'n', queue: 'q', maxAttempt: 3 } as never, async () => 1)),
    /in defineJob\(options, handler\); did you mean `maxAttempts`\?/,
  );
  await using app = new Docket({ connection: 'postgres://127.0.0.1:1/unused', logger: false });
  await assert.rejects(app.waitForJob('1', { timeout: 5 } as never), /in waitForJob\(ref, options\)/);
  await assert.rejects(
    app.push(
      defineJob({ name: 'n', queue: 'q' }, async () => 1),
      { txx: null } as never,
    ),
    /in push\(\)\/pushMany\(\) options; did you mean `tx`\?/,
  );
  assert.match(
    message(() => new Worker(app, { jobs: [], queues: { q: { concurency: 2 } as never } })),
    /in new Worker\(app, options\)\.queues\.q; did you mean `concurrency`\?/,
  );
});
