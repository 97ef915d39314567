// Flows that must compile: checked by test/types.test.ts (tsc on this directory).
import { defineJob } from '@docket/core';
import { chain, chord, type FailureInfo, type Flow, group, link, linkError, workflow } from '../../src/index.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;
type ResultOfFlow<F> = F extends Flow<infer R> ? R : never;

const inc = defineJob({ name: 'inc' }, async (n: number) => n + 1);
const double = defineJob({ name: 'double' }, async (n: number) => n * 2);
const show = defineJob({ name: 'show' }, async (n: number) => `${n}!`);
const shout = defineJob({ name: 'shout' }, async (s: string) => s.toUpperCase());
const sum = defineJob({ name: 'sum' }, async (ns: number[]) => ns.reduce((a, b) => a + b, 0));
const report = defineJob({ name: 'report' }, async (f: FailureInfo<number>) => f.error?.message ?? '');
const point = defineJob({ name: 'point' }, async (_: void) => ({ x: 1, y: 2 }));
const xOnly = defineJob({ name: 'x-only' }, async (p: { x: number }) => p.x);

const c1 = chain(inc.withArgs(3), double, show);
const c2 = chain(inc.withArgs(1), double.withPriority(5), show, shout);
const c3 = chain(point, xOnly); // a result with more fields is accepted
const c4 = chain(inc.withArgs(1));
const g = group(inc.withArgs(1), double.withArgs(2));
const ch = chord(g, sum);
const ch2 = chord(group(...[1, 2, 3].map((n) => inc.withArgs(n))), sum);
const l = linkError(link(inc.withArgs(1), double), report);
const wf = workflow('w')
  .step('a', inc.withArgs(1))
  .step('b', double.withArgs(2), { after: ['a'] })
  .step('c', show.withArgs(3), { after: ['a', 'b'] });
export type Checks = [
  Expect<Equal<ResultOfFlow<typeof c1>, string>>,
  Expect<Equal<ResultOfFlow<typeof c2>, string>>,
  Expect<Equal<ResultOfFlow<typeof c3>, number>>,
  Expect<Equal<ResultOfFlow<typeof c4>, number>>,
  Expect<Equal<ResultOfFlow<typeof g>, [number, number]>>,
  Expect<Equal<ResultOfFlow<typeof ch>, number>>,
  Expect<Equal<ResultOfFlow<typeof ch2>, number>>,
  Expect<Equal<ResultOfFlow<typeof wf>, { a: number } & { b: number } & { c: string }>>,
];
export { c1, c2, c3, c4, ch, ch2, l, wf };
