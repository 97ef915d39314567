import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { EXPECTED_OUTPUT_BEGIN, EXPECTED_OUTPUT_END } from '../src/index.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const reporterUrl = new URL('../../../scripts/test-reporter.mjs', import.meta.url);
const fixture = (name: string) => fileURLToPath(new URL(`./reporter-fixtures/${name}`, import.meta.url));

/** node --test over the fixtures with the workspace reporter, as scripts/test.ts runs it. */
function runReporter(files: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', '--test', '--test-concurrency=2', `--test-reporter=${reporterUrl.href}`, '--test-reporter-destination=stdout', ...files],
      { cwd: root, env: { ...process.env, NO_COLOR: '1', NODE_TEST_CONTEXT: undefined } },
      (error, stdout) => resolve({ code: error ? Number(error.code) : 0, stdout }),
    );
  });
}

test('the reporter and @docket/testing agree on the expected-output markers', async () => {
  const reporter = (await import(reporterUrl.href)) as { EXPECTED_OUTPUT_BEGIN: string; EXPECTED_OUTPUT_END: string };
  assert.equal(reporter.EXPECTED_OUTPUT_BEGIN, EXPECTED_OUTPUT_BEGIN);
  assert.equal(reporter.EXPECTED_OUTPUT_END, EXPECTED_OUTPUT_END);
});

test('a line per file, expected output folded, failures in full, a closing summary line; the exit code says failed', {
  timeout: 60_000,
}, async () => {
  const { code, stdout } = await runReporter([fixture('passing.ts'), fixture('failing.ts')]);
  assert.equal(code, 1, stdout);
  const lines = stdout.trimEnd().split('\n');

  assert.ok(
    lines.some((l) => /^✔ packages\/testing\/test\/reporter-fixtures\/passing\.ts {2}3 tests, 1 skipped {2}[\d.]+ s$/.test(l)),
    stdout,
  );
  assert.ok(lines.includes('  - a suite > is skipped (skipped)'), stdout);
  assert.ok(lines.includes('    expected: a child that crashes on purpose (3 lines of output, hidden)'), stdout);
  assert.ok(!stdout.includes('FATAL ERROR: pretend'), 'the expected crash report is folded away');

  assert.ok(
    lines.some((l) => /^✖ packages\/testing\/test\/reporter-fixtures\/failing\.ts {2}2 tests, 1 failed {2}[\d.]+ s$/.test(l)),
    stdout,
  );
  assert.ok(lines.includes('  ✖ fails with a diff'), stdout);
  assert.match(
    stdout,
    /AssertionError \[ERR_ASSERTION\]: Expected values to be strictly deep-equal:[\s\S]*answer: 41[\s\S]*failing\.ts:\d+/,
    'the error with its diff and stack',
  );
  assert.match(stdout, /output:\n {4}│ something the failing test logged/, 'a failing file shows what it printed');

  assert.equal(lines.at(-1), 'tests: 3 passed, 1 failed, 1 skipped', 'the plain closing line');
  assert.match(lines.at(-3)!, /^2 files, 5 tests, [\d.]+ s$/);
  assert.equal(lines.at(-2), 'failed: packages/testing/test/reporter-fixtures/failing.ts');
});
