import type postgres from 'postgres';
import tapable from 'tapable';
import type { Docket } from './app.js';
import { PluginFailedError } from './errors.js';
import type { TransactionAdapter } from './transaction-adapter.js';
import type {
  ClaimedJob,
  DocketEvent,
  InsertedJob,
  JobContext,
  JobInsert,
  PrimaryStatus,
  RunningJob,
  SettledJob,
  Settlement,
  WorkerView,
} from './types.js';

const { AsyncParallelHook, AsyncSeriesBailHook, AsyncSeriesHook, AsyncSeriesWaterfallHook, SyncHook, SyncWaterfallHook } = tapable;

/**
 * What `beforePush` and `afterPush` taps get besides the rows: the push's transaction and app.
 *
 * `sql` is typed as postgres.js, and is postgres.js unless the caller pushed in a transaction
 * another library owns (`adapter` is then set): `sql` is then a facade over that adapter with
 * `sql.unsafe(text, params)` and the tagged template with plain values, both resolving with the
 * rows; any other postgres.js feature (fragments, `sql(array)` helpers, `begin`, `json`, …)
 * throws DOCKET_TX_UNSUPPORTED. Push-time code that should work in every transaction writes
 * `$n` parameters, casts each (`$1::bigint[]`: a library may send text as `text`), and selects
 * text where the type matters (`id::text`, epoch milliseconds as text): a foreign library parses
 * result values its own way (int8 comes back as a string, as postgres.js gives it).
 */
export interface PushContext {
  /** The transaction of the push: the caller's `{ tx }`, or one the core opened because a hook needs it. */
  sql: postgres.TransactionSql | postgres.Sql;
  /** True when the push runs in the caller's own transaction. */
  callerTransaction: boolean;
  /** The caller's TransactionAdapter when their transaction belongs to another library (then `sql` is a facade over it); else null. */
  adapter: TransactionAdapter | null;
  app: Docket;
}

/** What a tap of `beforePush` or `afterPush` may say about the push: its transaction, and (beforePush) the rows it serves. */
export interface PushTapOptions {
  /**
   * `beforePush` only: whether this tap serves `row` (called per pushed row, must be cheap and sync). The tap is
   * called, with every row of the push, only when it wants at least one of them; it changes only
   * the rows it wants. A push whose rows no `beforePush` tap wants (and with no `afterPush` or
   * `resolvePushConflicts` tap) stays the core's one statement, without a transaction.
   * Default: every row.
   */
  wants?: (row: JobInsert) => boolean;
  /**
   * `false` when the tap neither reads nor writes through `ctx.sql` (it changes rows in memory, or
   * counts): a push whose taps all say so stays the core's one statement, with no transaction,
   * and such a tap gets the pool as `ctx.sql` — an `afterPush` tap then runs after that statement
   * committed. Default true (the tap runs in the push's transaction).
   */
  transaction?: boolean;
}

/**
 * The function that runs one attempt's handler (through its executor) and resolves with its
 * result or rejects with its error: what `wrapAttempt` taps wrap.
 */
export type AttemptRun = () => Promise<unknown>;

/** Rows a plugin-added unique index skipped; taps resolve each to the job it collided with. */
export interface PushConflicts {
  /** The push's transaction, as `PushContext.sql` describes it (a facade in a foreign transaction). */
  readonly sql: postgres.TransactionSql | postgres.Sql;
  readonly skipped: ReadonlyArray<{ index: number; row: JobInsert }>;
  /** Indexed like `skipped`; set `resolved[i]` to the id of the existing job the row collided with. */
  readonly resolved: Array<string | undefined>;
}

/** What `settle` taps get besides the settlements: the completion transaction and after-commit work. */
export interface SettleContext {
  /** The completion transaction: plugin writes here commit or roll back with the outcome. */
  readonly sql: postgres.TransactionSql;
  readonly app: Docket;
  readonly workerId: string | null;
  /** Run `fn` once this transaction has committed (never if it rolls back). */
  afterCommit(fn: () => void | Promise<void>): void;
  /**
   * Hands the core a statement this tap sent on `sql` without awaiting it — a write whose answer the
   * tap does not need. What comes after it (the core's write of the outcomes, then the COMMIT) goes
   * down the connection right behind it, so they share one round trip instead of one each. The
   * settlement counts as written only once it succeeded: if it failed, the COMMIT behind it rolled
   * the transaction back and the settlement fails as a whole (an attempt's outcomes are retried).
   * A statement a tap sends must be either awaited or handed here, never left alone.
   */
  pipeline(statement: PromiseLike<unknown>): void;
}

/**
 * One claim of a queue runner while plugins shape it (`beforeClaim`/`afterClaim`). Everything a tap
 * changes applies to this claim only; the SQL it turns into is built by the core.
 */
export interface ClaimContext {
  /** The claim's own transaction: what taps read, lock and write here commits with the claim. */
  readonly sql: postgres.TransactionSql;
  readonly app: Docket;
  readonly queue: string;
  readonly workerId: string;
  /** Most jobs this claim may take: the runner's free slots and prefetch, as lowered so far. */
  readonly limit: number;
  /** Lowers `limit` (a global cap, a token bucket). Never raises it; 0 claims nothing. */
  limitTo(limit: number): void;
  /**
   * Leaves out jobs whose plugin column (declared with `app.defineJobColumn`) holds one of
   * `values` — e.g. keys already at their concurrency cap. Jobs with NULL there are never left out.
   */
  exclude(column: string, values: readonly unknown[]): void;
  /**
   * Takes at most `max` jobs per distinct value of a plugin column in this claim, going round the
   * values from where this runner's previous claim stopped (fair across keys: one key's backlog
   * does not fill the claim). Only values with a job that can run now take a turn (a value left out
   * with `exclude`, or whose pending jobs are all scheduled later, is skipped at the cost of one
   * index probe, however long its backlog). Each value takes at most its share of the claim
   * (`limit` ÷ the values taking a turn, rounded up), so a claim reads about `limit` jobs; a value
   * with fewer runnable jobs than its share leaves the claim short, and the runner claims again
   * when its jobs settle. Jobs with NULL there are not capped.
   *
   * `budgets` gives some values a smaller allowance for this claim, as `[value, remaining]` pairs
   * (a Map): a value with remaining 0 is left out, one with remaining n takes at most
   * min(n, max) — e.g. a per-key concurrency limit minus the key's running jobs. Calls add up: the
   * smallest `max` and the smallest budget per value win.
   *
   * Give the column an index on `(queue, <column>, priority DESC, scheduled_at, id) WHERE
   * state = 'pending'` in the plugin's migration (`(queue, <column>)` serves too, at the cost of
   * sorting each key's due jobs).
   */
  perKey(column: string, max: number, budgets?: Iterable<readonly [unknown, number]>): void;
  /**
   * The runner should claim again at `at` even if nothing wakes it (a rate window opens). The
   * earliest time any tap gives wins.
   */
  retryAt(at: Date): void;
}

/** What a tap of `beforeClaim`/`afterClaim` may say about which claims it shapes. */
export interface ClaimTapOptions {
  /**
   * Whether this tap shapes claims of `queue` (called before every claim, must be cheap). Claims
   * no tap wants run as the core's one plain statement, without a transaction. Default: all.
   */
  wants?: (queue: string) => boolean;
}

/**
 * What a `jobStart` tap may do with the attempt about to start, besides reading its context: bound
 * it in time by a rule of its own (a deadline over all attempts), as `limits.timeoutMs` bounds
 * each attempt.
 */
export interface AttemptStart {
  /**
   * Stops the attempt at `at` (this process's clock) if it still runs then: `ctx.signal` aborts
   * with `reason()` and the attempt ends with that error, as on a time limit (a thread is
   * terminated, a process killed, an async handler gets `hardStopGraceMs`); the attempt's outcome
   * follows from the error as for any failure (retried while attempts and the retry policy allow,
   * which `settle` taps may overrule). The earliest time given wins, and `limits.timeoutMs` still
   * applies: whichever comes first stops the attempt. A time already past stops it at once.
   */
  abortAt(at: Date, reason: () => Error): void;
}

/** What a tap of `jobStart` may say about which jobs it serves. */
export interface JobTapOptions {
  /** Whether this tap serves `job` (called per job, must be cheap and sync). Default: every job. */
  wants?: (job: RunningJob) => boolean;
}

/** What a tap of `settle` may say about which settlements it needs. */
export interface SettleTapOptions {
  /**
   * Whether this tap needs to see `settlement` (called per settlement, must be cheap and sync).
   * Settlements no tap wants are written by the core's one plain statement, outside the settle
   * transaction; a tap without `wants` sees every settlement (and so makes every batch pay).
   */
  wants?: (settlement: Settlement) => boolean;
}

/** What `resolvePrimary` taps are asked about: which worker wants to know whether it is primary. */
export interface PrimaryQuery {
  readonly app: Docket;
  readonly workerId: string;
  readonly signal: AbortSignal;
}

/** What `maintenance` taps get on each tick of a worker. */
export interface MaintenanceContext {
  readonly app: Docket;
  readonly worker: WorkerView;
  readonly primary: PrimaryStatus;
  /** Aborted when the worker stops. */
  readonly signal: AbortSignal;
  readonly tick: number;
}

/** What `jobsDeleted` taps get: the transaction that deleted finished jobs and their ids. */
export interface JobsDeleted {
  readonly sql: postgres.TransactionSql;
  readonly ids: readonly string[];
}

/** What a codec tap is given besides the values (see the codec hooks and `app.codec`). */
export interface CodecContext {
  readonly app: Docket;
}

/** What `afterMigrate` taps get: the app, its pool and the migrations applied by this call. */
export interface MigrateContext {
  readonly app: Docket;
  readonly sql: postgres.Sql;
  readonly applied: ReadonlyArray<{ owner: string; version: number; name: string }>;
}

/**
 * The hook bus. One place documents every hook: when it fires, its kind, its arguments, and whether
 * it runs inside the operation's transaction. docs/ARCHITECTURE.md repeats this table for readers.
 */
export function createHooks() {
  return {
    /**
     * push/pushMany, before the INSERT. Waterfall: taps return the (possibly changed) rows. In the
     * push transaction. A tap's `wants(row)` limits it to pushes with rows it serves; a push whose
     * rows no tap wants runs no tap and opens no transaction for this hook. A tap with
     * `transaction: false` (it only changes rows in memory) does not make the push open one either.
     */
    beforePush: new AsyncSeriesWaterfallHook<[JobInsert[], PushContext], JobInsert[], PushTapOptions>(['rows', 'ctx'], 'beforePush'),
    /** After the INSERT when a plugin's unique index skipped rows. Series: taps fill `resolved`. In the push transaction. */
    resolvePushConflicts: new AsyncSeriesHook<[PushConflicts]>(['conflicts'], 'resolvePushConflicts'),
    /**
     * After the INSERT, same transaction: plugin writes commit or roll back with the push. Series.
     * (A tap with `transaction: false` on a push that needed no transaction runs after its statement.)
     */
    afterPush: new AsyncSeriesHook<[InsertedJob[], PushContext], PushTapOptions>(['jobs', 'ctx'], 'afterPush'),
    /** After the push committed — its own transaction, or its one statement (not fired for pushes in a caller's transaction). Parallel notification. */
    pushCommitted: new AsyncParallelHook<[InsertedJob[]]>(['jobs'], 'pushCommitted'),

    /**
     * Before a queue runner's claim, in the claim's own transaction. Series: taps shape the claim
     * through `ctx` (lower the limit, leave out keys at their cap, cap jobs per key, ask to retry at
     * a time). Only taps whose `wants(queue)` answers true run; when none does, the claim is the
     * core's one plain statement with no transaction.
     */
    beforeClaim: new AsyncSeriesHook<[ClaimContext], ClaimTapOptions>(['ctx'], 'beforeClaim'),
    /** After a shaped claim's statement, same transaction: taps record what was claimed (usage counters, leases). Series. */
    afterClaim: new AsyncSeriesHook<[ClaimedJob[], ClaimContext], ClaimTapOptions>(['claimed', 'ctx'], 'afterClaim'),
    /** A worker claimed a batch (rows are already `running`). Parallel notification, outside any transaction. */
    jobsFetched: new AsyncParallelHook<[RunningJob[], WorkerView]>(['jobs', 'worker'], 'jobsFetched'),
    /**
     * Building the handler's context. Sync: taps add their fields to ctx (see JobContextExtensions).
     * Runs for every attempt: a field only some handlers read is better declared with
     * `app.defineJobContextField`, made on its first read.
     */
    jobContext: new SyncHook<[JobContext, WorkerView]>(['ctx', 'worker'], 'jobContext'),
    /**
     * Right before the handler runs. Series; a throw fails the attempt. `attempt.abortAt` bounds the
     * attempt in time. A tap's `wants(job)` limits it to the jobs it serves; when no tap wants a
     * job, the core does not await the hook for it.
     */
    jobStart: new AsyncSeriesHook<[JobContext, AttemptStart], JobTapOptions>(['ctx', 'attempt'], 'jobStart'),
    /**
     * Wraps the run of one attempt's handler, after `jobStart`, on the worker's main thread whatever
     * the executor (for an atomic job the run includes its transaction and completion). Sync
     * waterfall: each tap returns a function that calls the one it was given exactly once and
     * returns (or rethrows) what it gives — to run the handler inside a tracing context or an
     * AsyncLocalStorage, or to time it. A tap's `wants(job)` limits it to the jobs it serves; when
     * no tap wants a job, its handler runs unwrapped.
     */
    wrapAttempt: new SyncWaterfallHook<[AttemptRun, JobContext], AttemptRun, JobTapOptions>(['run', 'ctx'], 'wrapAttempt'),
    /**
     * Jobs settling, inside the transaction that writes the outcome, batched. Waterfall: for attempts
     * (`ctx` set) taps may change the outcome (e.g. to `waiting`); for cancellations and releases
     * (`ctx` null) the outcome is already written and taps observe it (and may write, release, push).
     * Also fired (ctx null) for jobs a plugin ended outside an attempt with `app.settleJobs`.
     * A tap's `wants` option limits it to the settlements it needs; the others skip the transaction.
     * The transaction may roll back after the taps ran (a statement failed, or an attempt turned out
     * to be stale: the batch is then settled again, taps firing again for the current attempts), so
     * a tap's work outside the transaction goes in `ctx.afterCommit`.
     */
    settle: new AsyncSeriesWaterfallHook<[Settlement[], SettleContext], Settlement[], SettleTapOptions>(['settlements', 'ctx'], 'settle'),
    /**
     * After the completion committed (and its `afterCommit` work ran). Parallel notification. A job
     * retried at once may be claimed again by this process before then; its next attempt waits, so
     * taps see a job's history in order: this hook for attempt n before `jobStart` of attempt n + 1.
     */
    afterSettle: new AsyncParallelHook<[SettledJob[]]>(['settled'], 'afterSettle'),

    /** Worker started (after its heartbeat row exists, before it fetches). Series. */
    workerStarted: new AsyncSeriesHook<[WorkerView]>(['worker'], 'workerStarted'),
    /** Worker stopping (after fetching stopped, jobs drained). Series. */
    workerStopping: new AsyncSeriesHook<[WorkerView]>(['worker'], 'workerStopping'),
    /**
     * Each maintenance tick, before `maintenance`, and before each run of a `primaryOnly` periodic
     * task: fired through `worker.resolvePrimary()`, which shares one call among concurrent askers.
     * Bail: the first tap that answers decides whether this worker holds the primary role (an
     * election plugin answers here; untapped, every worker is primary with term null, and
     * correctness must never rest on the answer).
     */
    resolvePrimary: new AsyncSeriesBailHook<[PrimaryQuery], PrimaryStatus | undefined>(['query'], 'resolvePrimary'),
    /** Every maintenance interval on every worker. Series. (Periodic tasks run apart, on loops of their own.) */
    maintenance: new AsyncSeriesHook<[MaintenanceContext]>(['ctx'], 'maintenance'),

    /**
     * The payload codec: job arguments and results on their way into the database (encode) and out
     * of it (decode) — push, claim, completion, release, every read the core serves, and plugins'
     * own tables through `app.codec`. Waterfall over a batch: a tap returns one value per value it
     * was given, in order, as JSON. Never given null (null is stored as it is). Decoding runs on
     * the worker's main thread before a job reaches its executor. Two codecs compose when each
     * decode tap uses the mirror stage of its encode tap (encode at LATE, decode at EARLY). A codec's
     * own DocketError (wrong key, tampered value) surfaces unwrapped. No transaction.
     */
    encodeArgs: new AsyncSeriesWaterfallHook<[unknown[], CodecContext]>(['values', 'ctx'], 'encodeArgs'),
    decodeArgs: new AsyncSeriesWaterfallHook<[unknown[], CodecContext]>(['values', 'ctx'], 'decodeArgs'),
    encodeResults: new AsyncSeriesWaterfallHook<[unknown[], CodecContext]>(['values', 'ctx'], 'encodeResults'),
    decodeResults: new AsyncSeriesWaterfallHook<[unknown[], CodecContext]>(['values', 'ctx'], 'decodeResults'),

    /** Finished jobs deleted through app.deleteJobs, same transaction: plugins delete their rows that hang off them. Series. */
    jobsDeleted: new AsyncSeriesHook<[JobsDeleted]>(['deleted'], 'jobsDeleted'),

    /** After app.migrate() applied (or found applied) every migration. Series. */
    afterMigrate: new AsyncSeriesHook<[MigrateContext]>(['ctx'], 'afterMigrate'),
    /** Events plugins publish with app.emit(). Parallel notification. */
    event: new AsyncParallelHook<[DocketEvent]>(['event'], 'event'),
  } as const;
}

/** The hook bus as the core holds it (callable). @internal */
export type CoreHooks = ReturnType<typeof createHooks>;
/** What plugins see of a hook: they can tap and intercept, never call. */
export type TapOnly<H> = Omit<H, 'call' | 'callAsync' | 'promise'>;
/** The hook bus as plugins see it on `app.hooks`: every hook, tap-only. */
export type DocketHooks = { readonly [K in keyof CoreHooks]: TapOnly<CoreHooks[K]> };

/** Ordering stages for taps that must run before or after the default (tapable's `stage`). */
export const HOOK_STAGE = Object.freeze({ FIRST: -1000, EARLY: -100, DEFAULT: 0, LATE: 100, LAST: 1000 });

/**
 * Taps of `beforePush`, the claim hooks, `jobStart` and `wrapAttempt` run only for what their
 * `wants` accepts (a pushed row, a queue, a job): a tap that wants none of it is skipped — its
 * plugin is not called at all (a skipped waterfall tap returns nothing, so the waterfall keeps the
 * value it was given: the rows, the run). (`settle` taps see the whole batch the core writes in its
 * transaction, and pick their own settlements from it.)
 */
export function skipUnwanted(hooks: CoreHooks): void {
  type Wants = (subject: unknown) => boolean;
  const accepts: Record<string, (wants: Wants, args: unknown[]) => boolean> = {
    beforePush: (wants, args) => (args[0] as JobInsert[]).some(wants),
    beforeClaim: (wants, args) => wants((args[0] as ClaimContext).queue),
    afterClaim: (wants, args) => wants((args[1] as ClaimContext).queue),
    jobStart: (wants, args) => wants((args[0] as JobContext).job),
    wrapAttempt: (wants, args) => wants((args[1] as JobContext).job),
  };
  for (const [hookName, accept] of Object.entries(accepts)) {
    (hooks[hookName as keyof CoreHooks] as unknown as tapable.Hook<unknown[], unknown>).intercept({
      register(tap: tapable.FullTap & { wants?: Wants }) {
        const wants = tap.wants;
        if (typeof wants !== 'function') return tap;
        const original = tap.fn as (...args: unknown[]) => unknown;
        tap.fn =
          tap.type === 'async'
            ? (...args: unknown[]) => (accept(wants, args) ? original(...args) : (args[args.length - 1] as () => void)())
            : (...args: unknown[]) => (accept(wants, args) ? original(...args) : tap.type === 'promise' ? Promise.resolve() : undefined);
        return tap;
      },
    });
  }
}

/**
 * Wraps every tap so that a plugin's throw surfaces as a PluginFailedError naming the plugin (the
 * tap's name) and the hook, with the original error as `cause`.
 */
export function wrapPluginErrors(hooks: CoreHooks): void {
  for (const [hookName, hook] of Object.entries(hooks)) {
    (hook as unknown as tapable.Hook<unknown[], unknown>).intercept({
      register(tap: tapable.FullTap) {
        const original = tap.fn as (...args: unknown[]) => unknown;
        const wrap = (error: unknown) =>
          error instanceof PluginFailedError
            ? error
            : new PluginFailedError(`Plugin '${tap.name}' failed in hook '${hookName}': ${error instanceof Error ? error.message : String(error)}`, {
                cause: error,
                details: { plugin: tap.name, hook: hookName },
              });
        if (tap.type === 'promise') {
          tap.fn = (...args: unknown[]) => {
            try {
              return Promise.resolve(original(...args)).catch((error) => {
                throw wrap(error);
              });
            } catch (error) {
              return Promise.reject(wrap(error));
            }
          };
        } else if (tap.type === 'async') {
          tap.fn = (...args: unknown[]) => {
            const callback = args.pop() as (error?: unknown, value?: unknown) => void;
            try {
              return original(...args, (error?: unknown, value?: unknown) => callback(error ? wrap(error) : error, value));
            } catch (error) {
              callback(wrap(error));
            }
          };
        } else {
          tap.fn = (...args: unknown[]) => {
            try {
              return original(...args);
            } catch (error) {
              throw wrap(error);
            }
          };
        }
        return tap;
      },
    });
  }
}

/**
 * Whether any plugin tapped `hook`. (tapable's isUsed() also counts interceptors, and every core
 * hook has one: the error wrapper.) Untapped hooks are skipped, so an app without plugins pays
 * nothing for them: no transaction, no extra round trip.
 */
export function tapped(hook: { taps: readonly unknown[] }): boolean {
  return hook.taps.length > 0;
}

/**
 * Whether some tap of `hook` accepts `item` through its `wants` option (a tap without `wants`
 * accepts all). The core asks this before it opens a transaction for such a hook.
 */
export function wanted<T>(hook: { taps: readonly unknown[] }, item: T): boolean {
  for (const tap of hook.taps as ReadonlyArray<{ wants?: (item: T) => boolean }>) {
    if (tap.wants === undefined || tap.wants(item)) return true;
  }
  return false;
}

/** Whether every tap of `hook` declared `wants` (so some items can skip the hook entirely). */
export function everyTapFilters(hook: { taps: readonly unknown[] }): boolean {
  return (hook.taps as ReadonlyArray<{ wants?: unknown }>).every((tap) => typeof tap.wants === 'function');
}

/**
 * Whether some tap of a push hook needs the push's transaction: a tap that did not declare
 * `transaction: false` and (with `items`) wants one of them. The core opens one for a push only
 * when some tap does.
 */
export function needsTransaction<T>(hook: { taps: readonly unknown[] }, items?: readonly T[]): boolean {
  return (hook.taps as ReadonlyArray<{ transaction?: unknown; wants?: (item: T) => boolean }>).some(
    (tap) => tap.transaction !== false && (items === undefined || tap.wants === undefined || items.some(tap.wants)),
  );
}
