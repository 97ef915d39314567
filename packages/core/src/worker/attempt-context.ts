import type postgres from 'postgres';
import type { Docket } from '../app.js';
import { PluginInvalidError } from '../errors.js';
import type { JobContext, RunningJob } from '../types.js';
import type { AttemptAbort } from './attempt-abort.js';
import { ProgressReporter } from './progress-reporter.js';
import type { ProgressWriter } from './progress-writer.js';

/** The fields every context has: a plugin field may not take their names. */
const CORE_FIELDS: ReadonlySet<string> = new Set(['job', 'signal', 'sql', 'app', 'workerId', 'progress']);

/**
 * The handler's `ctx` for one attempt on a worker. It is built for every attempt, so it holds only
 * what every attempt needs; what only some handlers use is made on first read: `signal` (the abort
 * controller), `progress` (the reporter), and every field a plugin declares with
 * `app.defineJobContextField` (a logger, say) — so a plugin's field costs nothing to the
 * jobs whose handlers never read it.
 */
export class AttemptContext implements JobContext {
  /** Set for an atomic job, to the transaction its completion commits in. */
  sql: postgres.TransactionSql | undefined = undefined;
  readonly #abort: AttemptAbort;
  readonly #writer: ProgressWriter;
  readonly #live: boolean;
  #reporter: ProgressReporter | null = null;

  constructor(
    readonly job: RunningJob,
    readonly app: Docket,
    readonly workerId: string,
    abort: AttemptAbort,
    writer: ProgressWriter,
    /** False for an atomic job: its transaction holds the row, so only the last report is stored. */
    live: boolean,
  ) {
    this.#abort = abort;
    this.#writer = writer;
    this.#live = live;
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  get progress(): JobContext['progress'] {
    this.#reporter ??= new ProgressReporter(this.#writer, this.job, this.#live);
    return this.#reporter.report;
  }

  /** Ends progress reporting: the attempt's last report not stored yet (undefined when it made none). */
  endProgress(): string | undefined {
    return this.#reporter === null ? undefined : this.#reporter.end();
  }
}

/**
 * The context type of one app: `AttemptContext` with the fields that app's plugins declared, as
 * getters on its own prototype (two apps in one process may install different plugins).
 */
export class AttemptContextType {
  readonly Context: typeof AttemptContext = class extends AttemptContext {};
  readonly #names = new Set<string>();

  /**
   * Adds a field made by `init` on its first read in an attempt and kept for the rest of it. The
   * field can also be assigned (a `jobContext` tap may still set it eagerly).
   */
  define(name: string, init: (ctx: JobContext) => unknown): void {
    if (typeof name !== 'string' || !/^[A-Za-z_$][\w$]*$/.test(name)) {
      throw new PluginInvalidError(`defineJobContextField: the field name must be an identifier; got ${JSON.stringify(name)}.`);
    }
    if (typeof init !== 'function') throw new PluginInvalidError(`defineJobContextField('${name}'): init must be a function (ctx) => value.`);
    if (CORE_FIELDS.has(name)) throw new PluginInvalidError(`defineJobContextField: '${name}' is a field of every job context; pick another name.`);
    if (this.#names.has(name)) throw new PluginInvalidError(`Job context field '${name}' is defined twice (two plugins want the same name).`);
    this.#names.add(name);
    const own = (target: object, value: unknown) =>
      Object.defineProperty(target, name, { value, writable: true, enumerable: true, configurable: true });
    Object.defineProperty(this.Context.prototype, name, {
      configurable: true,
      enumerable: false,
      get(this: AttemptContext) {
        const value = init(this);
        own(this, value);
        return value;
      },
      set(this: AttemptContext, value: unknown) {
        own(this, value);
      },
    });
  }
}
