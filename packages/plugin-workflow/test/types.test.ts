import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const fixtures = fileURLToPath(new URL('./type-fixtures/', import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

test('tsc rejects a chain whose step does not accept the previous result, at that line', { timeout: 120_000 }, async () => {
  const output = await new Promise<string>((resolve) => {
    execFile(process.execPath, [tsc, '-p', `${fixtures}tsconfig.json`], { cwd: fixtures }, (error, stdout, stderr) => {
      assert.ok(error, 'tsc must fail on the bad fixture');
      resolve(stdout + stderr);
    });
  });
  const errors = [...output.matchAll(/^(.+?\.ts)\((\d+),(\d+)\): error (TS\d+): (.*)$/gm)].map((m) => ({
    file: m[1]!,
    line: Number(m[2]),
    code: m[4]!,
    message: m[5]!,
  }));
  assert.ok(errors.length > 0, output);
  assert.deepEqual(
    errors.filter((e) => !e.file.endsWith('bad-chain.ts')),
    [],
    'the flows that must compile compile (good-flows.ts)',
  );

  const source = readFileSync(`${fixtures}bad-chain.ts`, 'utf8').split('\n');
  const expected = source.flatMap((text, i) => (text.includes('// EXPECT-ERROR') ? [i + 1] : []));
  assert.deepEqual(
    [...new Set(errors.map((e) => e.line))].sort((a, b) => a - b),
    expected,
    output,
  );
  const chainLine = source.findIndex((text) => text.startsWith('export const bad = chain(')) + 1;
  const chainError = errors.find((e) => e.line === chainLine);
  assert.match(chainError!.message + output, /ArgsMismatch<number, string>/, 'the error says what was given and what the step accepts');
});
