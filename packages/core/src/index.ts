/**
 * @docket/core — the kernel: tables, migrations, the hook bus, the plugin API, the app, the
 * worker and its executors. Everything a plugin may use is exported here (and only here).
 */

export type { JobActivity } from './activity.js';
export { Docket, type DocketOptions, type PushOptions, type QueueOptions, type WaitingRelease, type WaitOptions } from './app.js';
export { defaultApplicationName } from './application-name.js';
export type { DocketConfig } from './cli/config.js';
export type { PayloadCodec } from './codec.js';
export * from './errors.js';
export {
  type AttemptRun,
  type AttemptStart,
  type ClaimContext,
  type ClaimTapOptions,
  type CodecContext,
  type DocketHooks,
  HOOK_STAGE,
  type JobsDeleted,
  type JobTapOptions,
  type MaintenanceContext,
  type MigrateContext,
  type PrimaryQuery,
  type PushConflicts,
  type PushContext,
  type PushTapOptions,
  type SettleContext,
  type SettleTapOptions,
  type TapOnly,
} from './hooks.js';
export { assertJobName, assertQueueName, assertSchemaName, quoteIdent } from './identifiers.js';
export {
  type AnyJobDefinition,
  type ArgsInput,
  type ArgsOf,
  type ArgsRequired,
  type ArgsRequiredMessage,
  type DefaultArgs,
  defineJob,
  type InvocationOf,
  type InvocationOptions,
  isJobDefinition,
  type JobDefinition,
  type JobHandler,
  JobInvocation,
  type JobOptions,
  type JsonHandlerCheck,
  type Pushable,
  type ResultOf,
} from './job-definition.js';
export { type Json, type JsonCompatible, type JsonObject, type JsonPayload, type NotJson, toJsonText } from './json.js';
export { consoleLogger, type Logger, silentLogger } from './logger.js';
export type { PendingMigration } from './migrator.js';
export {
  type CountJobsOptions,
  type JobCount,
  type JobFilter,
  type JobPage,
  type ListJobsOptions,
  type ListWorkersOptions,
  type QueueLag,
  type QueueLagOptions,
  RERUN_OF_META_KEY,
  type RerunOptions,
  type RetryableState,
  type RetryJobsFilter,
  type Throughput,
  type ThroughputBucket,
  type ThroughputOptions,
  type WorkerInfo,
} from './operations.js';
export { booleanOption, type IntegerRule, integerOption, oneOfOption, rejectUnknownKeys, suggest } from './options.js';
export {
  type PeriodicBinding,
  type PeriodicEvents,
  type PeriodicFailedEvent,
  type PeriodicFinishedEvent,
  type PeriodicRun,
  type PeriodicStartedEvent,
  type PeriodicTask,
  type PeriodicTaskOptions,
  periodicBinding,
  periodicTask,
} from './periodic.js';
export type { DocketPlugin, Migration } from './plugin.js';
export { type PluginBinding, pluginBinding } from './plugin-binding.js';
export { definePluginErrors, errorCodePrefix, PluginErrorCatalogue, type PluginErrorClass } from './plugin-errors.js';
export type { ErrorClass, ErrorMatcher, RetryOptions } from './retry.js';
export { sendNow } from './send-now.js';
export type { JobColumn } from './sql/jobs.js';
export type { ExecutorKind, QueueRecord } from './sql/queues.js';
export { type PushTransaction, type TransactionAdapter, transactionSql } from './transaction-adapter.js';
export {
  type AnyDocketEvent,
  type ClaimedJob,
  type DocketEvent,
  type DocketEventMap,
  type DocketEventType,
  FINISHED_STATES,
  type FinishedState,
  type InsertedJob,
  JOB_STATES,
  type JobContext,
  type JobContextExtensions,
  type JobError,
  type JobInsert,
  type JobLimits,
  type JobProgress,
  type JobRecord,
  type JobRef,
  type JobState,
  type Outcome,
  type PrimaryStatus,
  type RunningJob,
  type SettledJob,
  type Settlement,
  type SqlClient,
  type WorkerView,
} from './types.js';
export { Worker, type WorkerOptions, type WorkerQueueOptions } from './worker/worker.js';
