/**
 * The one catalogue of user-facing errors. Every error a user can cause is a `DocketError` with a
 * stable `code`; the code is the contract (messages may improve). `docs/ERRORS.md` lists every code
 * below and no other — a test holds the two together.
 */

export const ERROR_CODES = {
  DOCKET_INVALID_OPTION: 'An option passed to a Docket constructor or method is missing, unknown or out of range.',
  DOCKET_INVALID_SCHEMA: 'The schema name is not a valid SQL identifier.',
  DOCKET_INVALID_QUEUE_NAME: 'A queue name is empty, too long or contains characters other than letters, digits, `_ - . :`.',
  DOCKET_INVALID_JOB_NAME: 'A job name is empty, too long or contains characters other than letters, digits, `_ - . : /`.',
  DOCKET_INVALID_JOB_OPTION: 'A job option (priority, maxAttempts, delay, scheduledAt, limits, retry, meta) is out of range.',
  DOCKET_ARGS_NOT_SERIALIZABLE:
    'Job arguments (or meta, or `ctx.progress` data) cannot be stored as JSON: BigInt, function, symbol, Map, Set, cycle, non-finite number or undefined in an array.',
  DOCKET_RESULT_NOT_SERIALIZABLE: "A handler's return value cannot be stored as JSON; the attempt fails.",
  DOCKET_JOB_NOT_FOUND: 'No job with that id exists (it may have been pruned).',
  DOCKET_WAIT_TIMEOUT: 'waitForJob gave up before the job settled.',
  DOCKET_UNKNOWN_JOB: 'A worker fetched a job whose name it has no handler for; the attempt fails.',
  DOCKET_LIMIT_EXCEEDED: 'A job ran over its time or memory limit and was stopped.',
  DOCKET_JOB_CANCELLED: 'The job was cancelled while it ran (the reason of its aborted ctx.signal).',
  DOCKET_WORKER_SHUTDOWN: 'The worker stopped before the job finished (the reason of its aborted ctx.signal).',
  DOCKET_CONNECTION_FAILED:
    'Docket could not connect to PostgreSQL: the server refused or did not answer in time, the host is unknown, the user or password is wrong, the database does not exist, or the URL is malformed. `details.reason` says which; the driver error is the `cause`.',
  DOCKET_MIGRATIONS_PENDING: 'The database schema is behind the code; run app.migrate() (or `docket migrate`).',
  DOCKET_SCHEMA_TOO_NEW: 'The database holds migrations newer than this code knows; upgrade the code before running it.',
  DOCKET_MIGRATION_FAILED: 'A migration failed; it was rolled back and nothing after it ran.',
  DOCKET_PLUGIN_INVALID:
    'A plugin is not of the plugin shape, is registered twice, or needs a plugin that is not registered; or a plugin value is used before it is registered with an app, or registered with a second app.',
  DOCKET_PLUGIN_FAILED: 'A plugin threw inside a hook; the error names the plugin and the hook.',
  DOCKET_EXECUTOR_FAILED: 'A thread or process executor could not load or run the job (its jobsModule is missing or broken).',
  DOCKET_CLOSED: 'The app or worker was used after close()/stop().',
  DOCKET_WORKER_STATE: 'worker.start() was called on a worker that is already running or stopped.',
  DOCKET_JOB_STATE: 'The job is not in a state the operation applies to (only failed or cancelled jobs are retried, only succeeded jobs re-run).',
  DOCKET_PUSH_TX_ABORTED:
    'A push inside your transaction (`{ tx }`) failed after it began writing; Docket left your transaction aborted (roll it back). The failure is the `cause`.',
  DOCKET_TX_UNSUPPORTED:
    'Push-time code used a postgres.js-only feature of `ctx.sql` while the push ran in a transaction another library owns (a TransactionAdapter).',
  DOCKET_CONFIG_INVALID:
    'A config module given to the `docket` command line cannot be loaded, or its default export is not a Docket app, `{ app, worker }`, or a function returning one (`docket worker` needs `worker`).',
  DOCKET_POOLER_INCOMPATIBLE:
    'A connection pooler between Docket and PostgreSQL (PgBouncer in transaction mode) cannot do what the app is set up for: keep named prepared statements, keep a LISTEN, or accept a startup parameter Docket sends. `details.feature` says which; the message says what to configure.',
} as const;

/** Every code of the core's catalogue (plugins' codes are `PluginErrorCode`s). */
export type DocketErrorCode = keyof typeof ERROR_CODES;

/**
 * A code a plugin declared with `definePluginErrors` (`DOCKET_<PLUGIN>_<WHAT>`). The `& {}` keeps
 * the core's literal codes from being absorbed into the pattern, so editors still suggest them.
 */
export type PluginErrorCode = `DOCKET_${string}` & {};

/** Any code a DocketError can carry: the core's catalogue or a plugin's. */
export type AnyErrorCode = DocketErrorCode | PluginErrorCode;

/**
 * The base of every user-facing error: a stable `code` (the contract), a message for people and
 * `details` for programs. `instanceof` a subclass, or `isDocketError(error, code)`, tells which.
 */
export class DocketError extends Error {
  readonly code: AnyErrorCode;
  /** Structured details for programs (the message is for people). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: AnyErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = Object.freeze({ ...(options.details ?? {}) });
  }

  override get name(): string {
    return this.constructor.name;
  }
}

function errorClass<C extends DocketErrorCode>(code: C) {
  return class extends DocketError {
    declare readonly code: C;
    constructor(message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
      super(code, message, options);
    }
  };
}

// One class per code, so users can `instanceof` the kind they care about.
/** `DOCKET_INVALID_OPTION`: An option passed to a Docket constructor or method is missing, unknown or out of range. */
export class InvalidOptionError extends errorClass('DOCKET_INVALID_OPTION') {}
/** `DOCKET_INVALID_SCHEMA`: The schema name is not a valid SQL identifier. */
export class InvalidSchemaError extends errorClass('DOCKET_INVALID_SCHEMA') {}
/** `DOCKET_INVALID_QUEUE_NAME`: A queue name is empty, too long or contains characters other than letters, digits, `_ - . :`. */
export class InvalidQueueNameError extends errorClass('DOCKET_INVALID_QUEUE_NAME') {}
/** `DOCKET_INVALID_JOB_NAME`: A job name is empty, too long or contains characters other than letters, digits, `_ - . : /`. */
export class InvalidJobNameError extends errorClass('DOCKET_INVALID_JOB_NAME') {}
/** `DOCKET_INVALID_JOB_OPTION`: A job option (priority, maxAttempts, delay, scheduledAt, limits, retry, meta) is out of range. */
export class InvalidJobOptionError extends errorClass('DOCKET_INVALID_JOB_OPTION') {}
/** `DOCKET_ARGS_NOT_SERIALIZABLE`: Job arguments (or meta) cannot be stored as JSON: BigInt, function, symbol, cycle or undefined value. */
export class ArgsNotSerializableError extends errorClass('DOCKET_ARGS_NOT_SERIALIZABLE') {}
/** `DOCKET_RESULT_NOT_SERIALIZABLE`: A handler's return value cannot be stored as JSON; the attempt fails. */
export class ResultNotSerializableError extends errorClass('DOCKET_RESULT_NOT_SERIALIZABLE') {}
/** `DOCKET_JOB_NOT_FOUND`: No job with that id exists (it may have been pruned). */
export class JobNotFoundError extends errorClass('DOCKET_JOB_NOT_FOUND') {}
/** `DOCKET_WAIT_TIMEOUT`: waitForJob gave up before the job settled. */
export class WaitTimeoutError extends errorClass('DOCKET_WAIT_TIMEOUT') {}
/** `DOCKET_UNKNOWN_JOB`: A worker fetched a job whose name it has no handler for; the attempt fails. */
export class UnknownJobError extends errorClass('DOCKET_UNKNOWN_JOB') {}
/** `DOCKET_LIMIT_EXCEEDED`: A job ran over its time or memory limit and was stopped. */
export class LimitExceededError extends errorClass('DOCKET_LIMIT_EXCEEDED') {}
/** `DOCKET_JOB_CANCELLED`: The job was cancelled while it ran (the reason of its aborted ctx.signal). */
export class JobCancelledError extends errorClass('DOCKET_JOB_CANCELLED') {}
/** `DOCKET_WORKER_SHUTDOWN`: The worker stopped before the job finished (the reason of its aborted ctx.signal). */
export class WorkerShutdownError extends errorClass('DOCKET_WORKER_SHUTDOWN') {}
/** `DOCKET_CONNECTION_FAILED`:  */
export class ConnectionFailedError extends errorClass('DOCKET_CONNECTION_FAILED') {}
/** `DOCKET_MIGRATIONS_PENDING`: The database schema is behind the code; run app.migrate() (or `docket migrate`). */
export class MigrationsPendingError extends errorClass('DOCKET_MIGRATIONS_PENDING') {}
/** `DOCKET_SCHEMA_TOO_NEW`: The database holds migrations newer than this code knows; upgrade the code before running it. */
export class SchemaTooNewError extends errorClass('DOCKET_SCHEMA_TOO_NEW') {}
/** `DOCKET_MIGRATION_FAILED`: A migration failed; it was rolled back and nothing after it ran. */
export class MigrationFailedError extends errorClass('DOCKET_MIGRATION_FAILED') {}
/** `DOCKET_PLUGIN_INVALID`:  */
export class PluginInvalidError extends errorClass('DOCKET_PLUGIN_INVALID') {}
/** `DOCKET_PLUGIN_FAILED`: A plugin threw inside a hook; the error names the plugin and the hook. */
export class PluginFailedError extends errorClass('DOCKET_PLUGIN_FAILED') {
  get plugin(): string {
    return String(this.details.plugin);
  }
  get hook(): string {
    return String(this.details.hook);
  }
}
/** `DOCKET_EXECUTOR_FAILED`: A thread or process executor could not load or run the job (its jobsModule is missing or broken). */
export class ExecutorFailedError extends errorClass('DOCKET_EXECUTOR_FAILED') {}
/** `DOCKET_CLOSED`: The app or worker was used after close()/stop(). */
export class ClosedError extends errorClass('DOCKET_CLOSED') {}
/** `DOCKET_WORKER_STATE`: worker.start() was called on a worker that is already running or stopped. */
export class WorkerStateError extends errorClass('DOCKET_WORKER_STATE') {}
/** `DOCKET_JOB_STATE`: The job is not in a state the operation applies to (only failed or cancelled jobs are retried, only succeeded jobs re-run). */
export class JobStateError extends errorClass('DOCKET_JOB_STATE') {}
/** `DOCKET_POOLER_INCOMPATIBLE`: A connection pooler (PgBouncer in transaction mode) cannot keep named prepared statements or a LISTEN, or accept a startup parameter Docket sends; `details.feature` says which. */
export class PoolerIncompatibleError extends errorClass('DOCKET_POOLER_INCOMPATIBLE') {}

/** `DOCKET_PUSH_TX_ABORTED`: A push inside your transaction failed after it began writing; your transaction is left aborted (roll it back). */
export class PushTransactionAbortedError extends errorClass('DOCKET_PUSH_TX_ABORTED') {}
/** `DOCKET_TX_UNSUPPORTED`: Push-time code used a postgres.js-only feature of `ctx.sql` in a transaction another library owns. */
export class TransactionFeatureUnsupportedError extends errorClass('DOCKET_TX_UNSUPPORTED') {}
/** `DOCKET_CONFIG_INVALID`: A config module given to the `docket` command line cannot be loaded, or does not export what the command needs. */
export class ConfigInvalidError extends errorClass('DOCKET_CONFIG_INVALID') {}

/** Whether `error` is a DocketError (of `code`, when given: a core code or a plugin's). */
export function isDocketError(error: unknown, code?: AnyErrorCode): error is DocketError {
  return error instanceof DocketError && (code === undefined || error.code === code);
}
