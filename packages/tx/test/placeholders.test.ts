import assert from 'node:assert/strict';
import { test } from 'node:test';
import { splitPlaceholders, valuesInOrder } from '../src/placeholders.js';

const split = (text: string) => {
  const { chunks, indexes } = splitPlaceholders(text);
  return { chunks, indexes };
};

test('finds $n in order, each occurrence once, including a repeated one', () => {
  assert.deepEqual(split('SELECT $1::int, $2, $1 WHERE x = $10'), { chunks: ['SELECT ', '::int, ', ', ', ' WHERE x = ', ''], indexes: [0, 1, 0, 9] });
  assert.deepEqual(valuesInOrder(splitPlaceholders('SELECT $2, $1, $2'), ['a', null]), [null, 'a', null]);
});

test('leaves $n alone inside literals, quoted identifiers, dollar quotes, comments, and glued to identifiers', () => {
  const text = [
    `SELECT '$1', 'it''s $2', E'\\' $3', "col$4", "a""$5"`,
    `$$ $6 $$, $tag$ $7 $tag$, a$8`,
    `-- $9 in a comment`,
    `/* $10 /* nested $11 */ still $12 */ $13`,
  ].join('\n');
  assert.deepEqual(splitPlaceholders(text).indexes, [12]);
});

test('a DO block with a dollar-quoted body has no placeholder', () => {
  assert.deepEqual(splitPlaceholders(`DO $docket$ BEGIN RAISE EXCEPTION 'x $1'; END $docket$`).indexes, []);
});

test('a $n beyond the parameters is an error', () => {
  assert.throws(() => valuesInOrder(splitPlaceholders('SELECT $3'), ['a']), /uses \$3 but has 1 parameter/);
});
