/**
 * The pgbench row: the ideal dequeue on a bare table, on the same server. Each pgbench transaction
 * claims a batch with `UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)` (one commit),
 * then marks that batch done (a second commit): no framework, no client-side work. Two clients, as
 * the bare loop has two loops. Rows/s = transactions/s × batch.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';

export function findPgbench(): string | null {
  const candidates = [
    process.env.PGBENCH,
    ...['18', '17', '16', '15', '14', '13'].map((v) => `/usr/lib/postgresql/${v}/bin/pgbench`),
    ...(process.env.PATH ?? '').split(':').map((dir) => join(dir, 'pgbench')),
  ];
  for (const c of candidates) if (c && existsSync(c)) return c;
  return null;
}

const SCRIPT = (batch: number) => `
WITH c AS (
  UPDATE pgb_jobs SET state = 'running', attempt = attempt + 1, started_at = now()
  WHERE id IN (SELECT id FROM pgb_jobs WHERE state = 'pending' ORDER BY id LIMIT ${batch} FOR UPDATE SKIP LOCKED)
  RETURNING id
) SELECT coalesce(string_agg(id::text, ','), '0') AS ids FROM c \\gset
UPDATE pgb_jobs SET state = 'succeeded', finished_at = now() WHERE id = ANY (string_to_array(:ids, ',')::bigint[]);
`;

function run(bin: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: 300_000, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${error.message}\n${stderr}`));
      else resolve(stdout + stderr);
    });
  });
}

export async function pgbenchVersion(bin: string): Promise<string> {
  return (await run(bin, ['--version'])).trim();
}

/** Returns rows/s for n rows at `batch`, or throws. */
export async function pgbenchDequeue(bin: string, url: string, n: number, batch: number, clients = 2): Promise<number> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const dir = await mkdtemp(join(tmpdir(), 'docket-bench-pgbench-'));
  try {
    await sql.unsafe(`
      drop table if exists pgb_jobs;
      create table pgb_jobs (
        id bigserial primary key, state text not null default 'pending', args jsonb not null default '{}',
        attempt int not null default 0, started_at timestamptz, finished_at timestamptz);
      create index pgb_jobs_pending on pgb_jobs (id) where state = 'pending';`);
    await sql`insert into pgb_jobs (args) select jsonb_build_object('i', g) from generate_series(1, ${n}) g`;
    await sql`vacuum analyze pgb_jobs`;
    const file = join(dir, `dequeue-${batch}.sql`);
    await writeFile(file, SCRIPT(batch));
    const transactions = Math.ceil(n / batch / clients);
    const out = await run(bin, ['-n', '-M', 'prepared', '-c', String(clients), '-j', String(clients), '-t', String(transactions), '-f', file, url]);
    const tps = /tps = ([\d.]+)/.exec(out)?.[1];
    if (!tps) throw new Error(`pgbench printed no tps:\n${out}`);
    const [left] = await sql<{ n: number }[]>`select count(*)::int as n from pgb_jobs where state <> 'succeeded'`;
    if (left!.n !== 0) throw new Error(`pgbench left ${left!.n} of ${n} rows not succeeded`);
    return Number(tps) * batch;
  } finally {
    await sql.end({ timeout: 5 });
    await rm(dir, { recursive: true, force: true });
  }
}
