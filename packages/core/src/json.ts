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
 */
export function toJsonText(value: unknown, what: string, makeError: (message: string) => Error = (m) => new ArgsNotSerializableError(m)): string {
  const problem = findProblem(value, '$', new Set());
  if (problem)
    throw makeError(`${what} cannot be stored as JSON: ${problem}. Pass plain objects, arrays, strings, finite numbers, booleans and null.`);
  return JSON.stringify(value ?? null);
}

function findProblem(value: unknown, path: string, seen: Set<object>): string | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : `${path} is ${value}`;
    case 'bigint':
      return `${path} is a BigInt (${value}n); convert it to a string or number`;
    case 'function':
      return `${path} is a function`;
    case 'symbol':
      return `${path} is a symbol`;
    case 'undefined':
      return path === '$' ? undefined : `${path} is undefined`;
  }
  if (value === null) return undefined;
  const object = value as object;
  if (seen.has(object)) return `${path} refers back to itself (a cycle)`;
  if (typeof (object as { toJSON?: unknown }).toJSON === 'function') return undefined; // Date and friends
  seen.add(object);
  try {
    if (Array.isArray(object)) {
      for (let i = 0; i < object.length; i++) {
        const problem = findProblem(object[i], `${path}[${i}]`, seen);
        if (problem) return problem;
      }
      return undefined;
    }
    const proto = Object.getPrototypeOf(object);
    if (proto !== Object.prototype && proto !== null) {
      const kind = (object as { constructor?: { name?: string } }).constructor?.name ?? 'object';
      if (object instanceof Map || object instanceof Set) return `${path} is a ${kind} (JSON would store it as {})`;
    }
    for (const [key, child] of Object.entries(object)) {
      if (child === undefined) continue;
      const problem = findProblem(child, `${path}.${key}`, seen);
      if (problem) return problem;
    }
    return undefined;
  } finally {
    seen.delete(object);
  }
}
