import { ArgsNotSerializableError } from './errors.js';

/**
 * A value stored as JSON without loss: what job arguments and results are. An object property
 * that is `undefined` is left out (the handler sees it absent, as an optional property reads).
 */
export type Json = string | number | boolean | null | readonly Json[] | JsonObject;
/** A JSON object: string keys to `Json` values (a key whose value is `undefined` is left out when stored). */
export interface JsonObject {
  readonly [key: string]: Json | undefined;
}

/** What the type check puts in place of a part of a value that JSON does not keep, so the error says why. */
export type NotJson<Why extends string> = `not JSON: ${Why}`;

/**
 * `T` itself when every part of it survives a JSON round trip; otherwise `T` with each part that
 * does not replaced by a `NotJson<…>` message, so `A extends JsonCompatible<A>` fails at that
 * part. Unlike `Json`, it accepts interfaces (which have no index signature). `any` and
 * `unknown` pass (checked when pushed).
 */
export type JsonCompatible<T> = 0 extends 1 & T
  ? T
  : unknown extends T
    ? T
    : [T] extends [Json] // also ends the recursion on recursive types such as Json itself
      ? T
      : JsonCompatibleMember<T>;

/** One member of a union at a time (a naked `T` distributes). */
type JsonCompatibleMember<T> = T extends string | number | boolean | null
  ? T
  : T extends bigint
    ? NotJson<'a BigInt; pass it as a string'>
    : T extends Date
      ? NotJson<'a Date arrives as an ISO string; pass date.toISOString()'>
      : T extends ReadonlyMap<unknown, unknown> | ReadonlySet<unknown>
        ? NotJson<'a Map or Set is stored as {}; pass an array or a plain object'>
        : T extends (...args: never[]) => unknown
          ? NotJson<'a function'>
          : T extends symbol
            ? NotJson<'a symbol'>
            : T extends undefined
              ? NotJson<'undefined in an array (JSON makes it null); use null'>
              : T extends readonly unknown[]
                ? { [K in keyof T]: JsonCompatible<T[K]> }
                : T extends object
                  ? { [K in keyof T]: undefined extends T[K] ? JsonCompatible<Exclude<T[K], undefined>> | undefined : JsonCompatible<T[K]> }
                  : NotJson<'not a JSON value'>;

/** Job arguments or a result: JSON, or nothing at all (`void`/`undefined`, stored as null). */
export type JsonPayload<T> = [T] extends [void] ? T : JsonCompatible<Exclude<T, undefined | void>> | Extract<T, undefined | void>;

/**
 * Serialises a value to JSON text, refusing what JSON would silently lose or cannot represent:
 * BigInt, functions, symbols, cycles, `undefined` inside arrays, and non-finite numbers.
 * Object properties that are `undefined` are dropped, as JSON does: the handler reads them as it
 * reads an absent optional property, so refusing them would only make callers strip them. A
 * value with `toJSON` (a Date) is stored as what `toJSON` returns; the types (`JsonCompatible`)
 * refuse a Date so that a handler's declared type does not promise a Date it never gets.
 * `what` names the value in the error (a function: built only when there is an error).
 */
export function toJsonText(
  value: unknown,
  what: string | (() => string),
  makeError: (message: string) => Error = (m) => new ArgsNotSerializableError(m),
): string {
  // Plain values (no object inside) need no walk; objects get one walk that builds no path string
  // unless it finds a problem: this runs for every pushed job and every result.
  if (typeof value === 'object' && value !== null) {
    const problem = findProblem(value, null);
    if (problem) throw makeError(`${describeWhat(what)} cannot be stored as JSON: ${problem.describe(pathOf(problem.path))}. ${PASS}`);
  } else {
    const problem = primitiveProblem(value, true);
    if (problem) throw makeError(`${describeWhat(what)} cannot be stored as JSON: ${problem('$')}. ${PASS}`);
  }
  return JSON.stringify(value ?? null);
}

/** Whether an object has no enumerable property (without building a key array). */
export function isEmptyObject(value: object): boolean {
  for (const _ in value) return false;
  return true;
}

const PASS = 'Pass plain objects, arrays, strings, finite numbers, booleans and null.';

const describeWhat = (what: string | (() => string)) => (typeof what === 'function' ? what() : what);

/** A part of a value that JSON does not keep: where (keys from the innermost out) and why. */
interface Problem {
  /** Keys (property names) and indexes from the problem up to the top value, innermost first. */
  readonly path: Array<string | number>;
  readonly describe: (path: string) => string;
}

function pathOf(reversed: ReadonlyArray<string | number>): string {
  let path = '$';
  for (let i = reversed.length - 1; i >= 0; i--) {
    const key = reversed[i];
    path += typeof key === 'number' ? `[${key}]` : `.${key}`;
  }
  return path;
}

/** Why a non-object value cannot be stored, or undefined when it can. */
function primitiveProblem(value: unknown, top: boolean): ((path: string) => string) | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : (path) => `${path} is ${value}`;
    case 'bigint':
      return (path) => `${path} is a BigInt (${value}n); convert it to a string or number`;
    case 'function':
      return (path) => `${path} is a function`;
    case 'symbol':
      return (path) => `${path} is a symbol`;
    case 'undefined':
      return top ? undefined : (path) => `${path} is undefined`;
    default:
      return undefined;
  }
}

/** The first problem inside an object (depth first), or undefined. `seen`: the objects above it. */
function findProblem(object: object, seen: Set<object> | null): Problem | undefined {
  if (seen?.has(object)) return { path: [], describe: (path) => `${path} refers back to itself (a cycle)` };
  if (typeof (object as { toJSON?: unknown }).toJSON === 'function') return undefined; // Date and friends
  const above = seen ?? new Set<object>();
  above.add(object);
  try {
    if (Array.isArray(object)) {
      for (let i = 0; i < object.length; i++) {
        const problem = childProblem(object[i], above);
        if (problem) {
          problem.path.push(i);
          return problem;
        }
      }
      return undefined;
    }
    const proto = Object.getPrototypeOf(object);
    if (proto !== Object.prototype && proto !== null) {
      const kind = (object as { constructor?: { name?: string } }).constructor?.name ?? 'object';
      if (object instanceof Map || object instanceof Set) return { path: [], describe: (path) => `${path} is a ${kind} (JSON would store it as {})` };
    }
    for (const key in object) {
      if (!Object.hasOwn(object, key)) continue;
      const child = (object as Record<string, unknown>)[key];
      if (child === undefined) continue; // left out, as JSON does
      const problem = childProblem(child, above);
      if (problem) {
        problem.path.push(key);
        return problem;
      }
    }
    return undefined;
  } finally {
    above.delete(object);
  }
}

function childProblem(child: unknown, seen: Set<object>): Problem | undefined {
  if (typeof child === 'object' && child !== null) return findProblem(child, seen);
  const describe = primitiveProblem(child, false);
  return describe ? { path: [], describe } : undefined;
}
