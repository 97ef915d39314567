import { DocketError } from './errors.js';

/**
 * What a thrown value is recorded as. JavaScript lets a handler throw anything; a job's errors
 * should show what was thrown, not an Error Docket made up around it: a thrown string is recorded
 * with the name `NonError` and the string as its message, and without a stack (a stack made here
 * would point at Docket's code, not at the throw).
 */
export const NON_ERROR_NAME = 'NonError';

export interface ThrownDescription {
  name: string;
  message: string;
  code?: string;
  stack?: string;
}

/**
 * Name, message, code and stack of any thrown value: an Error as it is; an object with a string
 * `message` (error-like, e.g. from another realm or a library that throws plain objects) with its
 * own fields; anything else as `NonError` with the value as text (a string as is, other values as
 * JSON when they have one, else `String(value)`).
 */
export function describeThrown(value: unknown): ThrownDescription {
  if (value instanceof Error || isErrorLike(value)) {
    const e = value as { name?: unknown; message: string; code?: unknown; stack?: unknown };
    const name = typeof e.name === 'string' && e.name !== '' ? e.name : value instanceof Error ? 'Error' : NON_ERROR_NAME;
    const out: ThrownDescription = { name, message: e.message };
    const code = value instanceof DocketError ? value.code : e.code;
    if (typeof code === 'string' || typeof code === 'number') out.code = String(code);
    if (typeof e.stack === 'string') out.stack = e.stack;
    return out;
  }
  return { name: NON_ERROR_NAME, message: thrownText(value) };
}

function isErrorLike(value: unknown): boolean {
  return value !== null && typeof value === 'object' && typeof (value as { message?: unknown }).message === 'string';
}

function thrownText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'symbol' || typeof value === 'function' || value === undefined) return String(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
