// What must compile: checked by test/types.test.ts (tsc on this directory).
import { type ArgsOf, Docket, type DocketPlugin, defineJob, type JobRef, type Json, type ResultOf } from '../../src/index.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;

const app = new Docket({ connection: 'postgres://localhost/app' });

// Jobs that need no arguments are pushed as they are.
const tick = defineJob({ name: 'tick' }, async () => 1);
const report = defineJob({ name: 'report' }, async (options: { verbose?: boolean }) => (options.verbose ? 'long' : 'short'));
const greet = defineJob(
  { name: 'greet', args: { greeting: 'Hello' } },
  async ({ greeting, name }: { greeting: string; name: string }) => `${greeting}, ${name}!`,
);
const defaulted = defineJob({ name: 'defaulted', args: { n: 1 } }, async ({ n }: { n: number }) => n * 2);
export const pushed = [app.push(tick), app.push(report), app.push(defaulted), app.push(tick.withPriority(3)), app.pushMany([tick, report])];

// Keys with defaults are optional in withArgs; the others are required.
export const greetings = [
  greet.withArgs({ name: 'Ada' }),
  greet.withArgs({ name: 'Ada', greeting: 'Hi' }),
  greet.withPriority(1).withArgs({ name: 'Ada', greeting: 'Hi' }),
];
export const direct: Promise<string> = greet({ name: 'Ada' });

// Arguments and results are JSON: interfaces, optional properties (undefined is left out), nested arrays, `Json` itself.
interface Line {
  sku: string;
  qty: number;
}
interface Order {
  id: string;
  lines: Line[];
  previous: Line | null;
  note?: string;
  tags: readonly string[];
  shippedAt: string | null;
}
const place = defineJob({ name: 'place' }, async (order: Order) => ({ id: order.id, total: order.lines.length }));
export const placed = app.push(
  place.withArgs({ id: '1', lines: [{ sku: 'a', qty: 1 }], previous: null, note: undefined, tags: [], shippedAt: null }),
);
const echo = defineJob({ name: 'echo' }, async (value: Json) => value);
export const echoed = app.push(echo.withArgs({ any: ['json', 1, true, null, { nested: 'yes' }] }));
const untyped = defineJob({ name: 'untyped' }, async (value: unknown) => value);
export const anything = app.push(untyped.withArgs('checked when pushed'));

// A plugin object; plugins list.
const plugin: DocketPlugin = { name: 'mine', apply: () => {} };
export const withPlugins = new Docket({ connection: 'postgres://localhost/app', plugins: [plugin, { name: 'inline', apply() {} }] });

const greetRef = app.push(greet.withArgs({ name: 'Ada' }));
export type Checks = [
  Expect<Equal<ArgsOf<typeof greet>, { greeting: string; name: string }>>,
  Expect<Equal<ResultOf<typeof greet>, string>>,
  Expect<Equal<Awaited<typeof greetRef>, JobRef<{ greeting: string; name: string }, string>>>,
  Expect<Equal<Parameters<typeof greet.withArgs>[0], { name: string; greeting?: string }>>,
];
