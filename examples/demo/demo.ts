/**
 * `pnpm demo`: Docket end to end in a few seconds, on a machine with only Node.
 *
 * - PostgreSQL: DATABASE_URL when set (a throwaway database is created on that server, or a
 *   throwaway schema when the role may not create databases); otherwise an embedded PostgreSQL
 *   started for the demo and stopped at the end (via @docket/testing).
 * - Jobs on two queues, `emails` (concurrency 2) and `reports` (concurrency 1), with different
 *   priorities: everything is pushed before the worker starts, so the start order shows priority.
 * - One job that fails on its first attempt and succeeds on the retry, one scheduled 2 s ahead,
 *   one scheduled job that is cancelled before it can run.
 * - A line per attempt as it starts and as it settles (a tiny inline plugin on `jobStart` and
 *   `afterSettle`), then a summary table. Exits 0 when every job ended as expected, 1 otherwise.
 */
import { randomBytes } from 'node:crypto';
import {
  Docket,
  type DocketPlugin,
  defineJob,
  type JobRecord,
  type JobRef,
  type Outcome,
  type Pushable,
  type RunningJob,
  Worker,
} from '@docket/core';
import { createTestDatabase, getTestServer, type TestDatabase } from '@docket/testing';

// ------------------------------------------------------------------------------------------------
// Output

const color = process.stdout.isTTY === true && !process.env.NO_COLOR && !process.env.CI;
const paint = (code: number) => (text: string) => (color ? `\u001b[${code}m${text}\u001b[0m` : text);
const dim = paint(2);
const bold = paint(1);
const green = paint(32);
const red = paint(31);
const yellow = paint(33);
const cyan = paint(36);

const say = (line = '') => process.stdout.write(`${line}\n`);
let clockStart = performance.now();
const clock = () => dim(`${((performance.now() - clockStart) / 1000).toFixed(2).padStart(5)}s`);
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });

// ------------------------------------------------------------------------------------------------
// Jobs

const sendEmail = defineJob(
  { name: 'send-email', queue: 'emails', maxAttempts: 3 },
  async ({ to, subject }: { to: string; subject: string }, ctx) => {
    await sleep(300, ctx.signal);
    return `sent "${subject}" to ${to}`;
  },
);

const buildReport = defineJob({ name: 'build-report', queue: 'reports', maxAttempts: 3 }, async ({ title }: { title: string }, ctx) => {
  await sleep(450, ctx.signal);
  return `${title}: ${120 + title.length * 7} rows`;
});

/** Fails its first attempt (a flaky remote service), succeeds on the retry half a second later. */
const syncCrm = defineJob(
  { name: 'sync-crm', queue: 'emails', maxAttempts: 3, retry: { backoff: 'fixed', delayMs: 500, jitter: false } },
  async ({ contacts }: { contacts: number }, ctx) => {
    await sleep(100, ctx.signal);
    if (ctx.job.attempt === 1) throw new Error('CRM answered 503 Service Unavailable (simulated)');
    return `synced ${contacts} contacts`;
  },
);

const jobs = [sendEmail, buildReport, syncCrm];

// ------------------------------------------------------------------------------------------------
// Progress: a plugin is just { name, apply(app) } tapping the hook bus.

const PROGRESS = 'demo-progress';
/** Job ids in the order their first attempt started. */
const runOrder: string[] = [];

function describeJob(job: Pick<RunningJob, 'id' | 'name' | 'queue' | 'priority'>): string {
  return `${job.name.padEnd(12)} ${dim(`#${job.id}`.padEnd(4))} ${job.queue.padEnd(7)} ${dim(`p${job.priority}`.padEnd(3))}`;
}

/** The settle line's verb and what follows the job. */
function describeOutcome(outcome: Outcome): [string, string] {
  switch (outcome.state) {
    case 'succeeded':
      return [green('done     '), `${dim('→')} ${short(outcome.result)}`];
    case 'retry':
      return [
        yellow('retry    '),
        `${dim('→')} ${outcome.error.message} ${dim(`(again in ${Math.max(0, outcome.retryAt.getTime() - Date.now())} ms)`)}`,
      ];
    case 'failed':
      return [red('failed   '), `${dim('→')} ${outcome.error.message}`];
    case 'cancelled':
      return [yellow('cancelled'), outcome.error ? `${dim('→')} ${outcome.error.message}` : ''];
    case 'waiting':
      return ['waiting  ', ''];
  }
}

const progress: DocketPlugin = {
  name: PROGRESS,
  apply(app) {
    app.hooks.jobStart.tap(PROGRESS, (ctx) => {
      if (!runOrder.includes(ctx.job.id)) runOrder.push(ctx.job.id);
      say(`${clock()}  ${cyan('start    ')} ${describeJob(ctx.job)} ${dim(`attempt ${ctx.job.attempt}`)}`);
    });
    app.hooks.afterSettle.tap(PROGRESS, (settled) => {
      for (const { job, outcome } of settled) {
        const [verb, detail] = describeOutcome(outcome);
        say(`${clock()}  ${verb} ${describeJob(job)} ${detail}`.trimEnd());
      }
    });
  },
};

function short(value: unknown, max = 48): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

// ------------------------------------------------------------------------------------------------
// Database

interface DemoDatabase {
  url: string;
  schema: string;
  where: string;
  dispose(): Promise<void>;
}

async function openDatabase(): Promise<DemoDatabase> {
  const envUrl = process.env.DATABASE_URL;
  const fromEnv = Boolean(envUrl);
  say(fromEnv ? `${dim('PostgreSQL:')} DATABASE_URL` : `${dim('PostgreSQL:')} no DATABASE_URL, starting an embedded server…`);
  const started = performance.now();
  let db: TestDatabase;
  try {
    db = await createTestDatabase({ template: false });
  } catch (error) {
    // 42501 insufficient_privilege: the role may not CREATE DATABASE; use a throwaway schema instead.
    if (!envUrl || (error as { code?: string }).code !== '42501') throw error;
    const schema = `docket_demo_${randomBytes(4).toString('hex')}`;
    return {
      url: envUrl,
      schema,
      where: `schema ${schema} of DATABASE_URL's database (the role may not create databases; dropped at the end)`,
      async dispose() {
        await using app = new Docket({ connection: envUrl, logger: false, listen: false });
        await app.sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      },
    };
  }
  const server = await getTestServer();
  const [{ server_version: version }] = await db.sql<[{ server_version: string }]>`show server_version`;
  say(
    `${dim('PostgreSQL:')} ${version} (${server.kind === 'embedded' ? `embedded, up in ${((performance.now() - started) / 1000).toFixed(1)} s` : server.kind}), database ${db.name} (dropped at the end)`,
  );
  return {
    url: db.url,
    schema: 'docket',
    where: `database ${db.name}, schema docket`,
    async dispose() {
      await db.drop();
      await server.stop(); // stops the embedded server; a DATABASE_URL server is left alone
    },
  };
}

// ------------------------------------------------------------------------------------------------
// The demo

interface Pushed {
  ref: JobRef;
  label: string;
  expect: JobRecord['state'];
  /** Attempts the job should have used when it ends. */
  attempts: number;
}

async function main(): Promise<number> {
  const totalStart = performance.now();
  say(bold('Docket demo'));
  const database = await openDatabase();
  let worker: Worker | undefined;
  const app = new Docket({ connection: database.url, schema: database.schema, plugins: [progress] });
  try {
    const applied = await app.migrate();
    say(`${dim('Migrated:')} ${applied.length} migration(s) applied to ${database.where}`);
    await app.declareQueue('emails', { concurrency: 2, pollIntervalMs: 200 });
    await app.declareQueue('reports', { concurrency: 1, pollIntervalMs: 200 });

    // Push everything before the worker starts: the order jobs start in shows priority at work.
    const pushed: Pushed[] = [];
    const push = async (label: string, job: Pushable, expect: Pushed['expect'], attempts = 1) => {
      const ref = await app.push(job);
      pushed.push({ ref, label, expect, attempts });
      return ref;
    };
    await push('welcome mail', sendEmail.withArgs({ to: 'ada@example.com', subject: 'Welcome' }), 'succeeded');
    await push('welcome mail', sendEmail.withArgs({ to: 'grace@example.com', subject: 'Welcome' }), 'succeeded');
    await push('newsletter', sendEmail.withArgs({ to: 'list@example.com', subject: 'Newsletter' }).withPriority(-5), 'succeeded');
    await push('password reset', sendEmail.withArgs({ to: 'alan@example.com', subject: 'Reset your password' }).withPriority(10), 'succeeded');
    await push('flaky CRM sync', syncCrm.withArgs({ contacts: 42 }), 'succeeded', 2);
    await push('monthly report', buildReport.withArgs({ title: 'monthly sales' }), 'succeeded');
    await push('audit report', buildReport.withArgs({ title: 'audit log' }).withPriority(-1), 'succeeded');
    await push('board report', buildReport.withArgs({ title: 'board pack' }).withPriority(5), 'succeeded');
    await push('scheduled digest', sendEmail.withArgs({ to: 'team@example.com', subject: 'Daily digest' }).withDelay(2000), 'succeeded');
    const cancelled = await push('cancelled report', buildReport.withArgs({ title: 'yearly forecast' }).withDelay(60_000), 'cancelled', 0);

    say(`${dim('Pushed:')} ${pushed.length} jobs on queues emails (concurrency 2) and reports (concurrency 1); higher priority runs first`);
    say(`${dim('        ')}'scheduled digest' runs in 2 s; 'cancelled report' is scheduled in 60 s and cancelled now`);
    say();
    clockStart = performance.now();
    await app.cancelJob(cancelled);

    worker = new Worker(app, { jobs, queues: { emails: { concurrency: 2 }, reports: { concurrency: 1 } } });
    await worker.start();
    const finished = await Promise.all(pushed.map(({ ref }) => app.waitForJob(ref, { timeoutMs: 15_000 })));
    await worker.stop({ timeoutMs: 5000 }); // graceful: lets anything still running finish
    worker = undefined;

    say();
    return summarize(pushed, finished, totalStart);
  } finally {
    await worker?.stop({ timeoutMs: 2000 }).catch(() => undefined);
    await app.close();
    await database.dispose();
  }
}

function summarize(pushed: Pushed[], finished: JobRecord[], totalStart: number): number {
  const rows = finished.map((job, i) => {
    const { label, expect, attempts } = pushed[i];
    const ran = runOrder.indexOf(job.id);
    const outcome =
      job.state === 'succeeded'
        ? short(job.result)
        : job.errors.length > 0
          ? job.errors.map((e) => `#${e.attempt}: ${e.message}`).join('; ')
          : job.state === 'cancelled'
            ? 'cancelled before it ran'
            : '';
    const retried =
      job.state === 'succeeded' && job.errors.length > 0 ? `, after ${job.errors.map((e) => `#${e.attempt}: ${e.message}`).join('; ')}` : '';
    const ok = job.state === expect && job.attempt === attempts;
    return {
      ok,
      cells: [
        ran >= 0 ? String(ran + 1) : '-',
        label,
        job.name,
        job.queue,
        String(job.priority),
        job.state,
        `${job.attempt}/${job.maxAttempts}`,
        short(outcome + retried, 80),
      ],
    };
  });
  const header = ['ran', 'job', 'name', 'queue', 'priority', 'state', 'attempts', 'result / error'];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r.cells[c].length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, c) => (c === 4 || c === 0 ? cell.padStart(widths[c]) : cell.padEnd(widths[c])))
      .join('  ')
      .trimEnd();
  say(bold(line(header)));
  say(dim(widths.map((w) => '─'.repeat(w)).join('  ')));
  for (const row of rows) {
    const text = line(row.cells);
    say(row.ok ? text : red(`${text}   ← unexpected`));
  }
  say();

  const count = (state: string) => finished.filter((j) => j.state === state).length;
  const bad = rows.filter((r) => !r.ok).length;
  say(
    `${finished.length} jobs: ${count('succeeded')} succeeded (1 after a retry), ${count('cancelled')} cancelled, ${count('failed')} failed` +
      ` — ${((performance.now() - totalStart) / 1000).toFixed(1)} s in all`,
  );
  if (bad > 0) {
    say(red(`${bad} job(s) did not end as expected.`));
    return 1;
  }
  say(green('Every job ended as expected. Worker stopped, app closed, database cleaned up.'));
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
    // Everything is closed, so the process ends by itself; should a handle linger, do not hang CI.
    setTimeout(() => {
      process.stderr.write('[demo] something kept the process alive after cleanup; exiting\n');
      process.exit(code);
    }, 3000).unref();
  },
  (error: unknown) => {
    process.stderr.write(`[demo] failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
