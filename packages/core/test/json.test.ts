import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DocketError, toJsonText } from '@docket/core';

/** The message toJsonText throws for `value`, or null when it stores it. */
function refusal(value: unknown): string | null {
  try {
    toJsonText(value, 'The value');
    return null;
  } catch (error) {
    assert.ok(error instanceof DocketError && error.code === 'DOCKET_ARGS_NOT_SERIALIZABLE', String(error));
    return error.message;
  }
}

test('what JSON would lose is refused with the path to it', () => {
  const cycle: Record<string, unknown> = { a: 1 };
  cycle.self = { back: cycle };
  const cases: Array<[unknown, RegExp]> = [
    [{ list: [1, undefined, 3] }, /\$\.list\[1\] is undefined/],
    [{ deep: { n: [{ x: 10n }] } }, /\$\.deep\.n\[0\]\.x is a BigInt \(10n\)/],
    [{ ratio: Number.NaN }, /\$\.ratio is NaN/],
    [[Number.POSITIVE_INFINITY], /\$\[0\] is Infinity/],
    [{ fn() {} }, /\$\.fn is a function/],
    [{ s: Symbol('x') }, /\$\.s is a symbol/],
    [{ m: new Map() }, /\$\.m is a Map \(JSON would store it as \{\}\)/],
    [cycle, /\$\.self\.back refers back to itself \(a cycle\)/],
    [5n, /The value cannot be stored as JSON: \$ is a BigInt/],
  ];
  for (const [value, expected] of cases) assert.match(refusal(value) ?? 'stored', expected);
});

test('what JSON keeps is stored as JSON.stringify writes it; the name of the value is built only on an error', () => {
  const shared = { x: 1 };
  const date = new Date('2024-05-06T07:08:09.010Z');
  const value = { a: shared, b: shared, at: date, skip: undefined, list: [null, 'text', true, 0] };
  assert.equal(toJsonText(value, 'v'), JSON.stringify(value), 'a repeated (not cyclic) object and a Date are fine');
  assert.equal(toJsonText(undefined, 'v'), 'null');
  let named = 0;
  toJsonText({ ok: [1, 2] }, () => `built ${++named}`);
  assert.equal(named, 0);
  assert.throws(() => toJsonText({ bad: Number.NaN }, () => `Arguments of job 'x' (${++named})`), /Arguments of job 'x' \(1\) cannot be stored/);
});
