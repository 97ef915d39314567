/**
 * The worker's hot statements must keep cheap plans whatever the table's statistics say. The
 * case that once cost 0.5 s per batch: statistics taken while nothing ran (every row pending,
 * worker_id NULL) made the planner expect no running rows and loop over one side of a join for
 * every row of the other. Here the statistics are taken in exactly that state, the worker's real
 * statements are captured as it drains, and each is explained as a custom and as a generic plan.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Docket, defineJob, Worker } from '@docket/core';
import { createTestDatabase, type TestDatabase } from '@docket/testing';
import postgres from 'postgres';

const noop = defineJob({ name: 'noop', queue: 'plans' }, async (_args: object) => {});
const withResult = defineJob({ name: 'with-result', queue: 'plans' }, async (_args: object) => ({ ok: true }));

interface Captured {
  text: string;
  params: unknown[];
}

let db: TestDatabase;
let sql: postgres.Sql;
let app: Docket;
const captured = new Map<string, Captured>();
let capturing = true;

before(async () => {
  db = await createTestDatabase();
  sql = postgres(db.url, {
    max: 4,
    onnotice: () => {},
    debug: (_connection, text, params) => {
      if (!capturing) return;
      const kind = /UPDATE \S+jobs j SET\s+state = COALESCE/.test(text) ? 'complete' : /WITH next AS/.test(text) ? 'claim' : null;
      if (kind) captured.set(`${kind}${(params[3] ?? null) === null ? '' : ' with outcomes'}`, { text, params });
    },
  });
  app = new Docket({ connection: sql, logger: false });
  await app.migrate();
  // Keep the statistics as taken below: no autovacuum/autoanalyze on the table during the test.
  await db.sql`ALTER TABLE docket.jobs SET (autovacuum_enabled = false)`;
  await app.pushMany([...Array.from({ length: 3000 }, () => noop.withArgs({})), ...Array.from({ length: 1000 }, () => withResult.withArgs({}))]);
  await db.sql`ANALYZE docket.jobs`;
  const worker = new Worker(app, { jobs: [noop, withResult], queues: { plans: { concurrency: 10, prefetch: 500 } } });
  await worker.start();
  for (;;) {
    const [row] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM docket.jobs WHERE state <> 'succeeded'`;
    if (row!.n === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await worker.stop();
  capturing = false;
});

after(async () => {
  await app?.close();
  await sql?.end();
  await db?.drop();
});

function literal(value: unknown): string {
  return value === null || value === undefined ? 'NULL' : `'${String(value).replace(/'/g, "''")}'`;
}

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

const readsJobs = (n: PlanNode) => n['Relation Name'] === 'jobs' && n['Node Type'] !== 'ModifyTable';

async function explain(statement: Captured, mode: 'force_custom_plan' | 'force_generic_plan'): Promise<PlanNode[]> {
  return sql.begin(async (tx) => {
    // Plain statements (no postgres.js prepared-statement cache around these commands).
    await tx.unsafe(`SET LOCAL plan_cache_mode = ${mode}`, [], { prepare: false });
    await tx.unsafe(`PREPARE explained AS ${statement.text}`, [], { prepare: false });
    const [row] = await tx.unsafe(`EXPLAIN (FORMAT JSON) EXECUTE explained(${statement.params.map(literal).join(', ')})`, [], { prepare: false });
    await tx.unsafe('DEALLOCATE explained', [], { prepare: false });
    const plan = (row as unknown as { 'QUERY PLAN': Array<{ Plan: PlanNode }> })['QUERY PLAN'][0]!.Plan;
    return nodes(plan);
  });
}

for (const kind of ['complete', 'complete with outcomes', 'claim']) {
  for (const mode of ['force_custom_plan', 'force_generic_plan'] as const) {
    test(`${kind}: ${mode.replace('force_', '').replace('_plan', '')} plan reads jobs by index, never loops over a join`, async () => {
      const statement = captured.get(kind);
      assert.ok(statement, `the worker ran a '${kind}' statement`);
      const plan = await explain(statement, mode);
      const summary = plan.map(
        (n) => `${n['Node Type']}${n['Relation Name'] ? ` on ${n['Relation Name']}` : ''}${n['Index Name'] ? ` using ${n['Index Name']}` : ''}`,
      );
      // (Nested loops over the one-row aggregates at the end are fine; one that reads jobs is not.)
      assert.ok(!plan.some((n) => n['Node Type'] === 'Nested Loop' && nodes(n).some(readsJobs)), `no nested loop over jobs: ${summary.join(' / ')}`);
      assert.ok(
        !plan.some((n) => n['Node Type'] === 'Seq Scan' && n['Relation Name'] === 'jobs'),
        `no sequential scan of jobs: ${summary.join(' / ')}`,
      );
      if (kind.startsWith('complete')) {
        const reads = plan.filter(readsJobs);
        const indexes = plan.filter((n) => n['Index Name']).map((n) => n['Index Name']);
        assert.ok(
          reads.length > 0 && indexes.length > 0 && indexes.every((i) => i === 'jobs_pkey'),
          `rows found by primary key: ${summary.join(' / ')}`,
        );
      }
    });
  }
}
