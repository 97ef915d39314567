/**
 * @docket/plugin-unique — unique keys: at most one job per key that has not finished.
 *
 *   const app = new Docket({ connection, plugins: [unique()] });
 *   const ref = await app.push(sendDigest.withArgs({ user: 7 }).withUniqueKey('digest:7'));
 *   ref.duplicate; // true when a job with that key was already pending, running or waiting
 *
 * The database enforces it: a partial unique index on `jobs.unique_key` over the states that hold
 * a key, and the core's `INSERT … ON CONFLICT DO NOTHING`. A push that collides inserts nothing and
 * changes nothing; `resolvePushConflicts` names the job it collided with. Throttle (one job per key
 * and window) is a second unique index; debounce updates the pending holder in the push
 * transaction. README.md states the exact semantics.
 */
import {
  type Docket,
  type DocketPlugin,
  InvalidJobOptionError,
  integerOption,
  type JobInsert,
  JobInvocation,
  pluginBinding,
  rejectUnknownKeys,
  toJsonText,
} from '@docket/core';
import { UniqueHolderGoneError, UniqueOptionsConflictError } from './errors.js';
import { clockRead, HOLDING_STATES, holdersFind, MIGRATIONS, pendingJobsDebounce } from './sql.js';

export { UNIQUE_ERRORS, UniqueHolderGoneError, UniqueOptionsConflictError } from './errors.js';

export const PLUGIN_NAME = 'unique';
const VERSION = '0.1.0';
/** The invocation extension `withUniqueKey` sets and `beforePush` reads. */
export const UNIQUE_EXTENSION = 'unique.key';
/** Longest key accepted, in characters (an index entry must stay well under PostgreSQL's ~2.7 kB). */
export const MAX_KEY_LENGTH = 512;
export { HOLDING_STATES };

export interface UniqueKeyOptions {
  /**
   * Throttle: also at most one job per key in each window of this many milliseconds, even after
   * that job finished. Windows are fixed, aligned to the Unix epoch on the database clock.
   */
  throttleMs?: number;
  /**
   * Debounce: the job runs this many milliseconds after the latest push of its key; a push that
   * finds the key held by a pending job replaces that job's arguments and run time.
   */
  debounceMs?: number;
}

/** What `withUniqueKey` stores on the invocation (validated). */
export interface UniqueKeySpec {
  readonly key: string;
  readonly throttleMs: number | null;
  readonly debounceMs: number | null;
}

declare module '@docket/core' {
  interface JobInvocation<A, R> {
    /**
     * At most one job with `key` pending, running or waiting at a time (plugin-unique). A push that
     * collides answers with the existing job (`ref.duplicate === true`) and never changes it —
     * except that with `debounceMs` a still-pending holder gets the new arguments and run time.
     */
    withUniqueKey(key: string, options?: UniqueKeyOptions): this;
  }
}

const MAX_PERIOD_MS = 2 ** 47; // ~4,400 years; keeps window arithmetic exact in doubles

/** Validates a key and its options (the same checks `withUniqueKey` runs). */
export function uniqueKeySpec(key: unknown, options: UniqueKeyOptions = {}): UniqueKeySpec {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new InvalidJobOptionError(
      `withUniqueKey: the key must be a non-empty string of at most ${MAX_KEY_LENGTH} characters, got ${describeValue(key)}.`,
    );
  }
  rejectUnknownKeys('withUniqueKey options', options, ['throttleMs', 'debounceMs']);
  const where = `withUniqueKey('${key.length > 40 ? `${key.slice(0, 40)}…` : key}')`;
  const period = (name: 'throttleMs' | 'debounceMs') => {
    const value = options[name];
    if (value === undefined) return null;
    try {
      return integerOption(where, name, value, 0, { min: 1, max: MAX_PERIOD_MS });
    } catch (error) {
      throw new InvalidJobOptionError((error as Error).message, { details: { option: name } });
    }
  };
  const throttleMs = period('throttleMs');
  const debounceMs = period('debounceMs');
  if (throttleMs !== null && debounceMs !== null) {
    throw new UniqueOptionsConflictError(
      `${where}: use either throttleMs or debounceMs, not both (a throttled key keeps its first job; a debounced key keeps replacing it).`,
    );
  }
  return Object.freeze({ key, throttleMs, debounceMs });
}

// The builder, on every invocation (module augmentation above gives it its type).
Object.defineProperty(JobInvocation.prototype, 'withUniqueKey', {
  configurable: true,
  writable: true,
  value: function withUniqueKey(this: JobInvocation, key: string, options?: UniqueKeyOptions) {
    const spec = uniqueKeySpec(key, options);
    if (spec.debounceMs !== null && (this.options.scheduledAt !== null || this.options.delayMs !== null)) {
      throw new UniqueOptionsConflictError(debounceAndDelay(key));
    }
    return this.with(UNIQUE_EXTENSION, spec);
  },
});

function debounceAndDelay(key: string): string {
  return `withUniqueKey('${key}', { debounceMs }) sets the run time itself; drop withDelay/withScheduledAt from this push.`;
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return value.length === 0 ? 'an empty string' : `a string of ${value.length} characters`;
  return value === null ? 'null' : typeof value;
}

/** The spec a row carries, re-validated (anyone can call `with('unique.key', …)` directly). */
function specOf(row: JobInsert): UniqueKeySpec | null {
  const raw = row.extensions[UNIQUE_EXTENSION];
  if (raw === undefined || raw === null) return null;
  if (typeof raw === 'string') return uniqueKeySpec(raw);
  if (typeof raw !== 'object')
    throw new InvalidJobOptionError(`The '${UNIQUE_EXTENSION}' option must come from withUniqueKey(key, options), got ${typeof raw}.`);
  const { key, throttleMs, debounceMs } = raw as Partial<UniqueKeySpec>;
  return uniqueKeySpec(key, {
    ...(throttleMs == null ? {} : { throttleMs }),
    ...(debounceMs == null ? {} : { debounceMs }),
  });
}

export type UniqueOptions = Record<string, never>;

export interface UniquePlugin extends DocketPlugin {
  readonly name: typeof PLUGIN_NAME;
}

/** The plugin. It has no options (yet); unknown keys are rejected. */
export function unique(options: UniqueOptions = {}): UniquePlugin {
  rejectUnknownKeys(`${PLUGIN_NAME}(options)`, options, []);
  // The value holds no per-app state today; it is tied to one app anyway so that every plugin
  // follows one rule (call the factory once per app) and may gain state without a breaking change.
  const binding = pluginBinding(PLUGIN_NAME, 'unique');
  return {
    name: PLUGIN_NAME,
    version: VERSION,
    migrations: MIGRATIONS,
    apply(app) {
      binding.bind(app);
      app.defineJobOption(UNIQUE_EXTENSION);
      app.defineJobColumn({ name: 'unique_key', type: 'text' });
      app.defineJobColumn({ name: 'unique_window', type: 'timestamptz' });

      app.hooks.beforePush.tapPromise(PLUGIN_NAME, async (rows, ctx) => {
        let clock: Date | null = null;
        for (const row of rows) {
          const spec = specOf(row);
          if (spec === null) continue;
          row.columns.unique_key = spec.key;
          if (spec.throttleMs !== null) {
            clock ??= await clockRead(ctx.sql);
            const t = clock.getTime();
            row.columns.unique_window = new Date(t - mod(t, spec.throttleMs));
          }
          if (spec.debounceMs !== null) {
            if (row.scheduledAt !== null || row.delayMs !== null) throw new UniqueOptionsConflictError(debounceAndDelay(spec.key));
            row.delayMs = spec.debounceMs;
          }
        }
        return rows;
      });

      app.hooks.resolvePushConflicts.tapPromise(PLUGIN_NAME, async ({ sql, skipped, resolved }) => {
        const mine: Array<{ i: number; row: JobInsert; spec: UniqueKeySpec }> = [];
        skipped.forEach(({ row }, i) => {
          const spec = typeof row.columns.unique_key === 'string' ? specOf(row) : null;
          if (spec !== null) mine.push({ i, row, spec });
        });
        if (mine.length === 0) return; // another plugin's index
        const holders = await holdersFind(sql, app.schema, {
          keys: mine.map((m) => m.spec.key),
          windows: mine.map((m) => (m.row.columns.unique_window instanceof Date ? m.row.columns.unique_window.toISOString() : null)),
        });
        // Debounce: the last push of a batch wins; only a pending holder is changed.
        const debounced = new Map<string, { args: unknown; delayMs: number }>();
        mine.forEach(({ i, row, spec }, n) => {
          const holder = holders[n];
          if (holder.id === null) {
            throw new UniqueHolderGoneError(
              `the job holding unique key '${spec.key}' finished and was deleted while this push ran, so there is no job to name; push again.`,
              { details: { key: spec.key } },
            );
          }
          resolved[i] = holder.id;
          if (spec.debounceMs !== null && holder.state === 'pending') {
            toJsonText(row.args, `Arguments of job '${row.name}'`);
            debounced.set(holder.id, { args: row.args, delayMs: spec.debounceMs });
          }
        });
        if (debounced.size > 0) {
          const entries = [...debounced];
          await pendingJobsDebounce(sql, app.schema, {
            ids: entries.map(([id]) => id),
            args: await storedArgs(
              app,
              entries.map(([, d]) => d.args),
            ),
            delaysMs: entries.map(([, d]) => d.delayMs),
          });
        }
      });
    },
  };
}

/** The JSON texts to store as jobs' arguments: through the app's payload codec, as the core's own push does. */
async function storedArgs(app: Docket, args: readonly unknown[]): Promise<string[]> {
  const stored = app.codec.active ? await app.codec.encodeArgs(args) : args;
  return stored.map((value) => JSON.stringify(value ?? null));
}

function mod(a: number, b: number): number {
  return ((a % b) + b) % b;
}
