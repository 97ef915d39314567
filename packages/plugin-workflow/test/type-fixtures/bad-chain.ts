// Flows that must NOT compile (test/types.test.ts): every line marked EXPECT-ERROR must be reported,
// and no other line.
import { defineJob } from '@docket/core';
import { chain, chord, group, link, workflow } from '../../src/index.js';

const inc = defineJob({ name: 'inc' }, async (n: number) => n + 1);
const double = defineJob({ name: 'double' }, async (n: number) => n * 2);
const shout = defineJob({ name: 'shout' }, async (s: string) => s.toUpperCase());

export const ok = chain(inc.withArgs(3), double);
export const bad = chain(inc.withArgs(3), double, shout); // EXPECT-ERROR: shout takes a string, double returns a number
export const badChord = chord(group(inc.withArgs(1)), shout); // EXPECT-ERROR: shout does not take [number]
export const badLink = link(inc.withArgs(1), shout); // EXPECT-ERROR: shout does not take inc's number
export const badAfter = workflow('w')
  .step('a', inc.withArgs(1))
  .step('b', double.withArgs(1), { after: ['nope'] }); // EXPECT-ERROR: no step 'nope'
