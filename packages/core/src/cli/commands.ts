/**
 * The commands that read or change the database through the app's public API (the operations
 * API, queues, jobs): each prints a table for people or, with `--json`, one JSON document.
 */
import type { Docket } from '../app.js';
import { isDocketError } from '../errors.js';
import { cursorAfter } from '../operations.js';
import { JOB_STATES, type JobRecord, type JobState } from '../types.js';
import { type ArgSpec, intFlag, jobIdArg, type ParsedArgs, parseArgs, UsageError } from './args.js';
import { appFrom } from './config.js';
import { EXIT } from './exit-codes.js';
import { duration, table, time } from './table.js';

const CONNECT_FLAGS = ['url', 'schema', 'config'] as const;

export interface Command {
  readonly spec: ArgSpec;
  run(app: Docket, args: ParsedArgs, print: (text: string) => void): Promise<number>;
}

const json = (value: unknown) => JSON.stringify(value, null, 2);

const queues: Command = {
  spec: { flags: [...CONNECT_FLAGS], switches: ['json'] },
  async run(app, args, print) {
    noPositionals('queues', args);
    const [rows, counts, lag, workers] = await Promise.all([
      app.listQueues(),
      app.countJobs({ state: ['pending', 'running', 'waiting', 'failed'] }),
      app.queueLag(),
      app.listWorkers(),
    ]);
    const names = [...new Set([...rows.map((q) => q.name), ...counts.map((c) => c.queue)])].sort();
    const list = names.map((name) => {
      const row = rows.find((q) => q.name === name);
      const count = (state: JobState) => counts.find((c) => c.queue === name && c.state === state)?.count ?? 0;
      return {
        name,
        paused: row?.paused ?? false,
        pending: count('pending'),
        running: count('running'),
        waiting: count('waiting'),
        failed: count('failed'),
        lagMs: lag.find((l) => l.queue === name)?.lagMs ?? 0,
        workers: workers.filter((w) => w.queues.includes(name)).length,
      };
    });
    if (args.switches.has('json')) print(json(list));
    else if (list.length === 0) print('no queues');
    else
      print(
        table(
          ['queue', 'paused', 'pending', 'running', 'waiting', 'failed', 'lag', 'workers'],
          list.map((q) => [
            q.name,
            q.paused ? 'yes' : 'no',
            String(q.pending),
            String(q.running),
            String(q.waiting),
            String(q.failed),
            duration(q.lagMs),
            String(q.workers),
          ]),
        ),
      );
    return EXIT.OK;
  },
};

const queue: Command = {
  spec: { flags: [...CONNECT_FLAGS], switches: ['json'] },
  async run(app, args, print) {
    const [action, name, ...rest] = args.positionals;
    if (action !== 'pause' && action !== 'resume')
      throw new UsageError(action === undefined ? 'say pause or resume' : `unknown action '${action}'`, 'queue');
    if (name === undefined) throw new UsageError('a queue name is required', 'queue');
    if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}'`, 'queue');
    const record = action === 'pause' ? await app.pauseQueue(name) : await app.resumeQueue(name);
    print(args.switches.has('json') ? json(record) : `queue ${record.name} ${record.paused ? 'paused' : 'resumed'}`);
    return EXIT.OK;
  },
};

const jobs: Command = {
  spec: { flags: [...CONNECT_FLAGS, 'queue', 'state', 'name', 'limit', 'before'], switches: ['json'] },
  async run(app, args, print) {
    noPositionals('jobs', args);
    const state = args.flags.get('state');
    if (state !== undefined && !(JOB_STATES as readonly string[]).includes(state)) {
      throw new UsageError(`--state takes one of ${JOB_STATES.join(', ')}, got '${state}'`, 'jobs');
    }
    const limit = intFlag(args, 'jobs', 'limit', 20, 1, 1000);
    const before = args.flags.get('before');
    const page = await app.listJobs({
      ...(args.flags.has('queue') ? { queue: args.flags.get('queue') } : {}),
      ...(args.flags.has('name') ? { name: args.flags.get('name') } : {}),
      ...(state !== undefined ? { state: state as JobState } : {}),
      limit,
      // A page after job ID, newest first, is the page of jobs older than it.
      ...(before !== undefined ? { cursor: cursorAfter(jobIdArg(before, 'jobs')) } : {}),
    });
    const last = page.jobs[page.jobs.length - 1];
    const next = page.nextCursor !== null && last ? last.id : null;
    if (args.switches.has('json')) {
      print(json({ jobs: page.jobs, next }));
      return EXIT.OK;
    }
    if (page.jobs.length === 0) {
      print('no jobs');
      return EXIT.OK;
    }
    print(
      table(
        ['id', 'queue', 'name', 'state', 'attempt', 'created', 'finished'],
        page.jobs.map((j) => [j.id, j.queue, j.name, j.state, `${j.attempt}/${j.maxAttempts}`, time(j.createdAt), time(j.finishedAt)]),
      ),
    );
    if (next !== null) print(`more: add --before ${next}`);
    return EXIT.OK;
  },
};

const job: Command = {
  spec: { flags: [...CONNECT_FLAGS], switches: ['json'] },
  async run(app, args, print) {
    const [action, raw, ...rest] = args.positionals;
    if (action !== 'show' && action !== 'retry' && action !== 'cancel') {
      throw new UsageError(action === undefined ? 'say show, retry or cancel' : `unknown action '${action}'`, 'job');
    }
    const id = jobIdArg(raw, 'job');
    if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}'`, 'job');
    const record = action === 'show' ? await app.getJob(id) : action === 'retry' ? await app.retryJob(id) : await app.cancelJob(id);
    if (args.switches.has('json')) print(json(record));
    else if (action === 'show') print(describeJob(record));
    else
      print(
        `job ${record.id} is ${record.state}${action === 'cancel' && record.state === 'running' ? ' (cancellation requested: its handler is being aborted)' : ''}`,
      );
    return EXIT.OK;
  },
};

const workers: Command = {
  spec: { flags: [...CONNECT_FLAGS, 'queue'], switches: ['json'] },
  async run(app, args, print) {
    noPositionals('workers', args);
    const list = await app.listWorkers(args.flags.has('queue') ? { queue: args.flags.get('queue') } : {});
    if (args.switches.has('json')) print(json(list));
    else if (list.length === 0) print('no workers');
    else
      print(
        table(
          ['id', 'host', 'pid', 'queues', 'running', 'heartbeat', 'started'],
          list.map((w) => [
            w.id,
            w.hostname,
            String(w.pid),
            w.queues.join(','),
            String(w.runningJobs),
            `${duration(w.heartbeatAgeMs)} ago`,
            time(w.startedAt),
          ]),
        ),
      );
    return EXIT.OK;
  },
};

const stats: Command = {
  spec: { flags: [...CONNECT_FLAGS], switches: ['json'] },
  async run(app, args, print) {
    noPositionals('stats', args);
    const [counts, lag, list] = await Promise.all([app.countJobs(), app.queueLag(), app.listWorkers()]);
    const byState = Object.fromEntries(JOB_STATES.map((s) => [s, counts.filter((c) => c.state === s).reduce((n, c) => n + c.count, 0)])) as Record<
      JobState,
      number
    >;
    const exact = counts.every((c) => c.exact);
    const queuesWithJobs = new Set(counts.map((c) => c.queue)).size;
    const alive = list.filter((w) => w.heartbeatAgeMs < 3 * w.heartbeatIntervalMs).length;
    const worst = lag.reduce<(typeof lag)[number] | null>((a, l) => (a === null || l.lagMs > a.lagMs ? l : a), null);
    const result = {
      jobs: byState,
      exact,
      queues: queuesWithJobs,
      workers: list.length,
      workersAlive: alive,
      maxLag: worst ? { queue: worst.queue, lagMs: worst.lagMs } : null,
    };
    if (args.switches.has('json')) {
      print(json(result));
      return EXIT.OK;
    }
    print(
      table(
        ['state', 'jobs'],
        JOB_STATES.map((s) => [s, String(byState[s])]),
      ),
    );
    print('');
    print(`queues with jobs  ${queuesWithJobs}`);
    print(`workers           ${list.length} (${alive} alive)`);
    print(`max lag           ${worst ? `${duration(worst.lagMs)} (${worst.queue})` : '-'}`);
    if (!exact) print('(finished counts of large queues are estimates from the table statistics)');
    return EXIT.OK;
  },
};

function noPositionals(command: string, args: ParsedArgs): void {
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument '${args.positionals[0]}'`, command);
}

function describeJob(j: JobRecord): string {
  const lines = [
    `id          ${j.id}`,
    `name        ${j.name}`,
    `queue       ${j.queue}`,
    `state       ${j.state}`,
    `attempt     ${j.attempt} of ${j.maxAttempts}`,
    `priority    ${j.priority}`,
    `scheduled   ${time(j.scheduledAt)}`,
    `created     ${time(j.createdAt)}`,
    `started     ${time(j.startedAt)}`,
    `finished    ${time(j.finishedAt)}`,
    `worker      ${j.workerId ?? '-'}`,
    `args        ${JSON.stringify(j.args)}`,
    `result      ${JSON.stringify(j.result)}`,
    `meta        ${JSON.stringify(j.meta)}`,
  ];
  if (Object.keys(j.limits).length > 0) lines.push(`limits      ${JSON.stringify(j.limits)}`);
  for (const e of j.errors)
    lines.push(`error       attempt ${e.attempt} at ${e.at}: ${e.code ? `${e.code} ` : ''}${e.name}: ${e.message.split('\n')[0]}`);
  return lines.join('\n');
}

export const COMMANDS: Readonly<Record<string, Command>> = { queues, queue, jobs, job, workers, stats };

/** Runs one of COMMANDS: its arguments, its app (closed after), its output. */
export async function runCommand(name: string, command: Command, argv: readonly string[], print: (text: string) => void): Promise<number> {
  const args = parseArgs(name, argv, command.spec);
  const app = await appFrom(name, { url: args.flags.get('url'), schema: args.flags.get('schema'), config: args.flags.get('config') });
  try {
    return await command.run(app, args, print);
  } finally {
    await app.close().catch((error: unknown) => {
      if (!isDocketError(error)) throw error;
    });
  }
}
