/**
 * A transaction left open for the whole of a drain (a REPEATABLE READ snapshot another client
 * holds: a forgotten session, a long report, a stuck migration) holds back the xmin horizon, so
 * VACUUM can remove none of the rows the drain leaves dead. The drain must go on regardless; and
 * once the transaction ends, with the workers still running, VACUUM reclaims every dead row — the
 * workers themselves hold no snapshot open. Dead rows are measured by VACUUM VERBOSE itself.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import postgres from 'postgres';
import { jobs, Scenario, seconds } from './scenario.js';

const JOBS = 5000;

/** VACUUM VERBOSE on docket.jobs: rows removed and dead rows it had to keep, as its report says. */
async function vacuum(url: string): Promise<{ removed: number; keptDead: number; pages: number }> {
  const notices: string[] = [];
  const sql = postgres(url, { max: 1, onnotice: (n) => void notices.push(String(n.message ?? '')) });
  try {
    await sql`VACUUM (VERBOSE) docket.jobs`;
    const [size] = await sql`SELECT pg_relation_size('docket.jobs') / current_setting('block_size')::int AS pages`;
    const report = notices.join('\n');
    // PostgreSQL 15–18: "tuples: 1200 removed, 3800 remain, 1000 are dead but not yet removable"
    const match = /tuples: (\d+) removed, \d+ remain, (\d+) are dead but not yet removable/.exec(report);
    assert.ok(match, `no tuple counts in VACUUM VERBOSE's report:\n${report}`);
    return { removed: Number(match[1]), keptDead: Number(match[2]), pages: Number(size!.pages) };
  } finally {
    await sql.end();
  }
}

test(`a transaction holding the xmin horizon through a drain of ${JOBS} jobs: the drain goes on; afterwards VACUUM reclaims every dead row`, {
  timeout: 240_000,
}, async () => {
  const s = await Scenario.start('long-open transaction holding xmin');
  const holder = postgres(s.db.url, { max: 1, onnotice: () => {} });
  try {
    for (const label of ['A', 'B', 'C']) await s.spawn(label, { concurrency: 10 });
    const baseline = await vacuum(s.db.url);

    // The transaction: a snapshot taken and kept until `release()`.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let opened!: () => void;
    const isOpen = new Promise<void>((resolve) => (opened = resolve));
    const transaction = holder.begin('isolation level repeatable read', async (tx) => {
      await tx`SELECT count(*) FROM docket.jobs`;
      opened();
      await released;
    });
    await isOpen;
    const [horizon] = await s.db
      .sql`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND backend_xmin IS NOT NULL AND state = 'idle in transaction'`;
    assert.ok(horizon!.n >= 1, 'the open transaction holds an xmin');

    const pushedAt = await s.now();
    await s.app.pushMany(Array.from({ length: JOBS }, () => jobs.sleep.withArgs({ ms: 0 })));
    await s.drained(180_000);
    const drainedAt = await s.lastOutcome();
    const held = await vacuum(s.db.url);
    assert.ok(held.keptDead >= JOBS, `VACUUM had to keep the drain's dead rows while the transaction was open (kept ${held.keptDead})`);

    release();
    await transaction;
    const after = await vacuum(s.db.url);
    // (Some of the kept rows are pruned on the way by the workers' own reads before VACUUM counts them.)
    assert.equal(after.keptDead, 0, 'no dead row left unremovable once the transaction ended, with the workers running');

    await s.loadRuns();
    const figures = await s.checkRuns();
    await s.assertStates({ succeeded: JOBS });
    await s.assertDraining();
    const ms = drainedAt.getTime() - pushedAt.getTime();
    s.report(figures, {
      'drained with the horizon held': `${seconds(ms)} (${Math.round(JOBS / (ms / 1000))} jobs/s)`,
      'dead rows VACUUM could not remove meanwhile': held.keptDead,
      'once it ended': `VACUUM removed ${after.removed}, none left unremovable`,
      'table pages (before, held, after)': `${baseline.pages}, ${held.pages}, ${after.pages}`,
    });
  } finally {
    await holder.end({ timeout: 1 });
    await s.close();
  }
});
