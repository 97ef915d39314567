/**
 * `withConcurrencyKey(key)`: the builder on every job invocation (module augmentation), and the
 * validation of a key, shared by the builder and the push hook.
 */
import { InvalidJobOptionError, JobInvocation } from '@docket/core';

/** The invocation extension `withConcurrencyKey` sets and the push hook reads. */
export const KEY_EXTENSION = 'concurrency.key';
/** Longest key accepted, in characters (an index entry must stay well under PostgreSQL's ~2.7 kB). */
export const MAX_KEY_LENGTH = 512;

declare module '@docket/core' {
  interface JobInvocation<A, R> {
    /**
     * Puts the job in the concurrency lane `key` (plugin-concurrency): at most the queue's
     * `keyLimit` jobs of one key run at once, and keys take turns in claims. The job's queue must
     * be one the plugin governs.
     */
    withConcurrencyKey(key: string): this;
  }
}

/** A key as stored, or a DOCKET_INVALID_JOB_OPTION naming what was wrong. */
export function concurrencyKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new InvalidJobOptionError(
      `withConcurrencyKey(key): the key must be a non-empty string of at most ${MAX_KEY_LENGTH} characters, got ${describeKey(key)}.`,
      { details: { option: KEY_EXTENSION } },
    );
  }
  return key;
}

function describeKey(value: unknown): string {
  if (typeof value === 'string') return value.length === 0 ? 'an empty string' : `a string of ${value.length} characters`;
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'number' ? `the number ${value}` : typeof value;
}

Object.defineProperty(JobInvocation.prototype, 'withConcurrencyKey', {
  configurable: true,
  writable: true,
  value: function withConcurrencyKey(this: JobInvocation, key: string) {
    return this.with(KEY_EXTENSION, concurrencyKey(key));
  },
});
