import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const fixtures = fileURLToPath(new URL('./type-fixtures/', import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

interface TscError {
  file: string;
  line: number;
  /** The error and its elaboration (the indented lines after it). */
  text: string;
}

function typecheckFixtures(): Promise<TscError[]> {
  return new Promise((resolve) => {
    execFile(process.execPath, [tsc, '-p', `${fixtures}tsconfig.json`], { cwd: fixtures }, (error, stdout, stderr) => {
      assert.ok(error, 'tsc must fail on the bad fixtures');
      const output = stdout + stderr;
      const errors = [...output.matchAll(/^(.+?\.ts)\((\d+),\d+\): error (TS\d+: .*(?:\n {2}.*)*)/gm)].map((m) => ({ file: m[1]!, line: Number(m[2]), text: m[3]! }));
      assert.ok(errors.length > 0, output);
      resolve(errors);
    });
  });
}

test('tsc accepts good-jobs.ts and rejects each marked line of bad-jobs.ts, saying why', { timeout: 120_000 }, async () => {
  const errors = await typecheckFixtures();
  assert.deepEqual(errors.filter((e) => !e.file.endsWith('bad-jobs.ts')), [], 'the jobs that must compile compile (good-jobs.ts)');

  const source = readFileSync(`${fixtures}bad-jobs.ts`, 'utf8').split('\n');
  const expected = source.flatMap((text, i) => (text.includes('// EXPECT-ERROR') ? [i + 1] : []));
  assert.deepEqual([...new Set(errors.map((e) => e.line))].sort((a, b) => a - b), expected, errors.map((e) => `${e.line}: ${e.text}`).join('\n'));

  // The messages name the fix, at the line of each mistake.
  const at = (start: string) => {
    const line = source.findIndex((text) => text.startsWith(start)) + 1;
    return errors.filter((e) => e.line === line).map((e) => e.text).join('\n');
  };
  assert.match(at('export const a ='), /this job needs arguments: push job\.withArgs/);
  assert.match(at('export const b ='), /this job needs arguments: push job\.withArgs/);
  assert.match(at('export const e ='), /Property 'name' is missing/);
  assert.match(at('export const f ='), /Property 'name' is missing/);
  assert.match(at('export const h ='), /argumentsNotJson: \{ at: "not JSON: a Date arrives as an ISO string; pass date\.toISOString\(\)"/);
  assert.match(at('export const i ='), /resultNotJson: \{ now: "not JSON: a Date/);
  assert.match(at('export const j ='), /not JSON: undefined in an array/);
  assert.match(at('export const m ='), /Types of property 'call' are incompatible/);
});
