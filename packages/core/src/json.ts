import { ArgsNotSerializableError } from './errors.js';

/**
 * Serialises a value to JSON text, refusing what JSON would silently lose or cannot represent:
 * BigInt, functions, symbols, cycles, `undefined` inside arrays, and non-finite numbers.
 * (Object properties that are `undefined` are dropped, as JSON does; that loses nothing.)
 */
export function toJsonText(value: unknown, what: string, makeError: (message: string) => Error = (m) => new ArgsNotSerializableError(m)): string {
  const problem = findProblem(value, '$', new Set());
  if (problem) throw makeError(`${what} cannot be stored as JSON: ${problem}. Pass plain objects, arrays, strings, finite numbers, booleans and null.`);
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
