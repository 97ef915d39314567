/**
 * A long history for the operations benchmarks (ops-pages, dashboard-pages): N finished jobs in one
 * INSERT … generate_series, spread over queues, names and `spanDays` days before now (one job in
 * 1,000 in `queue-rare`), and a pending backlog; then VACUUM ANALYZE.
 */
import postgres from 'postgres';

export async function fillHistory(url: string, o: { jobs: number; pending: number; queues: number; names: number; spanDays: number }): Promise<void> {
  const { jobs, pending, queues, names, spanDays } = o;
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  // Finished jobs spread over queues, names and 30 days; 97% succeeded, 2% failed, 1% cancelled,
  // mixed so that no queue or name has a state of its own.
  await sql.unsafe(
    `INSERT INTO docket.jobs (queue, name, state, args, attempt, max_attempts, errors, scheduled_at, created_at, started_at, finished_at)
     SELECT CASE WHEN i % 1000 = 500 THEN 'queue-rare' ELSE 'queue-' || (i % $2) END, 'job.' || ((i / $2) % $3),
            CASE WHEN h < 97 THEN 'succeeded' WHEN h < 99 THEN 'failed' ELSE 'cancelled' END,
            jsonb_build_object('i', i), 1, 1,
            CASE WHEN h BETWEEN 97 AND 98 THEN '[{"attempt":1,"name":"Error","message":"boom"}]'::jsonb ELSE '[]'::jsonb END,
            t, t, t, t + interval '5 ms'
     FROM generate_series(1, $1::int) i,
          LATERAL (SELECT abs(hashint4(i) % 100) AS h,
                          now() - interval '${spanDays} days' + i * ($4::float8 / $1) * interval '1 millisecond' AS t) c`,
    [jobs, queues, names, spanDays * 86_400_000],
  );
  await sql.unsafe(
    `INSERT INTO docket.jobs (queue, name, args) SELECT 'queue-' || (i % $2), 'job.' || ((i / $2) % $3), jsonb_build_object('p', i) FROM generate_series(1, $1::int) i`,
    [pending, queues, names],
  );
  await sql`VACUUM ANALYZE docket.jobs`;
  await sql.end();
}
