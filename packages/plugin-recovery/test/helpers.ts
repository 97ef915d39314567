import { Docket, type DocketPlugin } from '@docket/core';
import { createTestDatabase, type TestDatabase, WorkerProcess } from '@docket/testing';

export { WorkerProcess };

const FIXTURE = new URL('./fixtures/worker.ts', import.meta.url);

/** A migrated database with the recovery plugin's column, a `runs` table and an app for the test. */
export async function setup(plugins: DocketPlugin[] = []) {
  const db: TestDatabase = await createTestDatabase();
  const app = new Docket({ connection: db.url, logger: false, plugins });
  await app.migrate();
  // Migrate once with the fixture's plugin set too (the recovery column), whatever `plugins` holds.
  const { recovery } = await import('../src/index.js');
  const migrator = new Docket({ connection: db.url, logger: false, plugins: [recovery()] });
  await migrator.migrate();
  await migrator.close();
  await db.sql`CREATE TABLE runs (job_id bigint NOT NULL, attempt int NOT NULL, worker text, label text, at timestamptz NOT NULL DEFAULT clock_timestamp())`;
  const processes: WorkerProcess[] = [];
  return {
    db,
    app,
    spawn(env: Record<string, string | number> = {}) {
      const p = new WorkerProcess(FIXTURE, { TEST_DATABASE_URL: db.url, ...env });
      processes.push(p);
      return p;
    },
    async close() {
      await Promise.all(processes.map((p) => p.kill()));
      await app.close();
      await db.drop();
    },
  };
}

export async function count(db: TestDatabase, query: string): Promise<number> {
  const [row] = await db.sql.unsafe(query);
  return Number(Object.values(row!)[0]);
}
