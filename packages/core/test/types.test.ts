import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkTypeFixtures } from '@docket/testing';

test('tsc accepts the good fixtures and rejects each marked line of the bad ones, saying why', { timeout: 120_000 }, async () => {
  const report = await checkTypeFixtures(fileURLToPath(new URL('./type-fixtures/', import.meta.url)));
  assert.deepEqual(report.inGoodFiles, [], 'what must compile compiles (good-*.ts)');
  for (const { file, expected, reported } of report.badFiles) {
    assert.deepEqual(
      reported,
      expected,
      `${file}: the marked lines, and only they, fail\n${report.errors.map((e) => `${e.file}:${e.line} ${e.text}`).join('\n')}`,
    );
  }
  assert.deepEqual(report.badFiles.map((b) => b.file).sort(), ['bad-events.ts', 'bad-jobs.ts']);

  // The messages name the fix, at the line of each mistake.
  const jobs = (start: string) => report.at('bad-jobs.ts', start);
  assert.match(jobs('export const a ='), /this job needs arguments: push job\.withArgs/);
  assert.match(jobs('export const b ='), /this job needs arguments: push job\.withArgs/);
  assert.match(jobs('export const e ='), /Property 'name' is missing/);
  assert.match(jobs('export const f ='), /Property 'name' is missing/);
  assert.match(jobs('export const h ='), /argumentsNotJson: \{ at: "not JSON: a Date arrives as an ISO string; pass date\.toISOString\(\)"/);
  assert.match(jobs('export const i ='), /resultNotJson: \{ now: "not JSON: a Date/);
  assert.match(jobs('export const j ='), /not JSON: undefined in an array/);
  assert.match(jobs('export const m ='), /Types of property 'call' are incompatible/);

  const events = (start: string) => report.at('bad-events.ts', start);
  assert.match(events("app.emit('fixture', 'fixture.finsihed'"), /"fixture\.finsihed"' is not assignable/);
  assert.match(events("app.emit('fixture', 'fixture.finished', { count: '3' })"), /Type 'string' is not assignable to type 'number'/);
});
