// Run by reporter.test.ts under node:test with the workspace reporter (not a test of its own).
import assert from 'node:assert/strict';
import { test } from 'node:test';

test('passes too', () => {});
test('fails with a diff', () => {
  console.error('something the failing test logged');
  assert.deepEqual({ answer: 41 }, { answer: 42 });
});
