/**
 * Leader failover under a per-second cron: three worker processes with the leadership, cron and
 * recovery plugins; the leader is killed (SIGKILL) four times, a fresh process replacing each. No
 * second fires twice, no second is missed, and no second is decided later than the lease allows
 * (the dead leader's lease runs out, the next worker takes it and fires what is due).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CronPlugin } from '@docket/plugin-cron';
import { waitFor } from '@docket/testing';
import { jobs, type LogMessage, Scenario, seconds } from './scenario.js';

const KILLS = 4;
const LEASE_MS = 2000;
const RENEW_MS = 500;

test(`leader killed ${KILLS} times while cron fires every second: each second fired once, no gap beyond the lease`, {
  timeout: 240_000,
}, async () => {
  const s = await Scenario.start('leader failover under a per-second cron', { plugins: ['recovery', 'leadership', 'cron'] });
  try {
    await (s.installed.get('cron') as CronPlugin).schedule({ name: 'every-second', cron: '* * * * * *', job: jobs.tick.withArgs({}), overlap: true });
    const settings = {
      leaseMs: LEASE_MS,
      renewIntervalMs: RENEW_MS,
      maintenanceMs: 100,
      cronIntervalMs: 250,
      heartbeatMs: 300,
      deadAfterMs: 1500,
      recoveryIntervalMs: 250,
    };
    const processes = new Map<string, Awaited<ReturnType<Scenario['spawn']>>>();
    const spawn = async (label: string) => {
      const p = await s.spawn(label, settings);
      processes.set(await p.started, p);
    };
    for (const label of ['W1', 'W2', 'W3']) await spawn(label);

    /** The lease holder once it has fired at least three seconds under its term. */
    const settledLeader = (afterTerm: number) =>
      waitFor(
        async () => {
          const [lease] = await s.db.sql`SELECT holder, term::int AS term FROM docket.leadership_lease`;
          if (!lease || lease.term <= afterTerm || !processes.has(lease.holder)) return undefined;
          const [fired] = await s.db.sql`SELECT count(*)::int AS n FROM docket.cron_fires WHERE term = ${String(lease.term)}`;
          return fired!.n >= 3 ? { holder: lease.holder as string, term: lease.term as number } : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 100, message: `a leader after term ${afterTerm} firing` },
      );

    let term = 0;
    const killed: Array<{ label: string; term: number }> = [];
    for (let k = 1; k <= KILLS; k++) {
      const leader = await settledLeader(term);
      term = leader.term;
      const victim = processes.get(leader.holder)!;
      processes.delete(leader.holder);
      await s.kill(victim);
      killed.push({ label: leader.holder, term });
      await spawn(`R${k}`);
    }
    await settledLeader(term);

    // Keep what was decided, then stop the schedule (unscheduling deletes its fire records).
    await s.db.sql`CREATE TABLE fires_seen AS SELECT * FROM docket.cron_fires`;
    await (s.installed.get('cron') as CronPlugin).unschedule('every-second');
    await s.drained(60_000);

    const [span] = await s.db.sql`
      SELECT count(*)::int AS fires, (extract(epoch FROM max(fire_at) - min(fire_at)))::int + 1 AS seconds,
             count(*) FILTER (WHERE job_id IS NULL)::int AS without_job, count(DISTINCT term)::int AS terms,
             max(extract(epoch FROM created_at - fire_at) * 1000)::float8 AS latest_decision_ms
        FROM fires_seen`;
    assert.equal(span!.fires, span!.seconds, 'one fire record for every second from the first to the last: no gap');
    assert.equal(span!.without_job, 0);
    assert.ok(span!.terms >= KILLS + 1, `${span!.terms} leadership terms fired`);
    const [dupes] = await s.db.sql`
      SELECT count(*)::int AS n FROM (SELECT scheduled_at FROM docket.jobs WHERE name = 'tick' GROUP BY scheduled_at HAVING count(*) > 1) d`;
    assert.equal(dupes!.n, 0, 'no second was pushed twice');
    const bound = LEASE_MS + 2 * RENEW_MS + 1000;
    assert.ok(span!.latest_decision_ms <= bound, `a second was decided ${Math.round(span!.latest_decision_ms)} ms late (bound ${bound} ms)`);

    await s.loadRuns();
    const figures = await s.checkRuns();
    const [states] = await s.db.sql`SELECT count(*)::int AS n FROM docket.jobs WHERE name = 'tick' AND state <> 'succeeded'`;
    assert.equal(states!.n, 0, 'every fired job succeeded');
    await s.assertDraining();
    const [lag] = await s.db.sql`
      SELECT max(extract(epoch FROM started_at - scheduled_at) * 1000)::float8 AS max_ms,
             percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - scheduled_at) * 1000) AS p50_ms
        FROM docket.jobs WHERE name = 'tick'`;
    const crashes = s.logs('error').filter((m: LogMessage) => /leadership/.test(m.message ?? '')).length;
    s.report(figures, {
      'seconds fired': `${span!.fires}, each once, no gap`,
      'leaders killed': killed.length,
      'leadership terms': span!.terms,
      'latest decision after its second': `${seconds(span!.latest_decision_ms)} (lease ${seconds(LEASE_MS)})`,
      'job start after its second': `p50 ${Math.round(lag!.p50_ms)} ms, max ${seconds(lag!.max_ms)}`,
      'leadership errors logged': crashes,
    });
  } finally {
    await s.close();
  }
});
