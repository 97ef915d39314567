import { InvalidOptionError } from './errors.js';

/**
 * Small option validators shared by the core and by plugins (exported publicly), so that every
 * options object in Docket rejects unknown keys with a suggestion and says which value is wrong.
 */

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length];
}

/** The candidate closest to `word` (a likely typo of it), or undefined when none is close. */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/** Throws on keys of `value` that are not in `known`, suggesting the closest known key. */
export function rejectUnknownKeys(where: string, value: object | undefined, known: readonly string[]): void {
  if (value === undefined) return;
  if (value === null || typeof value !== 'object') {
    throw new InvalidOptionError(`${where} must be an object, got ${describe(value)}.`, { details: { where } });
  }
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const hint = suggest(key, known);
    // Each clause ends with its own mark, so a suggestion's "?" is never followed by a ".".
    const advice = hint ? `did you mean \`${hint}\`?` : known.length === 0 ? `${where} takes no options.` : `known options: ${known.join(', ')}.`;
    const rest = hint && known.length > 1 ? ` Known options: ${known.join(', ')}.` : '';
    throw new InvalidOptionError(`Unknown option \`${key}\` in ${where}; ${advice}${rest}`, { details: { where, key, suggestion: hint } });
  }
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

/** The range an integer option must fall in. */
export interface IntegerRule {
  min?: number;
  max?: number;
}

/** Validates an optional integer option; returns `fallback` when the value is undefined. */
export function integerOption(where: string, name: string, value: unknown, fallback: number, rule: IntegerRule = {}): number {
  if (value === undefined) return fallback;
  const { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = rule;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(`${where}: \`${name}\` must be an integer between ${min} and ${max}, got ${describe(value)}.`, {
      details: { where, option: name },
    });
  }
  return value;
}

/** Reads a boolean option (`fallback` when undefined); anything else is DOCKET_INVALID_OPTION naming `where` and `name`. */
export function booleanOption(where: string, name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') {
    throw new InvalidOptionError(`${where}: \`${name}\` must be true or false, got ${describe(value)}.`, {
      details: { where, option: name },
    });
  }
  return value;
}

/** Reads an option that must be one of `allowed` (`fallback` when undefined), with a suggestion for a near miss. */
export function oneOfOption<T extends string>(where: string, name: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    const hint = typeof value === 'string' ? suggest(value, allowed) : undefined;
    throw new InvalidOptionError(
      `${where}: \`${name}\` must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${describe(value)}${hint ? `; did you mean '${hint}'?` : '.'}`,
      { details: { where, option: name } },
    );
  }
  return value as T;
}
