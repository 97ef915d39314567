/**
 * The child side of the thread and process executors: the entry module of every worker thread
 * and child process they start (`runner.ts` from source, `runner.js` when built).
 *
 * It imports the worker's `jobsModule`, indexes every job definition it exports by `jobName`,
 * says `ready`, and then runs one attempt at a time as the parent asks:
 *
 *   parent → child  { type: 'run', id, name, args, job, workerId }
 *                   { type: 'abort', id, reason }          (aborts that attempt's ctx.signal)
 *   child → parent  { type: 'ready', jobs }  or  { type: 'load-failed', error }
 *                   { type: 'progress', id, value, data }  (ctx.progress: data as JSON text or null;
 *                                                          at most one per PROGRESS_SEND_MS, the
 *                                                          latest, and the last before 'done')
 *                   { type: 'done', id, ok: true, result }  or  { type: 'done', id, ok: false, error }
 *                   (with `memory`, in bytes, when the 'run' asked to `measure`: see `memoryInUse`)
 *
 * Errors cross as `{ name, message, stack, code, details }` (see `serializeError`) and are rebuilt
 * by `deserializeError`: Docket's own errors as their class (found by code), any other error as a
 * plain `Error` with the same name, message, stack and `code`. Class identity of user errors
 * cannot survive the crossing, so a retry policy's `noRetry: [MyError]` (or `retryOn`) never
 * matches an error thrown in a thread or process job — use a predicate on name, message or code.
 *
 * Imported for its helpers by the parent (pool.ts), this module does nothing: it serves only when
 * started as a runner (worker data marker in a thread, argv marker in a forked child).
 */
import { pathToFileURL } from 'node:url';
import { getHeapStatistics } from 'node:v8';
import { isMainThread, type MessagePort, parentPort, workerData } from 'node:worker_threads';
import * as errors from '../errors.js';
import { type AnyJobDefinition, isJobDefinition } from '../job-definition.js';
import { checkProgress, type ProgressReport } from '../progress.js';
import { describeThrown, NON_ERROR_NAME } from '../thrown.js';
import type { JobContext, RunningJob } from '../types.js';

/** Key of the thread's `workerData` that marks it as a runner. */
export const WORKER_DATA_KEY = '__docketRunner';
/** First argument of a forked runner process. */
export const RUNNER_ARG = '--docket-runner';

export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  code?: string;
  details?: Record<string, unknown>;
  /** Set when the handler threw a value that is not an Error: that value (or its text, when it cannot be cloned). */
  thrown?: { value: unknown };
}

export interface RunMessage {
  type: 'run';
  id: number;
  name: string;
  args: unknown;
  job: RunningJob;
  workerId: string | null;
  /** Say this runner's memory with the result (the worker recycles runners above a memory mark). */
  measure: boolean;
}
export interface AbortMessage {
  type: 'abort';
  id: number;
  reason: SerializedError;
}
export type ParentMessage = RunMessage | AbortMessage;

export type ChildMessage =
  | { type: 'ready'; jobs: string[] }
  | { type: 'load-failed'; error: SerializedError }
  | { type: 'progress'; id: number; value: number; data: string | null }
  | { type: 'done'; id: number; ok: true; result: unknown; memory?: number }
  | { type: 'done'; id: number; ok: false; error: SerializedError; memory?: number };

// -------------------------------------------------------------------------------------------------
// Errors across the boundary

/**
 * A structured-clone-safe description of a thrown value. A value that is not an Error crosses as
 * itself when it can be cloned (`thrown`), so the worker records and matches it as the handler threw
 * it (see thrown.ts), never as an Error with the runner's stack.
 */
export function serializeError(error: unknown): SerializedError {
  const description = describeThrown(error);
  const out: SerializedError = { name: description.name, message: description.message };
  if (description.stack !== undefined) out.stack = description.stack;
  if (description.code !== undefined) out.code = description.code;
  if (error instanceof errors.DocketError) {
    try {
      out.details = structuredClone({ ...error.details });
    } catch {
      // Details that cannot be cloned are dropped; name, message and code still cross.
    }
  }
  if (!(error instanceof Error) && description.name === NON_ERROR_NAME) {
    try {
      out.thrown = { value: structuredClone(error) };
    } catch {
      out.thrown = { value: description.message };
    }
  }
  return out;
}

type DocketErrorClass = new (message: string, options?: { details?: Record<string, unknown> }) => errors.DocketError;
let classesByCode: Map<string, DocketErrorClass> | null = null;

function docketErrorClass(code: string | undefined): DocketErrorClass | undefined {
  if (code === undefined || !code.startsWith('DOCKET_')) return undefined;
  if (!classesByCode) {
    classesByCode = new Map();
    for (const value of Object.values(errors) as unknown[]) {
      if (typeof value === 'function' && (value as { prototype?: unknown }).prototype instanceof errors.DocketError) {
        const Class = value as DocketErrorClass;
        classesByCode.set(new Class('').code, Class);
      }
    }
  }
  return classesByCode.get(code);
}

/** What the handler threw, as the worker sees it: a non-Error value as itself, an error rebuilt by `deserializeError`. */
export function deserializeThrown(e: SerializedError): unknown {
  return e.thrown ? e.thrown.value : deserializeError(e);
}

/** Rebuilds a serialized error: Docket's errors as their class, others as an Error with the same name. */
export function deserializeError(e: SerializedError): Error {
  const Class = docketErrorClass(e.code);
  let error: Error;
  if (Class) {
    error = new Class(e.message, e.details === undefined ? {} : { details: e.details });
  } else {
    error = new Error(e.message);
    Object.defineProperty(error, 'name', { value: e.name, writable: true, configurable: true, enumerable: false });
    if (e.code !== undefined) Object.defineProperty(error, 'code', { value: e.code, writable: true, configurable: true, enumerable: true });
  }
  error.stack = e.stack ?? `${e.name}: ${e.message}`;
  return error;
}

// -------------------------------------------------------------------------------------------------
// Loading the jobs module

/** `jobsModule` as a URL string: URLs stay as they are, paths are resolved against the working directory. */
export function jobsModuleUrl(jobsModule: string): string {
  // A scheme of two letters or more (file:, data:, node:); a single letter is a Windows drive.
  return /^[a-z][a-z0-9+.-]+:/i.test(jobsModule) ? jobsModule : pathToFileURL(jobsModule).href;
}

/**
 * Every job definition among a module's exports: named or default, a single definition, or an
 * array or plain object of them.
 */
export function collectJobs(exports: Record<string, unknown>, where: string): Map<string, AnyJobDefinition> {
  const jobs = new Map<string, AnyJobDefinition>();
  const add = (value: unknown) => {
    if (!isJobDefinition(value)) return;
    const existing = jobs.get(value.jobName);
    if (existing && existing !== value) {
      throw new errors.ExecutorFailedError(`${where} exports two different jobs named '${value.jobName}'.`);
    }
    jobs.set(value.jobName, value);
  };
  for (const value of Object.values(exports)) {
    if (isJobDefinition(value)) add(value);
    else if (Array.isArray(value)) value.forEach(add);
    else if (value !== null && typeof value === 'object') Object.values(value).forEach(add);
  }
  return jobs;
}

export async function loadJobs(jobsModule: string): Promise<Map<string, AnyJobDefinition>> {
  const url = jobsModuleUrl(jobsModule);
  const where = `jobsModule ${url}`;
  const exports = (await import(url)) as Record<string, unknown>;
  const jobs = collectJobs(exports, where);
  if (jobs.size === 0) {
    throw new errors.ExecutorFailedError(
      `${where} exports no job definitions (export the jobs made with defineJob, by name, as default, or in an array or object).`,
    );
  }
  return jobs;
}

// -------------------------------------------------------------------------------------------------
// Serving

interface Transport {
  send(message: ChildMessage): void;
  onMessage(listener: (message: ParentMessage) => void): void;
}

let started = false;

/**
 * This runner's memory, in bytes, for recycling above a memory mark: a child process's resident set
 * (what the system counts against it), a worker thread's V8 heap in use (threads share their
 * process's resident set, so only the heap is the thread's own).
 */
function memoryInUse(): number {
  return isMainThread ? process.memoryUsage.rss() : getHeapStatistics().used_heap_size;
}

/** Least time between two progress messages of one attempt: the worker stores at most a few a second anyway. */
const PROGRESS_SEND_MS = 10;

/**
 * One attempt's `ctx.progress` in a runner: checks each report where the handler made it (so a bad
 * one throws there), and sends the worker the latest at most every PROGRESS_SEND_MS, and the one
 * still held when the attempt ends, before its 'done' (the channel keeps their order).
 */
class ProgressSender {
  private pending: ProgressReport | null = null;
  private lastSent = 0;
  private timer: NodeJS.Timeout | null = null;
  private ended = false;

  constructor(
    private readonly transport: Transport,
    private readonly id: number,
  ) {}

  readonly report = (value: number, data?: unknown): void => {
    const checked = checkProgress(value, data);
    if (this.ended) return;
    this.pending = checked;
    const wait = this.lastSent + PROGRESS_SEND_MS - Date.now();
    if (wait <= 0) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), wait);
  };

  end(): void {
    this.flush();
    this.ended = true;
  }

  private flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const report = this.pending;
    if (report === null) return;
    this.pending = null;
    this.lastSent = Date.now();
    this.transport.send({ type: 'progress', id: this.id, value: report.value, data: report.dataText });
  }
}

function serve(transport: Transport, jobsModule: string, where: string): void {
  if (started) return;
  started = true;
  const running = new Map<number, AbortController>();
  let jobs: Map<string, AnyJobDefinition> | null = null;

  const reply = (message: ChildMessage & { type: 'done' }) => {
    try {
      transport.send(message);
    } catch (error) {
      if (!message.ok) throw error;
      // The result cannot be structured-cloned (a function, a class instance with private state, …).
      transport.send({
        type: 'done',
        id: message.id,
        ...(message.memory === undefined ? {} : { memory: message.memory }),
        ok: false,
        error: serializeError(
          new errors.ResultNotSerializableError(`The result of a job run in ${where} cannot be sent back to the worker: ${(error as Error).message}`),
        ),
      });
    }
  };

  const run = async (m: RunMessage) => {
    // The parent sends 'run' only after this runner said 'ready', which it says once the jobs are loaded.
    if (!jobs) throw new Error(`Docket runner in ${where}: asked to run job '${m.name}' (${m.job.id}) before its jobs module was loaded.`);
    const definition = jobs.get(m.name);
    if (!definition) {
      const known = [...jobs.keys()].map((n) => `'${n}'`).join(', ');
      reply({
        type: 'done',
        id: m.id,
        ok: false,
        error: serializeError(
          new errors.ExecutorFailedError(
            `Job '${m.name}' (${m.job.id}) is not exported by jobsModule ${jobsModuleUrl(jobsModule)} (it exports ${known}).`,
          ),
        ),
      });
      return;
    }
    const controller = new AbortController();
    running.set(m.id, controller);
    let progress: ProgressSender | null = null;
    const ctx: JobContext = {
      job: m.job,
      signal: controller.signal,
      // A getter: the sender is made only for handlers that report.
      get progress() {
        progress ??= new ProgressSender(transport, m.id);
        return progress.report;
      },
      sql: undefined,
      app: null,
      workerId: m.workerId,
    };
    try {
      const result = await definition.handler(m.args, ctx);
      (progress as ProgressSender | null)?.end();
      reply({ type: 'done', id: m.id, ok: true, result, ...(m.measure ? { memory: memoryInUse() } : {}) });
    } catch (error) {
      (progress as ProgressSender | null)?.end();
      reply({ type: 'done', id: m.id, ok: false, error: serializeError(error), ...(m.measure ? { memory: memoryInUse() } : {}) });
    } finally {
      running.delete(m.id);
    }
  };

  transport.onMessage((message) => {
    if (message.type === 'abort') running.get(message.id)?.abort(deserializeError(message.reason));
    else if (message.type === 'run') void run(message);
  });

  loadJobs(jobsModule).then(
    (loaded) => {
      jobs = loaded;
      transport.send({ type: 'ready', jobs: [...loaded.keys()] });
    },
    (error) => transport.send({ type: 'load-failed', error: serializeError(error) }),
  );
}

function startThread(port: MessagePort, jobsModule: string): void {
  serve(
    {
      send: (message) => port.postMessage(message),
      onMessage: (listener) => port.on('message', listener),
    },
    jobsModule,
    'a worker thread',
  );
}

function startProcess(jobsModule: string): void {
  // The worker owns this process: Ctrl-C in a terminal (SIGINT to the whole process group) and a
  // SIGTERM to the group must not end a job the worker is still waiting for during a graceful
  // stop. The worker ends this process with SIGKILL; if the worker goes away, so does this process.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => {});
  process.on('disconnect', () => process.exit(0));
  serve(
    {
      send: (message) => {
        // startProcess runs only in a forked child, which has its IPC channel (checked where it is called).
        if (!process.send) throw new Error('Docket runner: this child process has no IPC channel to its worker.');
        process.send(message, undefined, undefined, (error) => {
          if (error) process.exit(1); // the channel is gone: the worker is too
        });
      },
      onMessage: (listener) => process.on('message', listener as (message: unknown) => void),
    },
    jobsModule,
    `a child process (pid ${process.pid})`,
  );
}

const marker = isMainThread ? undefined : (workerData as Record<string, unknown> | null)?.[WORKER_DATA_KEY];
if (marker && typeof marker === 'object' && parentPort) {
  startThread(parentPort, String((marker as { jobsModule: string }).jobsModule));
} else if (isMainThread && process.send && process.argv[2] === RUNNER_ARG && process.argv[3]) {
  startProcess(process.argv[3]);
}
