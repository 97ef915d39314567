import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as core from '@docket/core';

const doc = readFileSync(new URL('../../../docs/ERRORS.md', import.meta.url), 'utf8');

test('docs/ERRORS.md lists every error code and no other', () => {
  const documented = new Set([...doc.matchAll(/^\| `(DOCKET_[A-Z_]+)` \|/gm)].map((m) => m[1]));
  assert.deepEqual([...documented].sort(), Object.keys(core.ERROR_CODES).sort());
});

test('every code has its own exported DocketError class with that code', () => {
  type ErrorClass = new (message: string) => core.DocketError;
  const classes = (Object.values(core) as unknown[]).filter(
    (value): value is ErrorClass => typeof value === 'function' && (value as { prototype?: unknown }).prototype instanceof core.DocketError,
  );
  const codes = classes.map((Class) => new Class('x').code).sort();
  assert.deepEqual(codes, Object.keys(core.ERROR_CODES).sort());
  for (const Class of classes) {
    const error = new Class('message');
    assert.equal(error.name, Class.name);
    assert.ok(doc.includes(`\`${Class.name}\``), `${Class.name} is named in the docs`);
  }
});
