/**
 * @docket/plugin-logs — per-job log lines (django-cq's task log).
 *
 *   const logs = jobLogs({ limit: 1000 });
 *   const app = new Docket({ connection, plugins: [logs] });
 *   const job = defineJob({ name: 'import' }, async (args, ctx) => {
 *     ctx.log?.('starting');
 *     ctx.log?.(`row ${i}`, { level: 'debug', publish: false }); // kept here until the next published line
 *   });
 *   await logs.getLogs(ref);                          // oldest first
 *   const stop = await logs.followLogs(ref, (line) => console.log(line.message));
 *
 * Lines are buffered per attempt and written in batches (one INSERT … unnest per batch for every
 * attempt of the worker), the rest inside the completion transaction of the attempt's outcome.
 * Each job keeps its newest `limit` lines (older ones are deleted in the same transaction as the
 * write). A subtask's lines — a job whose meta names `rootId` (and `parentId`) — also show on its
 * top-level job (and its parent). Followers hear written lines through the app's NOTIFY topic.
 */
import {
  booleanOption,
  type DocketPlugin,
  InvalidOptionError,
  integerOption,
  type JobRef,
  oneOfOption,
  pluginBinding,
  type RunningJob,
  rejectUnknownKeys,
  type Settlement,
  type SqlClient,
} from '@docket/core';
import { type Entry, LogBuffer } from './buffer.js';
import { type LineRow, LOG_LEVELS, type LogLevel, linesAfter, linesDelete, linesInsert, linesRead, linesTrim, MIGRATIONS } from './sql.js';

export { LOG_LEVELS, type LogLevel };

export const PLUGIN_NAME = 'logs';
const VERSION = '0.1.0';
/** The `app.notify`/`app.listen` topic written lines are announced on. */
export const LOGS_TOPIC = 'logs';
/** Job meta keys that make a job a subtask whose lines are forwarded (the contract with plugin-workflow). */
export const ROOT_META_KEY = 'rootId';
export const PARENT_META_KEY = 'parentId';
/** Longest message stored, in characters; longer ones are cut and marked. */
export const MAX_MESSAGE_LENGTH = 65_536;

export interface LogOptions {
  /** Default 'info'. */
  level?: LogLevel;
  /**
   * Default true: the line (and every line of this attempt before it) is written with the next
   * batch. `false` keeps it in the worker's memory until the next published line or the outcome.
   */
  publish?: boolean;
}

export type LogFn = (message: string, options?: LogOptions) => void;

declare module '@docket/core' {
  interface JobContextExtensions {
    /** Adds a line to this job's log (plugin-logs; async executor only). */
    log: LogFn;
  }
}

/** One stored line. */
export interface LogLine {
  /** The job that logged it (a subtask's id when it was forwarded). */
  readonly jobId: string;
  readonly attempt: number;
  /** Position within the attempt, from 0. */
  readonly seq: number;
  /** The top-level job it was forwarded to, if any. */
  readonly rootId: string | null;
  /** The parent it was forwarded to, when that is not the top-level job. */
  readonly parentId: string | null;
  /** When it was logged (clock of the worker's process). */
  readonly at: Date;
  readonly level: LogLevel;
  readonly message: string;
}

export interface JobLogsOptions {
  /** Lines kept per job: the newest N (of all its attempts). Default 1000. */
  limit?: number;
  /** Most lines per write; this many waiting lines are written at once. Default 500. */
  batchSize?: number;
  /** A published line waits at most this long before it is written. Default 200 ms. */
  flushIntervalMs?: number;
  /** Lines below this level are dropped. Default 'debug' (keep all). */
  minLevel?: LogLevel;
  /** Store `meta.rootId` / `meta.parentId` so subtask lines show on those jobs. Default true. */
  forward?: boolean;
  /** Announce written lines for `followLogs` (NOTIFY in the writing transaction). Default true. */
  live?: boolean;
}

const OPTION_KEYS = ['limit', 'batchSize', 'flushIntervalMs', 'minLevel', 'forward', 'live'] as const;

export interface ReadOptions {
  /** Include lines forwarded from subtasks (as root or parent). Default true. */
  tree?: boolean;
  /** Only the newest N lines (still returned oldest first). Default: all kept lines. */
  limit?: number;
}

export interface FollowOptions {
  /** Include lines forwarded from subtasks. Default true. */
  tree?: boolean;
  /** First deliver the lines already stored. Default true. */
  history?: boolean;
}

export interface JobLogsPlugin extends DocketPlugin {
  /** The job's stored lines (with its subtasks' when `tree`), oldest first. */
  getLogs(ref: JobRef | { id: string } | string, options?: ReadOptions): Promise<LogLine[]>;
  /**
   * Calls `onLine` for the job's lines as they are written (after the stored ones, with
   * `history`), from any worker process. Resolves once following, with a function that stops.
   */
  followLogs(ref: JobRef | { id: string } | string, onLine: (line: LogLine) => unknown, options?: FollowOptions): Promise<() => void>;
  /** Writes every buffered line of this process now (published or not). */
  flush(): Promise<void>;
}

export function jobLogs(options: JobLogsOptions = {}): JobLogsPlugin {
  const where = 'jobLogs(options)';
  rejectUnknownKeys(where, options, OPTION_KEYS);
  const settings = Object.freeze({
    limit: integerOption(where, 'limit', options.limit, 1000, { min: 1, max: 10_000_000 }),
    batchSize: integerOption(where, 'batchSize', options.batchSize, 500, { min: 1, max: 10_000 }),
    flushIntervalMs: integerOption(where, 'flushIntervalMs', options.flushIntervalMs, 200, { min: 0, max: 60_000 }),
    minLevel: oneOfOption<LogLevel>(where, 'minLevel', options.minLevel, LOG_LEVELS, 'debug'),
    forward: booleanOption(where, 'forward', options.forward, true),
    live: booleanOption(where, 'live', options.live, true),
  });
  const minRank = LOG_LEVELS.indexOf(settings.minLevel);
  const binding = pluginBinding(PLUGIN_NAME, 'jobLogs');
  let buffer: LogBuffer | null = null;

  /** Insert, trim to `limit`, announce — all in the caller's transaction. */
  async function writeLines(sql: SqlClient, rows: LineRow[]): Promise<void> {
    const target = binding.app();
    const inserted = await linesInsert(sql, target.schema, rows);
    // A job can exceed the cap only with a line at seq ≥ limit, or lines of an earlier attempt.
    const over = new Set<string>();
    for (const r of rows) if (r.attempt > 1 || r.seq >= settings.limit) over.add(r.jobId);
    const work: Array<Promise<unknown>> = over.size > 0 ? [linesTrim(sql, target.schema, { jobIds: [...over], limit: settings.limit })] : [];
    if (settings.live && inserted.length > 0) {
      for (const payload of encodeNotices(inserted.map(({ i }) => rows[i]))) work.push(target.notify(LOGS_TOPIC, payload, sql));
    }
    await Promise.all(work);
  }

  function forwarding(job: RunningJob): { rootId: string | null; parentId: string | null } {
    if (!settings.forward) return { rootId: null, parentId: null };
    const parent = idFrom(job.meta[PARENT_META_KEY]);
    const root = idFrom(job.meta[ROOT_META_KEY]) ?? parent;
    const rootId = root !== null && root !== job.id ? root : null;
    const parentId = parent !== null && parent !== job.id && parent !== rootId ? parent : null;
    return { rootId, parentId };
  }

  async function getLogs(ref: JobRef | { id: string } | string, readOptions: ReadOptions = {}): Promise<LogLine[]> {
    const target = binding.app('getLogs');
    rejectUnknownKeys('getLogs(ref, options)', readOptions, ['tree', 'limit']);
    const tree = booleanOption('getLogs(ref, options)', 'tree', readOptions.tree, true);
    const limit = readOptions.limit === undefined ? null : integerOption('getLogs(ref, options)', 'limit', readOptions.limit, 0, { min: 1 });
    return linesRead(target.sql, target.schema, { jobId: refId(ref), tree, limit });
  }

  async function followLogs(
    ref: JobRef | { id: string } | string,
    onLine: (line: LogLine) => unknown,
    followOptions: FollowOptions = {},
  ): Promise<() => void> {
    const target = binding.app('followLogs');
    rejectUnknownKeys('followLogs(ref, onLine, options)', followOptions, ['tree', 'history']);
    if (typeof onLine !== 'function') throw new InvalidOptionError('followLogs(ref, onLine, options): `onLine` must be a function.');
    const id = refId(ref);
    const tree = booleanOption('followLogs(ref, onLine, options)', 'tree', followOptions.tree, true);
    const history = booleanOption('followLogs(ref, onLine, options)', 'history', followOptions.history, true);
    const matches = (n: Notice) => n.jobId === id || (tree && (n.rootId === id || n.parentId === id));
    let stopped = false;
    const emit = (line: LogLine) => {
      try {
        const r = onLine(line);
        if (r !== null && typeof r === 'object' && typeof (r as Promise<unknown>).then === 'function') {
          (r as Promise<unknown>).then(undefined, (error) => target.logger.error(`${PLUGIN_NAME}: a followLogs callback failed`, { error }));
        }
      } catch (error) {
        target.logger.error(`${PLUGIN_NAME}: a followLogs callback failed`, { error });
      }
    };
    // Per attempt, the last seq delivered: a notice makes the follower read the lines after it.
    const cursors = new Map<string, number>();
    const due = new Map<string, Notice>();
    let live = false;
    let reading: Promise<void> | null = null;
    const catchUp = (): Promise<void> =>
      (reading ??= (async () => {
        while (!stopped && due.size > 0) {
          const [key, notice] = due.entries().next().value as [string, Notice];
          due.delete(key);
          const afterSeq = cursors.get(key) ?? -1;
          if (afterSeq >= notice.lastSeq) continue;
          try {
            for (const line of await linesAfter(target.sql, target.schema, { jobId: notice.jobId, attempt: notice.attempt, afterSeq })) {
              if (stopped) return;
              cursors.set(key, line.seq);
              emit(line);
            }
          } catch (error) {
            target.logger.error(`${PLUGIN_NAME}: following job ${id} failed to read new lines`, { error });
          }
        }
      })().finally(() => {
        reading = null;
        if (!stopped && due.size > 0) void catchUp();
      }));
    const off = await target.listen(LOGS_TOPIC, (payload) => {
      let notices: Notice[];
      try {
        notices = decodeNotices(payload);
      } catch (error) {
        target.logger.warn(`${PLUGIN_NAME}: ignored a malformed logs notification`, { error });
        return;
      }
      for (const notice of notices) {
        if (!matches(notice)) continue;
        const key = `${notice.jobId}:${notice.attempt}`;
        const known = due.get(key);
        if (!known || known.lastSeq < notice.lastSeq) due.set(key, notice);
      }
      if (live && due.size > 0) void catchUp();
    });
    try {
      // Stored lines set the cursors (and are delivered first, with `history`).
      for (const line of await linesRead(target.sql, target.schema, { jobId: id, tree, limit: null })) {
        const key = `${line.jobId}:${line.attempt}`;
        cursors.set(key, Math.max(line.seq, cursors.get(key) ?? -1));
        if (history) emit(line);
      }
    } catch (error) {
      off();
      throw error;
    }
    live = true;
    if (due.size > 0) void catchUp();
    return () => {
      stopped = true;
      off();
    };
  }

  const plugin: JobLogsPlugin = {
    name: PLUGIN_NAME,
    version: VERSION,
    migrations: MIGRATIONS,
    getLogs,
    followLogs,
    flush: () => buffer?.flush(true) ?? Promise.resolve(),
    // The dashboard's extension point (a registered symbol: no import of the dashboard here); the
    // panel module is loaded only when a dashboard asks.
    [Symbol.for('docket.dashboard.panels')]: () => import('./dashboard.js').then((m) => m.logsPanels(plugin)),
    apply(target) {
      binding.bind(target);
      const buf = (buffer = new LogBuffer(settings, (rows) => target.sql.begin((tx) => writeLines(tx, rows)) as Promise<void>, target.logger));

      // Made on the handler's first read of ctx.log: a job that never logs costs nothing.
      target.defineJobContextField('log', (ctx) => {
        const job = ctx.job;
        let entry: Entry | undefined;
        return (message: string, logOptions?: LogOptions) => {
          let level: LogLevel = 'info';
          let publish = true;
          if (logOptions !== undefined) {
            rejectUnknownKeys('ctx.log options', logOptions, ['level', 'publish']);
            level = oneOfOption<LogLevel>('ctx.log', 'level', logOptions.level, LOG_LEVELS, 'info');
            publish = booleanOption('ctx.log', 'publish', logOptions.publish, true);
          }
          if (entry === undefined) {
            const { rootId, parentId } = forwarding(job);
            entry = buf.entry(job, rootId, parentId);
          }
          const kept = LOG_LEVELS.indexOf(level) >= minRank;
          buf.add(entry, kept ? level : null, kept ? clip(typeof message === 'string' ? message : String(message)) : '', publish);
        };
      });

      // What is left of an attempt is written with its outcome, in the completion transaction.
      // Only attempts that logged: a job that wrote no line is settled without this plugin.
      const logged = (s: Settlement) => buf.has(s.job.id, s.job.attempt);
      target.hooks.settle.tapPromise({ name: PLUGIN_NAME, wants: logged }, async (settlements, ctx) => {
        const claims = await buf.claim(settlements.filter(logged).map((s) => ({ id: s.job.id, attempt: s.job.attempt })));
        if (claims.length === 0) return settlements;
        const rows = claims.flatMap((c) => c.rows);
        if (rows.length > 0) await writeLines(ctx.sql, rows);
        ctx.afterCommit(() => {
          for (const c of claims) buf.release(c.entry, c.lastSeq);
        });
        return settlements;
      });

      // Lines of attempts given back at shutdown (no outcome) are written before the worker goes.
      target.hooks.workerStopping.tapPromise(PLUGIN_NAME, async () => {
        await buf.drain().catch((error) => target.logger.error(`${PLUGIN_NAME}: lines still buffered at shutdown could not be written`, { error }));
      });

      target.hooks.jobsDeleted.tapPromise(PLUGIN_NAME, async ({ sql, ids }) => {
        await linesDelete(sql, target.schema, ids);
      });
    },
  };
  return plugin;
}

function clip(message: string): string {
  return message.length <= MAX_MESSAGE_LENGTH ? message : `${message.slice(0, MAX_MESSAGE_LENGTH - 14)}… [truncated]`;
}

function idFrom(value: unknown): string | null {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) return String(value);
  if (typeof value === 'string' && /^[1-9]\d{0,18}$/.test(value)) return value;
  return null;
}

function refId(ref: JobRef | { id: string } | string): string {
  const id = typeof ref === 'string' ? ref : ref?.id;
  if (typeof id !== 'string' || !/^\d{1,19}$/.test(id)) {
    throw new InvalidOptionError(`${PLUGIN_NAME}: expected a job reference (from push) or a job id.`);
  }
  return id;
}

// ---------------------------------------------------------------------------------------------
// Notices on the wire: which attempts got new lines (not the lines: followers read those, so a
// worker's own LISTEN connection is not flooded with every line it writes).

/** What a follower learns from a notification: an attempt has lines up to `lastSeq`. */
export interface Notice {
  readonly jobId: string;
  readonly rootId: string | null;
  readonly parentId: string | null;
  readonly attempt: number;
  readonly lastSeq: number;
}

const MAX_PAYLOAD_BYTES = 7900 - Buffer.byteLength(`x:${LOGS_TOPIC}:`);
type WireNotice = [jobId: string, rootId: string | null, parentId: string | null, attempt: number, lastSeq: number];

export function encodeNotices(rows: readonly LineRow[]): string[] {
  const last = new Map<string, LineRow>();
  for (const r of rows) {
    const key = `${r.jobId}:${r.attempt}`;
    const known = last.get(key);
    if (!known || known.seq < r.seq) last.set(key, r);
  }
  const out: string[] = [];
  let batch: string[] = [];
  let size = 2;
  for (const r of last.values()) {
    const text = JSON.stringify([r.jobId, r.rootId, r.parentId, r.attempt, r.seq] satisfies WireNotice);
    const n = Buffer.byteLength(text) + 1;
    if (size + n > MAX_PAYLOAD_BYTES && batch.length > 0) {
      out.push(`[${batch.join(',')}]`);
      batch = [];
      size = 2;
    }
    batch.push(text);
    size += n;
  }
  if (batch.length > 0) out.push(`[${batch.join(',')}]`);
  return out;
}

export function decodeNotices(payload: string): Notice[] {
  const rows = JSON.parse(payload) as WireNotice[];
  if (!Array.isArray(rows)) throw new Error('not a logs payload');
  return rows.map(([jobId, rootId, parentId, attempt, lastSeq]) => ({ jobId, rootId, parentId, attempt, lastSeq }));
}
