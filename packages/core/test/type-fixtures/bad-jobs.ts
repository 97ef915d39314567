// What must NOT compile (test/types.test.ts): every line marked EXPECT-ERROR is reported, and no other line.
import { Docket, defineJob } from '../../src/index.js';

const app = new Docket({ connection: 'postgres://localhost/app' });
const hello = defineJob({ name: 'hello' }, async ({ name }: { name: string }) => `Hello, ${name}!`);
const inc = defineJob({ name: 'inc' }, async (n: number) => n + 1);

export const a = app.push(hello); // EXPECT-ERROR: needs arguments
export const b = app.push(hello.withPriority(3).withQueue('q')); // EXPECT-ERROR: still needs arguments
export const c = app.pushMany([hello]); // EXPECT-ERROR: needs arguments
export const d = app.push(inc); // EXPECT-ERROR: a number is not optional
export const e = hello.withArgs({}); // EXPECT-ERROR: name is required

const greet = defineJob(
  { name: 'greet', args: { greeting: 'Hello' } },
  async ({ greeting, name }: { greeting: string; name: string }) => `${greeting}, ${name}!`,
);
export const f = greet.withArgs({ greeting: 'Hi' }); // EXPECT-ERROR: name has no default
export const g = defineJob({ name: 'bad-default', args: { greeting: 1 } }, async ({ greeting }: { greeting: string }) => greeting); // EXPECT-ERROR: a default of the wrong type

export const h = defineJob({ name: 'at' }, async ({ at }: { at: Date }) => at.getTime()); // EXPECT-ERROR: a Date argument arrives as a string
export const i = defineJob({ name: 'now' }, async () => ({ now: new Date() })); // EXPECT-ERROR: a Date result arrives as a string
export const j = defineJob({ name: 'holes' }, async (list: Array<number | undefined>) => list.length); // EXPECT-ERROR: undefined in an array
export const k = defineJob({ name: 'big' }, async (n: { id: bigint }) => String(n.id)); // EXPECT-ERROR: a BigInt
export const l = defineJob({ name: 'set' }, async () => new Set([1])); // EXPECT-ERROR: a Set is stored as {}

const myPlugin = (options: { level?: number } = {}) => ({ name: 'mine', apply: () => void options });
export const m = new Docket({ connection: 'postgres://localhost/app', plugins: [myPlugin] }); // EXPECT-ERROR: the factory, not called
