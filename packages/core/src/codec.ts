/**
 * The payload codec: where job arguments and results are encoded on their way into the database
 * and decoded on their way out (by the `encodeArgs`/`decodeArgs`/`encodeResults`/`decodeResults`
 * hooks). Every place the core writes or serves a payload calls one method here, behind a
 * `tapped()` check, so an app without a codec plugin runs exactly the code it ran before.
 *
 * Rules every call site relies on:
 * - null (and undefined) is never handed to a codec and stays as it is: a job without arguments
 *   or without a result has nothing to hide, and rows without a result are NULL.
 * - Encoded values must be JSON (they are stored in jsonb columns).
 * - A codec's own `DocketError` (a wrong key, a tampered value) surfaces as it is: it describes the
 *   data, not a bug in the plugin. Any other throw is a `PluginFailedError`, like every hook's.
 */
import type { Docket, WaitingRelease } from './app.js';
import { DocketError, PluginFailedError } from './errors.js';
import { type CodecContext, type CoreHooks, tapped } from './hooks.js';
import { toJsonText } from './json.js';
import type { CompletionInput } from './sql/jobs.js';
import type { JobInsert, JobRecord, RunningJob } from './types.js';

/**
 * `app.codec`: the codec service for plugins that store payloads in their own tables (a job spec
 * kept until it is pushed, a recurring job's arguments) or read them from `jobs` with their own
 * SQL. Each method takes a batch and returns one value per input value, in order; without a codec
 * plugin each returns its input. Arguments and results are separate so a codec can tell them apart.
 */
export interface PayloadCodec {
  /** Whether any plugin installed a codec (tapped one of the codec hooks). */
  readonly active: boolean;
  /** Job arguments as they are stored, one per argument value. */
  encodeArgs(values: readonly unknown[]): Promise<unknown[]>;
  /** Stored job arguments as handlers see them, one per stored value. */
  decodeArgs(values: readonly unknown[]): Promise<unknown[]>;
  /** Job results as they are stored, one per result value. */
  encodeResults(values: readonly unknown[]): Promise<unknown[]>;
  /** Stored job results as callers see them, one per stored value. */
  decodeResults(values: readonly unknown[]): Promise<unknown[]>;
}

type CodecHook = CoreHooks['encodeArgs'];

/** The core's codec: the public service plus the one-call helpers of the core's own call sites. */
export class Codec implements PayloadCodec {
  readonly #hooks: CoreHooks;
  readonly #ctx: CodecContext;

  constructor(hooks: CoreHooks, app: Docket) {
    this.#hooks = hooks;
    this.#ctx = Object.freeze({ app });
  }

  get active(): boolean {
    const h = this.#hooks;
    return tapped(h.encodeArgs) || tapped(h.decodeArgs) || tapped(h.encodeResults) || tapped(h.decodeResults);
  }
  get encodesArgs(): boolean {
    return tapped(this.#hooks.encodeArgs);
  }
  get decodesArgs(): boolean {
    return tapped(this.#hooks.decodeArgs);
  }
  get encodesResults(): boolean {
    return tapped(this.#hooks.encodeResults);
  }
  /** Reads decode arguments or results (a job record carries both). */
  get decodesJobs(): boolean {
    return tapped(this.#hooks.decodeArgs) || tapped(this.#hooks.decodeResults);
  }

  encodeArgs(values: readonly unknown[]): Promise<unknown[]> {
    return this.#run(this.#hooks.encodeArgs, 'encodeArgs', values);
  }
  decodeArgs(values: readonly unknown[]): Promise<unknown[]> {
    return this.#run(this.#hooks.decodeArgs, 'decodeArgs', values);
  }
  encodeResults(values: readonly unknown[]): Promise<unknown[]> {
    return this.#run(this.#hooks.encodeResults, 'encodeResults', values);
  }
  decodeResults(values: readonly unknown[]): Promise<unknown[]> {
    return this.#run(this.#hooks.decodeResults, 'decodeResults', values);
  }

  // -----------------------------------------------------------------------------------------------
  // The core's call sites

  /** Push: the rows' arguments as the JSON texts to insert — checked as JSON before encoding, so a bad argument fails as without a codec. */
  async argsText(rows: readonly JobInsert[]): Promise<string[]> {
    for (const row of rows) toJsonText(row.args, () => `Arguments of job '${row.name}'`);
    const encoded = await this.encodeArgs(rows.map((row) => row.args));
    return encoded.map((value) => JSON.stringify(value ?? null));
  }

  /** Claim: the job's arguments decoded in place, on the worker's main thread, before the handler's context is built. */
  async decodeJob(job: RunningJob): Promise<void> {
    if (job.args === null || job.args === undefined) return;
    job.args = (await this.decodeArgs([job.args]))[0];
  }

  /** Reads (getJob, and the records settle taps observe): arguments and results decoded in place. */
  async decodeRecords(records: JobRecord[]): Promise<void> {
    const [args, results] = await Promise.all([this.decodeArgs(records.map((r) => r.args)), this.decodeResults(records.map((r) => r.result))]);
    records.forEach((record, i) => {
      record.args = args[i];
      record.result = results[i] as never;
    });
  }

  /** Completion: the results of successes and held (`waiting`) outcomes encoded; the outcomes taps saw are left as they are. */
  async encodeOutcomes(items: readonly CompletionInput[]): Promise<CompletionInput[]> {
    const at: number[] = [];
    const values: unknown[] = [];
    items.forEach(({ outcome }, i) => {
      if ((outcome.state === 'succeeded' || outcome.state === 'waiting') && outcome.result !== null && outcome.result !== undefined) {
        at.push(i);
        values.push(outcome.result);
      }
    });
    if (values.length === 0) return items as CompletionInput[];
    const encoded = await this.encodeResults(values);
    const out = items.slice();
    at.forEach((index, k) => {
      const item = out[index];
      out[index] = { ...item, outcome: { ...item.outcome, result: encoded[k] } as CompletionInput['outcome'] };
    });
    return out;
  }

  /** `releaseWaitingJobs`: the results a plugin gives held jobs, encoded (undefined still means "keep the stored result"). */
  async encodeReleases(releases: readonly WaitingRelease[]): Promise<WaitingRelease[]> {
    const encoded = await this.encodeResults(releases.map((r) => r.result));
    return releases.map((r, i) => (r.result === undefined || r.result === null ? r : { ...r, result: encoded[i] }));
  }

  /** Runs one codec hook over the values that are not null; the others keep their place. */
  async #run(hook: CodecHook, name: string, values: readonly unknown[]): Promise<unknown[]> {
    if (!tapped(hook) || values.length === 0) return values.slice();
    const at: number[] = [];
    const present: unknown[] = [];
    for (let i = 0; i < values.length; i++) {
      const value = values[i];
      if (value === null || value === undefined) continue;
      at.push(i);
      present.push(value);
    }
    if (present.length === 0) return values.slice();
    let coded: unknown[];
    try {
      coded = await hook.promise(present, this.#ctx);
    } catch (error) {
      if (error instanceof PluginFailedError && error.cause instanceof DocketError && !(error.cause instanceof PluginFailedError)) throw error.cause;
      throw error;
    }
    if (!Array.isArray(coded) || coded.length !== present.length) {
      throw new PluginFailedError(`A ${name} tap must return an array with one value per value it was given (${present.length}).`, {
        details: { hook: name },
      });
    }
    const out = values.slice();
    for (const [k, index] of at.entries()) out[index] = coded[k];
    return out;
  }
}
