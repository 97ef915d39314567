/**
 * What pushing from SQL (`docket.push_job`, core migration 3) costs per job, against the
 * TypeScript push, and what a push in the caller's transaction costs through a TransactionAdapter
 * (@docket/tx/pg) against a postgres.js transaction. Prints figures, asserts nothing.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres pnpm --filter @docket/bench push-sql
 *   options: --batch N (1000 jobs per statement), --batches N (20), --singles N (500), --rounds N (3)
 *
 * Per round, on one fresh database, each figure after an uncounted warm-up, `docket.jobs` emptied
 * before each:
 *   bulk      pushMany of --batch jobs, --batches times            vs  SELECT push_job(...) FROM generate_series(1, --batch)
 *   trigger   INSERT of --batch rows into a user table whose row trigger calls push_job, vs the same INSERT without the trigger
 *   single    app.push, one job per call (its own statement, committed)   vs  SELECT push_job(...) per call (autocommit)
 *   in tx     BEGIN; push one job; COMMIT — postgres.js `sql.begin` + `{ tx }`  vs  a pg PoolClient + pgTransaction(client)
 * The order of the two sides alternates between rounds, so load from other processes falls on both.
 */
import { Docket, defineJob } from '@docket/core';
import { pgTransaction } from '@docket/tx/pg';
import pg from 'pg';
import postgres from 'postgres';
import { nowUs } from './clock.js';
import { createDatabase, dropDatabase, serverVersion, startServer } from './db.js';
import { fmt, median } from './stats.js';

const argv = process.argv.slice(2).filter((a) => a !== '--');
const arg = (name: string, fallback: number) => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] ? Number(argv[i + 1]) : fallback;
};
const batch = arg('--batch', 1000);
const batches = arg('--batches', 20);
const singles = arg('--singles', 500);
const rounds = arg('--rounds', 3);

const noop = defineJob({ name: 'noop', queue: 'bench' }, async (_: { i: number }) => {});

type Figure = { label: string; unit: string; a: string; b: string; samples: Array<[number, number]> };
const figures: Figure[] = [
  { label: 'bulk', unit: 'µs/job', a: 'pushMany', b: 'push_job() in one SELECT', samples: [] },
  { label: 'trigger', unit: 'µs/row', a: 'INSERT without trigger', b: 'INSERT, trigger pushes', samples: [] },
  { label: 'single', unit: 'µs/push', a: 'app.push', b: 'SELECT push_job()', samples: [] },
  { label: 'in tx', unit: 'µs/transaction', a: 'postgres.js { tx }', b: 'pg + pgTransaction', samples: [] },
];

const server = await startServer((line) => console.log(line));
const name = `push_sql_${process.pid}`;
try {
  const url = await createDatabase(server, name);
  const app = new Docket({ connection: url, logger: false });
  await app.migrate();
  const sql = postgres(url, { max: 4, onnotice: () => {} });
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  await sql.unsafe(`
    CREATE TABLE orders (id int PRIMARY KEY);
    CREATE FUNCTION orders_push() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM docket.push_job('bench', 'noop', jsonb_build_object('i', NEW.id));
      RETURN NEW;
    END $$;
  `);
  const empty = () => sql`TRUNCATE docket.jobs, orders`;

  /** µs per unit of `run`, which does `units` units; `docket.jobs` emptied first, one uncounted warm-up. */
  const timed = async (units: number, run: () => Promise<unknown>) => {
    await empty();
    await run();
    await empty();
    const t0 = nowUs();
    await run();
    return (nowUs() - t0) / units;
  };
  const sides: Array<[() => Promise<number>, () => Promise<number>]> = [
    [
      () =>
        timed(batch * batches, async () => {
          for (let k = 0; k < batches; k++) await app.pushMany(Array.from({ length: batch }, (_, i) => noop.withArgs({ i })));
        }),
      () =>
        timed(batch * batches, async () => {
          for (let k = 0; k < batches; k++) {
            await sql`SELECT count(docket.push_job('bench', 'noop', jsonb_build_object('i', i))) FROM generate_series(1, ${batch}::int) i`;
          }
        }),
    ],
    [
      () =>
        timed(batch * batches, async () => {
          await sql`DROP TRIGGER IF EXISTS orders_push ON orders`;
          for (let k = 0; k < batches; k++) await sql`INSERT INTO orders SELECT ${k * batch}::int + i FROM generate_series(1, ${batch}::int) i`;
        }),
      () =>
        timed(batch * batches, async () => {
          await sql`CREATE OR REPLACE TRIGGER orders_push AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION orders_push()`;
          for (let k = 0; k < batches; k++) await sql`INSERT INTO orders SELECT ${k * batch}::int + i FROM generate_series(1, ${batch}::int) i`;
        }),
    ],
    [
      () =>
        timed(singles, async () => {
          for (let i = 0; i < singles; i++) await app.push(noop.withArgs({ i }));
        }),
      () =>
        timed(singles, async () => {
          for (let i = 0; i < singles; i++) await sql`SELECT docket.push_job('bench', 'noop', jsonb_build_object('i', ${i}::int))`;
        }),
    ],
    [
      () =>
        timed(singles, async () => {
          for (let i = 0; i < singles; i++) await sql.begin((tx) => app.push(noop.withArgs({ i }), { tx }));
        }),
      () =>
        timed(singles, async () => {
          for (let i = 0; i < singles; i++) {
            const client = await pool.connect();
            try {
              await client.query('BEGIN');
              await app.push(noop.withArgs({ i }), { tx: pgTransaction(client) });
              await client.query('COMMIT');
            } finally {
              client.release();
            }
          }
        }),
    ],
  ];
  for (let round = 0; round < rounds; round++) {
    for (const [f, [a, b]] of sides.entries()) {
      const first = round % 2 === 0;
      const x = first ? await a() : await b();
      const y = first ? await b() : await a();
      figures[f]!.samples.push(first ? [x, y] : [y, x]);
    }
  }
  console.log(`${server.origin}; ${await serverVersion(server)}`);
  console.log(`batch ${batch} × ${batches}, singles ${singles}, ${rounds} rounds; medians (each round's pair in brackets)\n`);
  console.log('| figure | A | B | A | B | B / A |');
  console.log('|---|---|---|---:|---:|---:|');
  for (const f of figures) {
    const a = median(f.samples.map((s) => s[0]));
    const b = median(f.samples.map((s) => s[1]));
    const pairs = f.samples.map(([x, y]) => `${fmt(x, 1)}/${fmt(y, 1)}`).join(', ');
    console.log(`| ${f.label} (${f.unit}) | ${f.a} | ${f.b} | ${fmt(a, 1)} | ${fmt(b, 1)} | ${fmt(b / a, 2)} | ${pairs}`);
  }
  await sql.end();
  await pool.end();
  await app.close();
} finally {
  await dropDatabase(server, name).catch(() => {});
  await server.stop();
}
