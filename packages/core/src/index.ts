/**
 * @docket/core — the kernel: tables, migrations, the hook bus, the plugin API, the app, the
 * worker and its executors. Everything a plugin may use is exported here (and only here).
 */
export { Docket, type DocketOptions, type PushOptions, type WaitOptions, type QueueOptions, type WaitingRelease } from './app.js';
export {
  RERUN_OF_META_KEY,
  type JobFilter,
  type ListJobsOptions,
  type JobPage,
  type CountJobsOptions,
  type JobCount,
  type RetryJobsFilter,
  type RetryableState,
  type RerunOptions,
  type ListWorkersOptions,
  type WorkerInfo,
} from './operations.js';
export { Worker, type WorkerOptions, type WorkerQueueOptions } from './worker/worker.js';
export {
  defineJob,
  JobInvocation,
  isJobDefinition,
  type JobDefinition,
  type JobHandler,
  type JobOptions,
  type InvocationOptions,
  type Pushable,
  type ArgsOf,
  type ResultOf,
  type ArgsInput,
  type DefaultArgs,
  type ArgsRequired,
  type ArgsRequiredMessage,
  type InvocationOf,
  type JsonHandlerCheck,
} from './job-definition.js';
export type { RetryOptions, ErrorMatcher, ErrorClass } from './retry.js';
export {
  JOB_STATES,
  FINISHED_STATES,
  type JobState,
  type FinishedState,
  type JobRecord,
  type JobRef,
  type JobError,
  type JobLimits,
  type JobContext,
  type JobContextExtensions,
  type RunningJob,
  type SqlClient,
  type WorkerView,
  type JobInsert,
  type InsertedJob,
  type ClaimedJob,
  type Outcome,
  type Settlement,
  type SettledJob,
  type PrimaryStatus,
  type DocketEvent,
  type DocketEventMap,
  type AnyDocketEvent,
  type DocketEventType,
} from './types.js';
export {
  HOOK_STAGE,
  type DocketHooks,
  type TapOnly,
  type PushContext,
  type PushConflicts,
  type ClaimContext,
  type ClaimTapOptions,
  type SettleTapOptions,
  type JobTapOptions,
  type SettleContext,
  type PrimaryQuery,
  type MaintenanceContext,
  type MigrateContext,
  type JobsDeleted,
  type CodecContext,
} from './hooks.js';
export type { PayloadCodec } from './codec.js';
export type { DocketPlugin, Migration } from './plugin.js';
export type { JobColumn } from './sql/jobs.js';
export type { QueueRecord, ExecutorKind } from './sql/queues.js';
export type { PendingMigration } from './migrator.js';
export {
  periodicBinding,
  periodicTask,
  type PeriodicBinding,
  type PeriodicTask,
  type PeriodicTaskOptions,
  type PeriodicRun,
  type PeriodicEvents,
  type PeriodicStartedEvent,
  type PeriodicFinishedEvent,
  type PeriodicFailedEvent,
} from './periodic.js';
export { pluginBinding, type PluginBinding } from './plugin-binding.js';
export { defaultApplicationName } from './application-name.js';
export { definePluginErrors, errorCodePrefix, PluginErrorCatalogue, type PluginErrorClass } from './plugin-errors.js';
export { type Logger, consoleLogger, silentLogger } from './logger.js';
export { rejectUnknownKeys, integerOption, booleanOption, oneOfOption, suggest, type IntegerRule } from './options.js';
export { assertQueueName, assertJobName, assertSchemaName, quoteIdent } from './identifiers.js';
export { toJsonText, type Json, type JsonObject, type JsonCompatible, type JsonPayload, type NotJson } from './json.js';
export * from './errors.js';
