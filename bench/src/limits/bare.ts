/**
 * The "limit" rows: what a bare postgres.js client does on the same server with no framework.
 * - drain: two concurrent loops, each one round trip per step that marks the previous batch of
 *   100 done (`UPDATE ... FROM unnest($ids)`) and claims the next 100 (`FOR UPDATE SKIP LOCKED`),
 *   in one statement (data-modifying CTEs). Rows are kept: marked succeeded, not deleted.
 * - bulk insert: `INSERT ... SELECT FROM unnest($1::text[])`, 20,000 rows per statement.
 * - single insert: one one-row INSERT per commit, sequentially.
 * - latency: `INSERT ...; pg_notify` in one statement, LISTEN in the same process, claim on the
 *   notification with one `UPDATE ... SKIP LOCKED RETURNING`.
 */
import postgres from 'postgres';
import { nowUs, sleep } from '../clock.js';

const SCHEMA = `
  create table bare_jobs (
    id bigserial primary key,
    queue text not null default 'bench',
    state text not null default 'pending',
    priority int not null default 0,
    args jsonb not null,
    attempt int not null default 0,
    run_at timestamptz not null default now(),
    created_at timestamptz not null default now(),
    started_at timestamptz,
    finished_at timestamptz
  );
  create index bare_jobs_ready on bare_jobs (queue, priority desc, run_at, id) where state = 'pending';
`;

export async function bareSetup(url: string): Promise<postgres.Sql> {
  const sql = postgres(url, { max: 2, onnotice: () => {} });
  await sql.unsafe(SCHEMA);
  return sql;
}

const chunkSize = 20_000;

/** Inserts n rows in 20,000-row statements; returns jobs/s. */
export async function bareBulk(sql: postgres.Sql, n: number): Promise<number> {
  const t0 = nowUs();
  for (let done = 0; done < n; done += chunkSize) {
    const size = Math.min(chunkSize, n - done);
    const args = Array.from({ length: size }, (_, j) => JSON.stringify({ i: done + j }));
    await sql`insert into bare_jobs (args) select a::jsonb from unnest(${args}::text[]) as a`;
  }
  return n / ((nowUs() - t0) / 1e6);
}

/** n one-row INSERTs, each its own commit, one after another; returns jobs/s. */
export async function bareSingle(sql: postgres.Sql, n: number): Promise<number> {
  const t0 = nowUs();
  for (let i = 0; i < n; i++) {
    await sql`insert into bare_jobs (args) values (${JSON.stringify({ i })}::text::jsonb)`;
  }
  return n / ((nowUs() - t0) / 1e6);
}

/** Two loops at batch 100 until the table has no pending row; returns jobs/s for `n` jobs. */
export async function bareDrain(sql: postgres.Sql, n: number, loops = 2, batch = 100): Promise<number> {
  await sql`vacuum analyze bare_jobs`;
  let total = 0;
  const loop = async () => {
    let previous: string[] = [];
    for (;;) {
      const rows = await sql<{ id: string; args: unknown }[]>`
        with done as (
          update bare_jobs set state = 'succeeded', finished_at = now()
          from unnest(${previous}::bigint[]) as d(id)
          where bare_jobs.id = d.id
        ), next as (
          select id from bare_jobs
          where queue = 'bench' and state = 'pending' and run_at <= now()
          order by priority desc, run_at, id
          limit ${batch}
          for update skip locked
        )
        update bare_jobs set state = 'running', attempt = attempt + 1, started_at = now()
        from next where bare_jobs.id = next.id
        returning bare_jobs.id, bare_jobs.args`;
      total += previous.length;
      previous = rows.map((r) => r.id);
      if (rows.length === 0) return;
    }
  };
  const t0 = nowUs();
  await Promise.all(Array.from({ length: loops }, loop));
  const seconds = (nowUs() - t0) / 1e6;
  const [left] = await sql<{ n: number }[]>`select count(*)::int as n from bare_jobs where state <> 'succeeded'`;
  if (left!.n !== 0 || total !== n) throw new Error(`bare drain: ${total} done of ${n}, ${left!.n} not succeeded`);
  return n / seconds;
}

/** Push-to-claim latency through LISTEN/NOTIFY in one process; returns samples in ms. */
export async function bareLatency(url: string, pushes: number, perSecond: number): Promise<number[]> {
  const producer = postgres(url, { max: 1, onnotice: () => {} });
  const listener = postgres(url, { max: 1, onnotice: () => {} });
  const pushedAt = new Map<number, number>();
  const samples: number[] = [];
  let claiming = Promise.resolve();
  const claim = async () => {
    const rows = await listener<{ args: { i: number } }[]>`
      update bare_jobs set state = 'succeeded', started_at = now(), finished_at = now()
      where id in (select id from bare_jobs where queue = 'bench' and state = 'pending'
                   order by priority desc, run_at, id limit 10 for update skip locked)
      returning args`;
    const t = nowUs();
    for (const row of rows) {
      const at = pushedAt.get(row.args.i);
      if (at !== undefined) samples.push((t - at) / 1000);
    }
  };
  const sub = await listener.listen('bare_jobs', () => {
    claiming = claiming.then(claim, claim);
  });
  try {
    await sleep(200);
    const interval = 1000 / perSecond;
    const start = nowUs();
    for (let i = 0; i < pushes; i++) {
      const due = start + i * interval * 1000;
      const wait = (due - nowUs()) / 1000;
      if (wait > 0) await sleep(wait);
      pushedAt.set(i, nowUs());
      await producer`
        with j as (insert into bare_jobs (args) values (${JSON.stringify({ i })}::text::jsonb) returning id)
        select pg_notify('bare_jobs', '') from j`;
    }
    const deadline = Date.now() + 5000;
    while (samples.length < pushes && Date.now() < deadline) await sleep(10);
    await claiming;
  } finally {
    await sub.unlisten();
    await producer.end({ timeout: 5 });
    await listener.end({ timeout: 5 });
  }
  return samples;
}
