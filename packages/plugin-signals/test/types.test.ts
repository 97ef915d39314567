import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkTypeFixtures } from '@docket/testing';

test('signal and plugin event names are checked by tsc: a misspelt one does not compile, payloads are typed', { timeout: 120_000 }, async () => {
  const report = await checkTypeFixtures(fileURLToPath(new URL('./type-fixtures/', import.meta.url)));
  assert.deepEqual(report.inGoodFiles, [], 'what must compile compiles (good-signals.ts)');
  const [bad] = report.badFiles;
  assert.deepEqual(bad!.reported, bad!.expected, report.errors.map((e) => `${e.file}:${e.line} ${e.text}`).join('\n'));
  const at = (start: string) => report.at('bad-signals.ts', start);
  assert.match(at('export const a ='), /'"succeded"' is not assignable/);
  assert.match(at('export const d ='), /Did you mean '"succeeded"'/);
  assert.match(at('export const c ='), /Property 'total' does not exist/);
});
