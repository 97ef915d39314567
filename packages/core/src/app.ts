import postgres from 'postgres';
import { type JobActivity, subscribeActivity } from './activity.js';
import { applicationNameOption } from './application-name.js';
import { Codec, type PayloadCodec } from './codec.js';
import { explainDriverError, explainDriverErrorsOf, invalidUrlError, sqlstateOf } from './driver-errors.js';
import {
  ClosedError,
  InvalidJobOptionError,
  InvalidOptionError,
  isDocketError,
  JobNotFoundError,
  MigrationsPendingError,
  PluginFailedError,
  PluginInvalidError,
  PushTransactionAbortedError,
  WaitTimeoutError,
} from './errors.js';
import {
  type CoreHooks,
  createHooks,
  type DocketHooks,
  needsTransaction,
  type PushContext,
  type SettleContext,
  skipUnwanted,
  tapped,
  wanted,
  wrapPluginErrors,
} from './hooks.js';
import { assertJobName, assertQueueName, assertSchemaName, quoteIdent } from './identifiers.js';
import { type JobInvocation, type Pushable, toInvocation } from './job-definition.js';
import { isEmptyObject, toJsonText } from './json.js';
import { consoleLogger, type Logger, silentLogger } from './logger.js';
import { CORE_MIGRATIONS } from './migrations/core.js';
import { Migrator, type PendingMigration } from './migrator.js';
import { Notifier } from './notifier.js';
import {
  type CountJobsOptions,
  type JobCount,
  type JobPage,
  type ListJobsOptions,
  type ListWorkersOptions,
  Operations,
  type QueueLag,
  type QueueLagOptions,
  queueLagOf,
  type RerunOptions,
  type RetryJobsFilter,
  type Throughput,
  type ThroughputOptions,
  type WorkerInfo,
} from './operations.js';
import { booleanOption, describe, integerOption, oneOfOption, rejectUnknownKeys } from './options.js';
import { type DocketPlugin, validatePlugins } from './plugin.js';
import { checkPoolerBefore, PoolerCheck } from './pooler-check.js';
import { ProgressFollowers } from './progress-followers.js';
import { observeSessions, reconnectBackoff } from './reconnect-backoff.js';
import { Settlements } from './settlement.js';
import { type JobColumn, JobsSql, QUEUES_PER_NOTIFY, toJobRecord } from './sql/jobs.js';
import { type ExecutorKind, type QueueRecord, QueuesSql } from './sql/queues.js';
import { WorkersSql } from './sql/workers.js';
import { type PushTransaction, resolveTransaction, type TransactionAdapter } from './transaction-adapter.js';
import {
  type DocketEvent,
  type DocketEventMap,
  type DocketEventType,
  FINISHED_STATES,
  type InsertedJob,
  type JobContext,
  type JobContextExtensions,
  type JobError,
  type JobInsert,
  type JobProgress,
  type JobRecord,
  type JobRef,
  type JobState,
  type SqlClient,
} from './types.js';
import { type AttemptContext, AttemptContextType } from './worker/attempt-context.js';
import { SettlingJobs } from './worker/settling-jobs.js';

/** What `new Docket(options)` takes: the connection, the schema, the plugins, and how the app listens and logs. */
export interface DocketOptions {
  /** A connection URL, or your own postgres.js instance (Docket then never ends it). */
  connection: string | postgres.Sql;
  /** Schema holding Docket's tables. Default 'docket'. */
  schema?: string;
  plugins?: readonly DocketPlugin[];
  /**
   * LISTEN/NOTIFY for wake-ups and waitForJob. `true` (default) listens on a dedicated connection
   * of the pool; `{ connection }` listens on a separate direct connection (use this behind a
   * transaction-mode pooler such as PgBouncer); `false` never listens (workers poll).
   */
  listen?: boolean | { connection: string | postgres.Sql };
  /** Named prepared statements. Default true; set false behind a transaction-mode pooler. */
  prepare?: boolean;
  /**
   * Pool size when `connection` is a URL. Default 10. An app that runs workers opens a second pool
   * of this size for their claims and outcome writes (kept apart so other statements do not slow
   * them); both open connections only as they need them (a worker draining one queue uses about
   * two in each).
   */
  maxConnections?: number;
  /** Where Docket logs; `false` for silence. Default: warnings and errors to stderr. */
  logger?: Logger | false;
  /**
   * The `application_name` of the connections Docket opens from a URL (the pool and a separate
   * listen connection), as pg_stat_activity shows them. Default `docket:<host>-<pid>` (or
   * PGAPPNAME when set). A name in the URL (`?application_name=`) wins; a pool you pass is yours
   * and keeps its own.
   */
  applicationName?: string;
  /**
   * How long opening a connection may take, to the end of PostgreSQL's startup handshake, before
   * the call fails with DOCKET_CONNECTION_FAILED (`details.reason: 'timeout'`): an address that
   * accepts TCP but is not PostgreSQL fails in seconds instead of hanging. For the connections
   * Docket opens from a URL. Default 10000 ms.
   */
  connectTimeoutMs?: number;
  /**
   * PostgreSQL's `statement_timeout` for the pool Docket opens from a URL; 0 (default) leaves the
   * server's setting. It applies to every statement on the pool — Docket's own, plugins', and your
   * handlers' `ctx.sql` — except migrations, which lift it (a migration may build an index on a
   * large table, or wait for another process's migration). Keep it above your longest statement.
   */
  statementTimeoutMs?: number;
}

const OPTION_KEYS = [
  'connection',
  'schema',
  'plugins',
  'listen',
  'prepare',
  'maxConnections',
  'logger',
  'applicationName',
  'connectTimeoutMs',
  'statementTimeoutMs',
] as const;

/** Options of `push` and `pushMany`. */
export interface PushOptions {
  /**
   * Push inside your transaction: invisible until it commits, gone if it rolls back; idle workers
   * are woken when it commits. A postgres.js transaction, or any other library's through a
   * {@link TransactionAdapter} (`@docket/tx` has one for node-postgres, Kysely, Drizzle, Prisma
   * and Knex). A push refused before it sends anything (a bad name, option or argument) leaves
   * your transaction as it was; one that fails after it began writing leaves it aborted
   * (DOCKET_PUSH_TX_ABORTED): roll it back.
   */
  tx?: PushTransaction;
}

/** Options of `waitForJob`. */
export interface WaitOptions {
  /** Give up with a WaitTimeoutError after this long. Default: wait until the job settles. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** A queue's settings, as `declareQueue(name, options)` stores them. */
export interface QueueOptions {
  /**
   * A per-worker default, not a global cap: how many of the queue's jobs run at once on each worker
   * that serves the queue without setting its own `concurrency` (ten such workers run up to ten
   * times this many). A cap over all workers is a flow-control plugin's job (the claim hooks).
   */
  concurrency?: number;
  executor?: ExecutorKind;
  /** How often idle workers poll when no notification arrives. Default 1000 ms. */
  pollIntervalMs?: number;
}

/** What a plugin gives `releaseWaitingJobs` for a held job. */
export interface WaitingRelease {
  id: string;
  state: 'succeeded' | 'failed' | 'cancelled';
  /** Replaces the stored result when given. */
  result?: unknown;
  error?: JobError;
}

type RefInput = JobRef | string | { id: string };

const INTERNAL = Symbol('docket.internal');

/**
 * Raised in a caller's transaction after a push in it failed part-way: the transaction is then
 * aborted for certain (a database error has aborted it already; this makes it so after a plugin's
 * JavaScript error too), and the message stands in the server's log.
 */
const ABORT_TRANSACTION = `DO $docket$ BEGIN RAISE EXCEPTION 'a Docket push failed in this transaction, which is now aborted: roll it back'; END $docket$`;

/** What the worker (part of the core) needs from the app; not part of the public API. */
export interface AppInternals {
  readonly hooks: CoreHooks;
  readonly jobs: JobsSql;
  readonly queues: QueuesSql;
  readonly workers: WorkersSql;
  readonly notifier: Notifier;
  /** Every ending of a job goes through it. */
  readonly settlements: Settlements;
  /** The jobs whose attempt this app's workers are settling: a next attempt of one waits for it. */
  readonly settling: SettlingJobs;
  /** The `jobs` columns plugins declared. */
  readonly jobColumns: readonly JobColumn[];
  readonly codec: Codec;
  /** The handler's context class, with the fields this app's plugins declared. */
  readonly Context: typeof AttemptContext;
  /**
   * The pool of the workers' hot path — claims and the writes of attempts' outcomes — apart from
   * `app.sql`, where plugins' periodic tasks and the application's own statements run. postgres.js
   * hands each statement the idle connection that has waited longest, so every extra connection
   * that other work opens joins the hot path's rotation, and each claim or write then runs on a
   * backend that has been idle longer (measured: one statement every 500 ms on the shared pool
   * slowed a drain by 8–20%). The app's own pool when it was given one (`connection: sql`).
   */
  workerSql(): postgres.Sql;
}

export function internals(app: Docket): AppInternals {
  return app[INTERNAL]();
}

/**
 * The app: a stateless handle on the database plus the hook bus. Pushing, waiting and cancelling
 * happen here; `Worker` runs jobs.
 */
export class Docket implements AsyncDisposable {
  /** The hook bus, tap-only: plugins tap, only the core fires. Frozen. */
  readonly hooks: DocketHooks;
  /** The pool Docket uses (yours, when you passed one). Plugins run their own SQL on it. */
  readonly sql: postgres.Sql;
  /** The schema name as given ('docket'). */
  readonly schemaName: string;
  /** The schema as a quoted identifier, ready to splice into SQL: `${app.schema}.jobs`. */
  readonly schema: string;
  readonly plugins: readonly DocketPlugin[];
  readonly logger: Logger;
  /** The NOTIFY channel of this schema. */
  readonly channel: string;
  /**
   * The payload codec, for plugins that keep job arguments or results in their own tables or read
   * them with their own SQL: encode before storing, decode after reading (a no-op without a codec plugin).
   */
  readonly codec: PayloadCodec;

  readonly #hooks: CoreHooks;
  readonly #codec: Codec;
  readonly #ownsPool: boolean;
  /** Opens the workers' pool (see `AppInternals.workerSql`); null when the app was given a pool. */
  readonly #openWorkerPool: (() => postgres.Sql) | null;
  #workerPool: postgres.Sql | null = null;
  readonly #listenSql: postgres.Sql | null;
  readonly #ownsListenPool: boolean;
  readonly #prepare: boolean;
  readonly #columns: JobColumn[] = [];
  readonly #contextType = new AttemptContextType();
  readonly #jobOptions = new Set<string>();
  readonly #notifier: Notifier;
  readonly #queues: QueuesSql;
  readonly #workers: WorkersSql;
  readonly #migrator: Migrator;
  readonly #settlements: Settlements;
  readonly #settling: SettlingJobs;
  #jobs: JobsSql | null = null;
  #applying = true;
  #closed = false;
  readonly #waiters = new Map<string, Set<() => void>>();
  #waitListenerInstalled = false;

  constructor(options: DocketOptions) {
    rejectUnknownKeys('new Docket(options)', options, OPTION_KEYS);
    if (options === undefined) throw new InvalidOptionError('new Docket(options) needs an options object with `connection`.');
    const { connection } = options;
    this.schemaName = assertSchemaName(options.schema ?? 'docket');
    this.schema = quoteIdent(this.schemaName);
    this.channel = `docket:${this.schemaName}`;
    this.#prepare = booleanOption('new Docket(options)', 'prepare', options.prepare, true);
    const maxConnections = integerOption('new Docket(options)', 'maxConnections', options.maxConnections, 10, { min: 1, max: 1000 });
    this.logger = options.logger === false ? silentLogger : (options.logger ?? consoleLogger());
    const applicationName = applicationNameOption('new Docket(options)', options.applicationName);
    const named = applicationName === undefined ? {} : { application_name: applicationName };
    const opensFromUrl = typeof connection === 'string' || (typeof options.listen === 'object' && typeof options.listen?.connection === 'string');
    const connectTimeoutMs = integerOption('new Docket(options)', 'connectTimeoutMs', options.connectTimeoutMs, 10_000, { min: 100, max: 600_000 });
    const statementTimeoutMs = integerOption('new Docket(options)', 'statementTimeoutMs', options.statementTimeoutMs, 0, {
      min: 0,
      max: 2_147_483_647,
    });
    for (const [option, applies, advice] of [
      ['connectTimeoutMs', opensFromUrl, 'Set `connect_timeout` (seconds) on your pool instead.'],
      ['statementTimeoutMs', typeof connection === 'string', 'Set `connection: { statement_timeout }` on your pool instead.'],
    ] as const) {
      if (options[option] !== undefined && !applies) {
        throw new InvalidOptionError(
          `new Docket(options): \`${option}\` applies to the pool Docket opens from a URL, but you passed your own postgres.js pool. ${advice}`,
          {
            details: { option },
          },
        );
      }
    }
    const timeouts = { connect_timeout: connectTimeoutMs / 1000 };
    if (options.applicationName !== undefined && !opensFromUrl) {
      throw new InvalidOptionError(
        'new Docket(options): `applicationName` names the connections Docket opens from a URL, but this app opens none (you passed your own postgres.js pool). ' +
          'Set `connection: { application_name }` on your pool instead.',
        { details: { option: 'applicationName' } },
      );
    }

    if (typeof connection === 'string') {
      // JIT compilation costs milliseconds per statement and never pays off for a queue's short
      // statements (PostgreSQL's default cost threshold trips on large batches).
      const statementTimeout = statementTimeoutMs > 0 ? { statement_timeout: statementTimeoutMs } : {};
      const poolOptions = {
        max: maxConnections,
        prepare: this.#prepare,
        onnotice: () => {},
        ...timeouts,
        connection: { jit: 'off', ...named, ...statementTimeout },
      };
      this.sql = openPool(connection, poolOptions);
      this.#ownsPool = true;
      this.#openWorkerPool = () => openPool(connection, poolOptions);
    } else if (typeof connection === 'function' && typeof (connection as postgres.Sql).unsafe === 'function') {
      this.sql = connection;
      this.#ownsPool = false;
      this.#openWorkerPool = null;
    } else {
      throw new InvalidOptionError(
        `new Docket(options): \`connection\` must be a connection URL or a postgres.js instance, got ${describe(connection)}. ` +
          'Set DATABASE_URL or pass e.g. "postgres://user@localhost:5432/app".',
      );
    }

    const listen = options.listen ?? true;
    if (listen === true) {
      this.#listenSql = this.sql;
      this.#ownsListenPool = false;
    } else if (listen === false) {
      this.#listenSql = null;
      this.#ownsListenPool = false;
    } else if (typeof listen === 'object' && listen !== null && 'connection' in listen) {
      rejectUnknownKeys('new Docket(options).listen', listen, ['connection']);
      const c = listen.connection;
      this.#listenSql = typeof c === 'string' ? openPool(c, { max: 1, onnotice: () => {}, ...timeouts, connection: named }) : c;
      this.#ownsListenPool = typeof c === 'string';
    } else {
      throw new InvalidOptionError(`new Docket(options): \`listen\` must be true, false or { connection }, got ${describe(listen)}.`);
    }

    // The pool's own statements (BEGIN, COMMIT) are prepared unless the pool says otherwise.
    const poolPrepares = (this.sql as unknown as { options?: { prepare?: boolean } }).options?.prepare !== false;
    poolerChecks.set(this, new PoolerCheck(this.sql, this.#prepare || poolPrepares));

    this.#hooks = createHooks();
    skipUnwanted(this.#hooks);
    wrapPluginErrors(this.#hooks);
    this.hooks = Object.freeze({ ...this.#hooks }) as DocketHooks;
    this.codec = this.#codec = new Codec(this.#hooks, this);
    this.#settlements = new Settlements(this, this.#hooks, this.#codec, () => this.jobs, this.logger);
    this.#settling = new SettlingJobs(this.#hooks);
    // A notification normally comes back in about a millisecond; 5 s leaves room for a loaded server.
    this.#notifier = new Notifier(this.#listenSql, this.channel, this.logger, this.sql, 5000);
    this.#queues = new QueuesSql(this.schema, this.channel);
    this.#workers = new WorkersSql(this.schema);
    this.plugins = validatePlugins(options.plugins);
    this.#migrator = new Migrator(this.schema, [
      { owner: 'core', migrations: CORE_MIGRATIONS },
      ...this.plugins.map((p) => ({ owner: p.name, migrations: p.migrations ?? [] })),
    ]);
    for (const plugin of this.plugins) plugin.apply(this);
    this.#applying = false;
  }

  /**
   * Declares an extra `jobs` column that a plugin's migration adds; the core inserts the value
   * `beforePush` taps put in `row.columns[name]`. Only callable from a plugin's `apply`.
   */
  defineJobColumn(column: JobColumn): void {
    if (!this.#applying) throw new PluginInvalidError('defineJobColumn() can only be called from a plugin’s apply(app).');
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(column.name) || !/^[a-z][a-z0-9_ ]*(\[\])?$/.test(column.type)) {
      throw new PluginInvalidError(`defineJobColumn: invalid column ${describe(column.name)} of type ${describe(column.type)}.`);
    }
    if (this.#columns.some((c) => c.name === column.name)) throw new PluginInvalidError(`Job column '${column.name}' is defined twice.`);
    this.#columns.push({ name: column.name, type: column.type });
  }

  /**
   * Declares a field of the handler's context (`ctx[name]`, typed by augmenting
   * `JobContextExtensions`), made by `init` on the field's first read in an attempt and kept for
   * the rest of it: a job whose handler never reads it costs nothing (unlike a `jobContext` tap,
   * which runs for every attempt). `init` must be cheap and synchronous. Only callable from a
   * plugin's `apply`; names are the app's, so two plugins cannot take the same one.
   */
  defineJobContextField<K extends keyof JobContextExtensions>(name: K, init: (ctx: JobContext) => JobContextExtensions[K] | undefined): void {
    if (!this.#applying) throw new PluginInvalidError('defineJobContextField() can only be called from a plugin’s apply(app).');
    this.#contextType.define(name as string, init);
  }

  /**
   * Declares a job option a plugin reads from `row.extensions` (set with `invocation.with(key, …)`).
   * A push carrying an option no installed plugin declared is refused: without its plugin the
   * option would be silently lost (a guarantee the user asked for would not hold). Only from `apply`.
   */
  defineJobOption(key: string): void {
    if (!this.#applying) throw new PluginInvalidError('defineJobOption() can only be called from a plugin’s apply(app).');
    this.#jobOptions.add(key);
  }

  /** The workers' pool, opened on first use (see `AppInternals.workerSql`). */
  #workerSql(): postgres.Sql {
    // A closed app opens nothing more: its ended pool answers with the closed-pool error.
    if (this.#openWorkerPool === null || (this.#closed && this.#workerPool === null)) return this.sql;
    return (this.#workerPool ??= this.#openWorkerPool());
  }

  private get jobs(): JobsSql {
    return (this.#jobs ??= new JobsSql(this.schema, this.channel, this.#prepare, this.#columns, tapped(this.#hooks.resolvePushConflicts)));
  }

  /**
   * The app's internals for the worker (`internals(app)`); not part of the public API.
   * @internal
   */
  [INTERNAL](): AppInternals {
    return {
      hooks: this.#hooks,
      jobs: this.jobs,
      queues: this.#queues,
      workers: this.#workers,
      notifier: this.#notifier,
      settlements: this.#settlements,
      settling: this.#settling,
      jobColumns: this.#columns,
      codec: this.#codec,
      Context: this.#contextType.Context,
      workerSql: () => this.#workerSql(),
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Migrations

  /** Applies the core's and every plugin's pending migrations (safe to call from many processes at once). */
  async migrate(): Promise<Array<{ owner: string; version: number; name: string }>> {
    this.#assertOpen();
    const applied = await this.#migrator.migrate(this.sql);
    if (tapped(this.#hooks.afterMigrate)) await this.#hooks.afterMigrate.promise({ app: this, sql: this.sql, applied });
    return applied;
  }

  /** Migrations the database still lacks (throws SchemaTooNewError when it is ahead of the code). */
  pendingMigrations(): Promise<PendingMigration[]> {
    return this.#migrator.pending(this.sql);
  }

  /** Throws MigrationsPendingError unless the schema is fully migrated for the core and every plugin. */
  async assertMigrated(): Promise<void> {
    const pending = await this.pendingMigrations();
    if (pending.length > 0) {
      throw new MigrationsPendingError(
        `The database schema ${this.schemaName} lacks ${pending.length} migration(s) (${pending.map((p) => `${p.owner}@${p.version}`).join(', ')}). ` +
          'Run `await app.migrate()` (or `docket migrate`) before starting workers.',
        { details: { pending } },
      );
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Pushing

  /** Pushes one job; returns its reference (typed with the job's arguments and result). */
  async push<A, R>(job: Pushable<A, R>, options: PushOptions = {}): Promise<JobRef<A, R>> {
    const [ref] = await this.pushMany([job], options);
    return ref as JobRef<A, R>;
  }

  /** Pushes many jobs in one statement (one round trip), all or none. */
  async pushMany<J extends Pushable>(
    jobs: readonly J[],
    options: PushOptions = {},
  ): Promise<Array<JobRef<J extends Pushable<infer A, infer _R> ? A : never, J extends Pushable<infer _A, infer R> ? R : never>>> {
    this.#assertOpen();
    rejectUnknownKeys('push()/pushMany() options', options, ['tx']);
    if (!Array.isArray(jobs)) throw new InvalidOptionError(`pushMany() takes an array of jobs, got ${describe(jobs)}.`);
    if (jobs.length === 0) return [];
    const rows = jobs.map((job) => toInsertRow(toInvocation(job)));
    for (const row of rows) {
      for (const key in row.extensions) {
        if (!this.#jobOptions.has(key)) {
          throw new InvalidJobOptionError(
            `Job '${row.name}' sets the option '${key}', but no installed plugin reads it, so it would be ignored. ` +
              `Add the plugin that provides it to \`plugins\`.`,
            { details: { option: key } },
          );
        }
      }
    }
    if (options.tx) return (await this.#pushInCallerTransaction(options.tx, rows)) as never;
    // Without a tap that needs a transaction the push is one statement, committed when it returns.
    const { refs, inserted } = this.#pushNeedsTransaction(rows)
      ? await this.sql.begin((tx) => this.#pushIn(tx, rows, null, null))
      : await this.#pushIn(this.sql, rows, null, null);
    if (tapped(this.#hooks.pushCommitted) && inserted.length > 0) {
      this.#hooks.pushCommitted.promise(inserted).catch((error) => this.logger.error('pushCommitted hook failed', { error }));
    }
    return refs as never;
  }

  /**
   * A push in the caller's transaction (theirs to commit). Everything the core checks is checked
   * before the first statement, so a refused push leaves the transaction as it was. Once something
   * may have been written (a `beforePush` tap ran, or the insert was sent), a failure must not let
   * the caller commit half a push — the rows without a plugin's bookkeeping — so the transaction is
   * aborted on purpose (a statement that raises) and the error says so.
   */
  async #pushInCallerTransaction(tx: PushTransaction, rows: JobInsert[]): Promise<JobRef[]> {
    const { sql, adapter } = resolveTransaction(tx);
    if (tapped(this.#hooks.beforePush)) {
      // The core serialises arguments after the taps (which may change them); check them now too.
      for (const row of rows) {
        toJsonText(row.args, `Arguments of job '${row.name}'`);
        toJsonText(row.meta, `Meta of job '${row.name}'`);
      }
    }
    const progress = { sent: false };
    try {
      return (await this.#pushIn(sql, rows, adapter, progress)).refs;
    } catch (error) {
      if (!progress.sent) throw error;
      await Promise.resolve(sql.unsafe(ABORT_TRANSACTION)).catch(() => {});
      const cause = await explainDriverError(error, this);
      const sqlstate = sqlstateOf(error);
      throw new PushTransactionAbortedError(
        `Pushing inside your transaction failed, so Docket aborted the transaction (PostgreSQL refuses its further statements and its COMMIT rolls back): roll it back, and retry it whole if you wish. ${
          cause instanceof Error ? cause.message : String(cause)
        }`,
        { cause, details: { ...(sqlstate ? { sqlstate } : {}), ...(isDocketError(cause) ? { causeCode: cause.code } : {}) } },
      );
    }
  }

  /**
   * Whether a push of `rows` runs taps that need its transaction: `resolvePushConflicts` taps, and
   * `afterPush` or `beforePush` taps that did not declare `transaction: false` (a `beforePush` tap
   * only when it wants one of the rows).
   */
  #pushNeedsTransaction(rows: readonly JobInsert[]): boolean {
    const hooks = this.#hooks;
    return tapped(hooks.resolvePushConflicts) || needsTransaction(hooks.afterPush) || needsTransaction(hooks.beforePush, rows);
  }

  /**
   * The push itself, in `sql` (a transaction when hooks need one). `adapter`: set when `sql` is the
   * facade over a caller's foreign transaction. `progress`: set for a caller's transaction, marked
   * once something may have been written in it.
   */
  async #pushIn(sql: SqlClient, input: JobInsert[], adapter: TransactionAdapter | null, progress: { sent: boolean } | null) {
    const ctx: PushContext = { sql, callerTransaction: progress !== null, adapter, app: this };
    let rows = input;
    if (tapped(this.#hooks.beforePush) && rows.some((row) => wanted(this.#hooks.beforePush, row))) {
      if (progress) progress.sent = true;
      rows = await this.#hooks.beforePush.promise(rows, ctx);
      if (!Array.isArray(rows) || rows.length !== input.length) {
        throw new PluginFailedError('A beforePush tap must return the rows array, one row per pushed job.', { details: { hook: 'beforePush' } });
      }
      for (const row of rows) {
        assertQueueName(row.queue);
        assertJobName(row.name);
      }
    }
    const refs: JobRef[] = new Array(rows.length);
    // Rows a plugin resolved to an existing job are answered without inserting.
    let toInsert = rows;
    let positions: number[] | null = null;
    if (rows.some((row) => row.duplicateOf !== undefined)) {
      const kept: number[] = [];
      positions = kept;
      toInsert = [];
      rows.forEach((row, index) => {
        if (row.duplicateOf === undefined) {
          kept.push(index);
          toInsert.push(row);
        } else {
          refs[index] = { id: String(row.duplicateOf), name: row.name, queue: row.queue, duplicate: true };
        }
      });
    }
    const argsText = this.#codec.encodesArgs
      ? await this.#codec.argsText(toInsert)
      : toInsert.map((row) => toJsonText(row.args, () => `Arguments of job '${row.name}'`));
    for (const row of toInsert) if (!isEmptyObject(row.meta)) toJsonText(row.meta, () => `Meta of job '${row.name}'`);
    const wantTimes = tapped(this.#hooks.afterPush) || tapped(this.#hooks.pushCommitted);
    if (progress && toInsert.length > 0) progress.sent = true;
    const result = toInsert.length === 0 ? [] : await this.jobs.insert(sql, { rows: toInsert, argsText, withTimes: wantTimes });
    const inserted: InsertedJob[] = [];
    const skipped: Array<{ index: number; row: JobInsert }> = [];
    for (const [position, r] of result.entries()) {
      const index = positions ? positions[position] : position;
      const row = index === undefined ? undefined : rows[index];
      if (index === undefined || row === undefined) {
        throw new Error(`jobs.insert answered ${result.length} rows for ${toInsert.length} inserted (row ${position} has no pushed job).`);
      }
      if (r.inserted) {
        refs[index] = { id: r.id, name: row.name, queue: row.queue, duplicate: false };
        inserted.push({ id: r.id, name: row.name, queue: row.queue, priority: row.priority, scheduledAt: r.scheduled_at, index, row });
      } else {
        skipped.push({ index, row });
      }
    }
    if (skipped.length > 0) {
      const resolved: Array<string | undefined> = new Array(skipped.length);
      await this.#hooks.resolvePushConflicts.promise({ sql, skipped, resolved });
      skipped.forEach(({ index, row }, i) => {
        const id = resolved[i];
        if (id === undefined) {
          throw new PluginFailedError(`A unique index skipped job '${row.name}' but no plugin resolved the conflict (tap resolvePushConflicts).`, {
            details: { hook: 'resolvePushConflicts' },
          });
        }
        refs[index] = { id, name: row.name, queue: row.queue, duplicate: true };
      });
    }
    if (inserted.length > 0 && tapped(this.#hooks.afterPush)) await this.#hooks.afterPush.promise(inserted, ctx);
    return { refs, inserted };
  }

  // ---------------------------------------------------------------------------------------------
  // Reading, waiting, cancelling

  /**
   * The job as stored now, by reference (from `push`) or id, with its arguments and result decoded.
   * Throws JobNotFoundError when no such job exists (never pushed, or deleted).
   */
  async getJob<A = unknown, R = unknown>(ref: JobRef<A, R> | RefInput): Promise<JobRecord<A, R>> {
    this.#assertOpen();
    const id = refId(ref);
    const [row] = await this.jobs.getOne(this.sql, { id });
    if (!row) throw new JobNotFoundError(`No job with id ${id} in schema ${this.schemaName} (it may have been pruned).`, { details: { id } });
    const job = toJobRecord(row) as JobRecord<A, R>;
    if (this.#codec.decodesJobs) await this.#codec.decodeRecords([job]);
    return job;
  }

  /**
   * Resolves with the job once it is finished (succeeded, failed or cancelled). Woken by
   * LISTEN/NOTIFY when the job settles; without listening it polls with backoff.
   */
  async waitForJob<A = unknown, R = unknown>(ref: JobRef<A, R> | RefInput, options: WaitOptions = {}): Promise<JobRecord<A, R>> {
    this.#assertOpen();
    rejectUnknownKeys('waitForJob(ref, options)', options, ['timeoutMs', 'signal']);
    const id = refId(ref);
    const timeoutMs =
      options.timeoutMs === undefined ? undefined : integerOption('waitForJob(ref, options)', 'timeoutMs', options.timeoutMs, 0, { min: 0 });
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
    const listening = this.#notifier.enabled;
    if (listening) {
      this.#installWaitListener();
      await this.#notifier.startSettled();
    }
    let wake: () => void = () => {};
    let set = this.#waiters.get(id);
    if (!set) this.#waiters.set(id, (set = new Set()));
    const waiter = () => wake();
    set.add(waiter);
    try {
      let pollDelay = 25;
      for (;;) {
        const job = await this.getJob<A, R>(id);
        if ((FINISHED_STATES as readonly JobState[]).includes(job.state)) return job;
        const remaining = deadline - Date.now();
        if (remaining <= 0) {
          throw new WaitTimeoutError(
            `Job ${id} did not finish within ${timeoutMs} ms (it is ${job.state}). Wait longer or check that a worker serves queue '${job.queue}'.`,
            {
              details: { id, state: job.state },
            },
          );
        }
        if (options.signal?.aborted) throw options.signal.reason;
        // Sleep until a notification names this job, the deadline, or (without LISTEN) the next poll.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(remaining, listening ? 60_000 : pollDelay));
          const onAbort = () => resolve();
          options.signal?.addEventListener('abort', onAbort, { once: true });
          wake = () => {
            clearTimeout(timer);
            options.signal?.removeEventListener('abort', onAbort);
            resolve();
          };
        });
        pollDelay = Math.min(pollDelay * 2, 1000);
      }
    } finally {
      set.delete(waiter);
      if (set.size === 0) this.#waiters.delete(id);
    }
  }

  #installWaitListener(): void {
    if (this.#waitListenerInstalled) return;
    this.#waitListenerInstalled = true;
    this.#notifier.on('s', (body) => {
      for (const id of body.split(',')) {
        this.#waiters.get(id)?.forEach((wake) => {
          wake();
        });
      }
    });
    this.#notifier.onReconnect(() => {
      this.#waiters.forEach((set) => {
        set.forEach((wake) => {
          wake();
        });
      });
    });
  }

  /**
   * Calls `listener` with each progress report (`ctx.progress`) stored for the job, from whichever
   * worker process runs it: the one stored now first (when there is one), then each new one, until
   * you call the function it resolves with. A worker stores a running job's latest report at most
   * every `progressIntervalMs`, and the last report of each attempt with its outcome, so a listener
   * hears the latest values and always the last; reports stored between two reads are skipped.
   * Needs LISTEN/NOTIFY (`listen` not false); without it, poll `getJob(ref).progress`.
   */
  async onProgress(ref: JobRef | RefInput, listener: (progress: JobProgress) => void): Promise<() => void> {
    this.#assertOpen();
    const id = refId(ref);
    if (typeof listener !== 'function')
      throw new InvalidOptionError(`onProgress(ref, listener): listener must be a function, got ${describe(listener)}.`);
    if (!this.#notifier.enabled) {
      throw new InvalidOptionError(
        'onProgress() needs LISTEN/NOTIFY, but this app was created with `listen: false`; poll getJob(ref).progress instead.',
      );
    }
    this.#progressFollowers ??= new ProgressFollowers(this.sql, this.#notifier, () => this.jobs, this.logger);
    return this.#progressFollowers.follow(id, listener);
  }
  #progressFollowers: ProgressFollowers | undefined;

  /**
   * Cancels a job. A pending (or waiting) job ends `cancelled` at once and never runs; a running
   * job's handler sees `ctx.signal` abort and the job ends `cancelled` when the handler returns.
   * Finished jobs are left as they are. Returns the job as it is after the call.
   */
  async cancelJob<A = unknown, R = unknown>(ref: JobRef<A, R> | RefInput): Promise<JobRecord<A, R>> {
    this.#assertOpen();
    const id = refId(ref);
    await this.#settlements.cancel(id);
    return this.getJob<A, R>(id);
  }

  /**
   * For plugins that hold jobs in `waiting` (an outcome they set in `settle`): moves them to their
   * final state inside the given settle transaction. Fires `settle` for them (nested, so holds can
   * nest) and `afterSettle` once the outer transaction commits.
   */
  releaseWaitingJobs(ctx: SettleContext, releases: readonly WaitingRelease[]): Promise<string[]> {
    return this.#settlements.releaseWaiting(ctx, releases);
  }

  /**
   * For plugins that end jobs outside any worker's attempt (e.g. the attempt's worker is gone):
   * opens a transaction and calls `write(tx)`, which moves jobs to a finished state with the
   * plugin's own fenced SQL and returns their ids. In the same transaction the core then fires
   * `settle` for the rows that are finished (observing: `ctx` null, outcome as stored) and
   * notifies `waitForJob`; after commit it fires `afterSettle`. Returns the ids settled.
   */
  settleJobs(write: (tx: postgres.TransactionSql) => Promise<readonly string[]>): Promise<string[]> {
    this.#assertOpen();
    return this.#settlements.settleWritten(write);
  }

  /**
   * Deletes finished jobs (succeeded, failed, cancelled; other states are never touched) and fires
   * `jobsDeleted` in the same transaction so plugins delete what hangs off them. Returns the ids
   * deleted. Pass `sql` to run inside your transaction.
   */
  async deleteJobs(ids: readonly string[], options: { sql?: postgres.TransactionSql } = {}): Promise<string[]> {
    this.#assertOpen();
    if (ids.length === 0) return [];
    const run = async (tx: postgres.TransactionSql | postgres.Sql) => {
      const deleted = (await this.jobs.deleteFinished(tx, { ids })).map((r) => r.id);
      if (deleted.length > 0 && tapped(this.#hooks.jobsDeleted)) {
        await this.#hooks.jobsDeleted.promise({ sql: tx as postgres.TransactionSql, ids: deleted });
      }
      return deleted;
    };
    if (options.sql) return run(options.sql);
    if (!tapped(this.#hooks.jobsDeleted)) return run(this.sql);
    return this.sql.begin(run) as Promise<string[]>;
  }

  /** Tells workers that runnable jobs wait in these queues (delivered on commit when `sql` is a transaction). */
  async wake(queues: readonly string[], options: { sql?: postgres.TransactionSql | postgres.Sql } = {}): Promise<void> {
    if (queues.length === 0) return;
    for (const q of queues) assertQueueName(q);
    const distinct = [...new Set(queues)];
    for (let i = 0; i < distinct.length; i += QUEUES_PER_NOTIFY) {
      await (options.sql ?? this.sql).unsafe(`SELECT pg_notify($1, $2)`, [this.channel, `p:${distinct.slice(i, i + QUEUES_PER_NOTIFY).join(',')}`]);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Queues

  /** Creates or updates a queue's settings in the database. */
  declareQueue(name: string, options: QueueOptions = {}): Promise<QueueRecord> {
    this.#assertOpen();
    assertQueueName(name);
    rejectUnknownKeys(`declareQueue('${name}') options`, options, ['concurrency', 'executor', 'pollIntervalMs']);
    const where = `declareQueue('${name}')`;
    return this.#queues.upsert(this.sql, {
      name,
      concurrency:
        options.concurrency === undefined ? undefined : integerOption(where, 'concurrency', options.concurrency, 1, { min: 1, max: 10_000 }),
      executor:
        options.executor === undefined
          ? undefined
          : oneOfOption<ExecutorKind>(where, 'executor', options.executor, ['async', 'thread', 'process'], 'async'),
      pollIntervalMs:
        options.pollIntervalMs === undefined
          ? undefined
          : integerOption(where, 'pollIntervalMs', options.pollIntervalMs, 1000, { min: 10, max: 3_600_000 }),
    });
  }

  /** Stops every worker from fetching this queue's jobs (running ones finish). Seen at once. */
  pauseQueue(name: string): Promise<QueueRecord> {
    return this.#setPaused(name, true);
  }

  /** Lets workers fetch this queue's jobs again after `pauseQueue`. Seen at once. */
  resumeQueue(name: string): Promise<QueueRecord> {
    return this.#setPaused(name, false);
  }

  async #setPaused(name: string, paused: boolean): Promise<QueueRecord> {
    this.#assertOpen();
    assertQueueName(name);
    await this.#queues.ensure(this.sql, { names: [name] });
    const queue = await this.#queues.setPaused(this.sql, { name, paused });
    // `ensure` just created the row if it was missing; only a concurrent delete can take it away.
    if (!queue) throw new Error(`Queue '${name}' disappeared while it was being ${paused ? 'paused' : 'resumed'}.`);
    return queue;
  }

  /** Every queue with a row in the database (declared, paused or resumed, or served by a worker), by name, with its settings. */
  listQueues(): Promise<QueueRecord[]> {
    this.#assertOpen();
    return this.#queues.list(this.sql);
  }

  // ---------------------------------------------------------------------------------------------
  // Plugin services

  /**
   * Publishes a plugin event on the `event` hook (for listeners such as the signals plugin). The
   * type must be declared in `DocketEventMap` (module augmentation), with its payload.
   */
  emit<T extends DocketEventType>(source: string, type: T, payload: DocketEventMap[T]): void {
    if (!tapped(this.#hooks.event)) return;
    const event = { type, payload, source, at: new Date() } as DocketEvent;
    this.#hooks.event.promise(event).catch((error) => this.logger.error('event hook failed', { error, type }));
  }

  /** Sends `payload` to every app listening on `topic` (in any process); inside `sql` when it is a transaction, delivered on commit. */
  async notify(topic: string, payload: string, sql: postgres.Sql | postgres.TransactionSql = this.sql): Promise<void> {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(topic)) throw new InvalidOptionError(`notify: invalid topic ${describe(topic)}.`);
    await (sql as postgres.Sql).unsafe(`SELECT pg_notify($1, $2)`, [this.channel, `x:${topic}:${payload}`]);
  }

  /** Calls `fn` for every `notify(topic, …)` in any process. Resolves once listening. */
  async listen(topic: string, fn: (payload: string) => void): Promise<() => void> {
    if (!this.#notifier.enabled) throw new InvalidOptionError('listen() needs LISTEN/NOTIFY, but this app was created with `listen: false`.');
    const prefix = `${topic}:`;
    const off = this.#notifier.on('x', (body) => {
      if (body.startsWith(prefix)) fn(body.slice(prefix.length));
    });
    await this.#notifier.start();
    return off;
  }

  /**
   * Calls `fn` for every job activity the database announces, from any process: jobs pushed,
   * scheduled, settled, a cancel requested, a queue paused (see `JobActivity`). For views that
   * refresh when jobs move (a dashboard, an exporter). Uses the app's one LISTEN connection, plus
   * the settled-jobs channel, which carries one notification per completion batch. Resolves once
   * listening, with a function that stops.
   */
  async listenActivity(fn: (activity: JobActivity) => void): Promise<() => void> {
    this.#assertOpen();
    if (typeof fn !== 'function') throw new InvalidOptionError(`listenActivity(fn): \`fn\` must be a function, got ${describe(fn)}.`);
    if (!this.#notifier.enabled) {
      throw new InvalidOptionError(
        'listenActivity() needs LISTEN/NOTIFY, but this app was created with `listen: false`: refresh on a timer instead.',
      );
    }
    return subscribeActivity(this.#notifier, fn);
  }

  // ---------------------------------------------------------------------------------------------
  // Lifecycle

  get closed(): boolean {
    return this.#closed;
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError('This Docket app is closed; create a new one.');
  }

  /** Stops listening and ends the pool Docket created (never a pool you passed in). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const set of this.#waiters.values()) {
      set.forEach((wake) => {
        wake();
      });
    }
    await this.#notifier.stop();
    // Owning the listen pool implies there is one.
    if (this.#ownsListenPool && this.#listenSql) await this.#listenSql.end({ timeout: 5 });
    if (this.#ownsPool) await Promise.all([this.sql.end({ timeout: 5 }), this.#workerPool?.end({ timeout: 5 })]);
  }

  /** Closes the app (as `close()`), for `await using app = new Docket(…)`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ---------------------------------------------------------------------------------------------
  // Operations (operations.ts): for command lines, dashboards and metrics exporters

  #operations: Operations | undefined;

  get #ops(): Operations {
    this.#assertOpen();
    return (this.#operations ??= new Operations(this));
  }

  /** One page of jobs by queue, name, state and creation time, newest (or oldest) first; pass `nextCursor` back for the next page. */
  async listJobs(options: ListJobsOptions = {}): Promise<JobPage> {
    const page = await this.#ops.listJobs(options);
    if (this.#codec.decodesJobs && page.jobs.length > 0) await this.#codec.decodeRecords(page.jobs);
    return page;
  }

  /** Jobs per (queue, state): exact for pending, running and waiting; large finished groups may be estimates (`exact: false`). */
  async countJobs(options: CountJobsOptions = {}): Promise<JobCount[]> {
    return this.#ops.countJobs(options);
  }

  /** Puts a failed or cancelled job back to pending with one more attempt allowed, keeping its attempts and errors. */
  async retryJob<A = unknown, R = unknown>(ref: JobRef<A, R> | RefInput): Promise<JobRecord<A, R>> {
    const job = (await this.#ops.retryJob(refId(ref))) as JobRecord<A, R>;
    if (this.#codec.decodesJobs) await this.#codec.decodeRecords([job]);
    return job;
  }

  /** Retries every failed (or, when asked, cancelled) job matching the filter; returns their ids. */
  async retryJobs(filter: RetryJobsFilter): Promise<string[]> {
    return this.#ops.retryJobs(filter);
  }

  /** Pushes a succeeded job again as a new job (`meta.rerunOf` names the original); returns the new job's reference. */
  async rerunJob<A = unknown, R = unknown>(ref: JobRef<A, R> | RefInput, options: RerunOptions = {}): Promise<JobRef<A, R>> {
    return (await this.#ops.rerunJob(refId(ref), options)) as JobRef<A, R>;
  }

  /** Jobs that finished in a window (default the last hour) per queue and bucket (default a minute), by final state. */
  async jobThroughput(options: ThroughputOptions = {}): Promise<Throughput> {
    return this.#ops.jobThroughput(options);
  }

  /** Workers with a live heartbeat row: host, pid, queues, start, heartbeat age and the jobs each runs now. */
  async listWorkers(options: ListWorkersOptions = {}): Promise<WorkerInfo[]> {
    return this.#ops.listWorkers(options);
  }

  /** Per queue with pending jobs: the earliest due time among them and how long ago it was (0 when none is due yet). */
  async queueLag(options: QueueLagOptions = {}): Promise<QueueLag[]> {
    this.#assertOpen();
    return queueLagOf(this, options);
  }
}

// Every public method that reaches the database explains the driver's connection and missing-table
// errors (DOCKET_CONNECTION_FAILED, DOCKET_MIGRATIONS_PENDING): see driver-errors.ts; and, when its
// statements are prepared, refuses to run behind a pooler that would lose them: see pooler-check.ts.
const DATABASE_METHODS = [
  'migrate',
  'pendingMigrations',
  'assertMigrated',
  'push',
  'pushMany',
  'getJob',
  'waitForJob',
  'onProgress',
  'cancelJob',
  'settleJobs',
  'deleteJobs',
  'wake',
  'declareQueue',
  'pauseQueue',
  'resumeQueue',
  'listQueues',
  'notify',
  'listen',
  'listenActivity',
  'listJobs',
  'countJobs',
  'retryJob',
  'retryJobs',
  'rerunJob',
  'listWorkers',
  'queueLag',
  'jobThroughput',
] as const;
const poolerChecks = new WeakMap<object, PoolerCheck>();
explainDriverErrorsOf(Docket.prototype, DATABASE_METHODS);
checkPoolerBefore(Docket.prototype, DATABASE_METHODS, (app) => {
  const check = poolerChecks.get(app);
  if (!check) throw new Error('Docket: an app without its pooler check (constructed outside its constructor?)');
  return check;
});

/** A postgres.js pool from a URL; a URL the driver cannot parse is DOCKET_CONNECTION_FAILED (its own error would echo the URL). */
function openPool(url: string, options: postgres.Options<Record<string, postgres.PostgresType>>): postgres.Sql {
  // Waits between connection attempts grow with the outage (postgres.js' own grow to 20 s, so after
  // a server restart of a few seconds the pool came back up to 20 s after the server did).
  const backoff = reconnectBackoff();
  try {
    const sql = postgres(url, { backoff: backoff.delay, ...options });
    observeSessions(sql, backoff.connected);
    return sql;
  } catch (error) {
    throw invalidUrlError(error);
  }
}

function refId(ref: RefInput): string {
  const id = typeof ref === 'string' ? ref : ref?.id;
  if (typeof id !== 'string' || !/^\d{1,19}$/.test(id)) {
    throw new InvalidOptionError(`Expected a job reference (from push) or a job id, got ${describe(ref)}.`);
  }
  return id;
}

function toInsertRow(invocation: JobInvocation): JobInsert {
  const { options } = invocation;
  return {
    queue: options.queue,
    name: invocation.name,
    args: invocation.args,
    priority: options.priority,
    maxAttempts: options.maxAttempts,
    scheduledAt: options.scheduledAt,
    delayMs: options.delayMs,
    limits: { ...options.limits },
    meta: { ...options.meta },
    extensions: { ...options.extensions },
    columns: {},
  };
}
