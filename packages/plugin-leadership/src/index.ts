/**
 * @docket/plugin-leadership — decentralised leader election among running workers.
 *
 * Every worker competes for one lease row in the database (an expiry on the database clock and a
 * fencing term that grows with each new holder). The lease is taken or renewed inside the core's
 * `resolvePrimary` hook, which a worker fires at the start of each maintenance tick and before each
 * run of a `periodicTask` with `primaryOnly` (on that task's own loop), so the answer the tick's
 * `maintenance` taps and those runs act on is never older than the renewal it came from. Gains and
 * losses are published as `leadership.gained` / `leadership.lost` events.
 *
 *   const app = new Docket({ connection, plugins: [leadership({ leaseMs: 30_000 })] });
 *
 * Leadership saves redundant work; it does not carry correctness. A paused leader (GC, SIGSTOP, a
 * slow network) may still be finishing leader-only work after another worker took over; plugins
 * that must not act twice guard their writes with unique constraints, and may compare `term`.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  type Docket,
  type DocketPlugin,
  InvalidOptionError,
  integerOption,
  type PrimaryStatus,
  pluginBinding,
  rejectUnknownKeys,
  type WorkerView,
} from '@docket/core';
import { type LeaseRecord, type LeaseRow, leaseRead, leaseRelease, leaseRenew, MIGRATIONS } from './sql.js';

export const PLUGIN_NAME = 'leadership';
const VERSION = '0.1.0';
/** Topic of the app's notify/listen on which a released lease is announced. */
const RELEASE_TOPIC = 'leadership.released';

export interface LeadershipOptions {
  /** How long a lease lasts after each renewal (database clock). Default 30000 ms. */
  leaseMs?: number;
  /**
   * How often the leader renews (when the worker next asks `resolvePrimary` after this much time: its
   * maintenance tick or a primaryOnly periodic run), and how often
   * followers try to take a lease they cannot see expire. Must be shorter than `leaseMs`. Default
   * 10000 ms.
   */
  renewIntervalMs?: number;
}

const OPTION_KEYS = ['leaseMs', 'renewIntervalMs'] as const;

/** Why a worker stopped leading. */
export type LostReason =
  /** Another worker holds the lease (it expired while this one was paused or slow). */
  | 'taken'
  /** The renewal failed (database unreachable) and the lease ran out on this worker's clock. */
  | 'error'
  /** This worker stopped and released the lease. */
  | 'stopped';

export interface LeadershipGained {
  readonly workerId: string;
  readonly term: string;
}

export interface LeadershipLost {
  readonly workerId: string;
  /** The term this worker held. */
  readonly term: string;
  readonly reason: LostReason;
  /** The worker holding the lease now, when known. */
  readonly holder: string | null;
}

/** Payloads of the events the plugin emits. */
export interface LeadershipEvents {
  'leadership.gained': LeadershipGained;
  'leadership.lost': LeadershipLost;
}

declare module '@docket/core' {
  interface DocketEventMap extends LeadershipEvents {}
}

export type { LeaseRecord };

export interface LeadershipPlugin extends DocketPlugin {
  readonly leaseMs: number;
  readonly renewIntervalMs: number;
  /** This process's latest answer for a worker (what its last `resolvePrimary` saw). */
  status(workerId: string): PrimaryStatus;
  /** The lease as the database holds it now (null before any worker took it). */
  current(): Promise<LeaseRecord | null>;
}

/** What one worker of this process knows about its own lease. */
interface LocalLease {
  /** Identifies this run of the worker in the lease row. */
  readonly token: string;
  leader: boolean;
  term: string | null;
  /** performance.now() by which the leader renews (always before `validUntil`). */
  renewDueAt: number;
  /** performance.now() until which the lease is surely still ours (measured from before the renewal was sent). */
  validUntil: number;
  /** performance.now() at which a follower tries to take the lease again. */
  nextAttemptAt: number;
  stopped: boolean;
}

const FOLLOWER: PrimaryStatus = Object.freeze({ primary: false, term: null });

export function leadership(options: LeadershipOptions = {}): LeadershipPlugin {
  const where = 'leadership(options)';
  rejectUnknownKeys(where, options, OPTION_KEYS);
  const leaseMs = integerOption(where, 'leaseMs', options.leaseMs, 30_000, { min: 100, max: 86_400_000 });
  const renewIntervalMs = integerOption(where, 'renewIntervalMs', options.renewIntervalMs, Math.min(10_000, Math.floor(leaseMs / 3)), {
    min: 10,
    max: 86_400_000,
  });
  if (renewIntervalMs >= leaseMs) {
    throw new InvalidOptionError(
      `${where}: \`renewIntervalMs\` (${renewIntervalMs}) must be shorter than \`leaseMs\` (${leaseMs}), or the lease lapses between renewals; a third of the lease is a good choice.`,
      { details: { where, option: 'renewIntervalMs' } },
    );
  }

  const binding = pluginBinding(PLUGIN_NAME, 'leadership');
  const leases = new Map<string, LocalLease>();
  let listening: Promise<(() => void) | null> | null = null;
  let running = 0;

  const local = (workerId: string): LocalLease => {
    let lease = leases.get(workerId);
    if (!lease) {
      lease = { token: randomUUID(), leader: false, term: null, renewDueAt: 0, validUntil: 0, nextAttemptAt: 0, stopped: false };
      leases.set(workerId, lease);
    }
    return lease;
  };

  const answer = (lease: LocalLease): PrimaryStatus => (lease.leader ? { primary: true, term: lease.term } : FOLLOWER);

  const lose = (docket: Docket, workerId: string, lease: LocalLease, reason: LostReason, holder: string | null) => {
    if (!lease.leader) return;
    if (lease.term === null) throw new Error(`leadership: worker ${workerId} leads with no term.`);
    const payload: LeadershipLost = { workerId, term: lease.term, reason, holder };
    lease.leader = false;
    lease.term = null;
    docket.emit(PLUGIN_NAME, 'leadership.lost', payload);
  };

  async function resolve(docket: Docket, workerId: string): Promise<PrimaryStatus> {
    const lease = local(workerId);
    if (lease.stopped) return FOLLOWER;
    const now = performance.now();
    // Between renewals the answer comes from memory: the lease is ours until `validUntil`, and the
    // renewal is due well before that. A worker that was paused past `renewDueAt` renews (and may
    // learn it lost) before the work that asked (a maintenance tick, a primaryOnly periodic run) runs.
    if (lease.leader ? now < lease.renewDueAt : now < lease.nextAttemptAt) return answer(lease);

    const sent = performance.now();
    let row: LeaseRow;
    try {
      row = await leaseRenew(docket.sql, docket.schema, { holder: workerId, token: lease.token, leaseMs });
    } catch (error) {
      docket.logger.warn(`leadership: renewing the lease failed on worker ${workerId}`, { error });
      if (lease.leader && performance.now() < lease.validUntil) return answer(lease);
      lose(docket, workerId, lease, 'error', null);
      lease.nextAttemptAt = performance.now() + renewIntervalMs;
      return FOLLOWER;
    }
    if (lease.stopped) return FOLLOWER;
    if (row.mine) {
      const gained = !lease.leader || lease.term !== row.term;
      lease.leader = true;
      lease.term = row.term;
      lease.validUntil = sent + leaseMs;
      lease.renewDueAt = sent + renewIntervalMs;
      if (gained) docket.emit(PLUGIN_NAME, 'leadership.gained', { workerId, term: row.term });
      return answer(lease);
    }
    lose(docket, workerId, lease, 'taken', row.holder);
    // Try again when the holder's lease would expire (or after renewIntervalMs if it is released sooner).
    lease.nextAttemptAt = sent + Math.max(0, Math.min(row.remaining_ms + 1, renewIntervalMs));
    return FOLLOWER;
  }

  async function startListening(docket: Docket): Promise<(() => void) | null> {
    try {
      return await docket.listen(RELEASE_TOPIC, () => {
        // A leader let go: followers try at their next tick instead of waiting for the expiry.
        for (const lease of leases.values()) if (!lease.leader) lease.nextAttemptAt = 0;
      });
    } catch {
      return null; // `listen: false`: followers find the released lease within renewIntervalMs.
    }
  }

  return {
    name: PLUGIN_NAME,
    version: VERSION,
    migrations: MIGRATIONS,
    leaseMs,
    renewIntervalMs,

    apply(docket: Docket) {
      binding.bind(docket);

      docket.hooks.resolvePrimary.tapPromise(PLUGIN_NAME, ({ workerId }) => resolve(docket, workerId));

      docket.hooks.workerStarted.tapPromise(PLUGIN_NAME, async (worker: WorkerView) => {
        const lease = local(worker.id);
        lease.stopped = false;
        running++;
        if (worker.maintenanceIntervalMs >= leaseMs) {
          docket.logger.warn(
            `leadership: worker ${worker.id} ticks every ${worker.maintenanceIntervalMs} ms, not more often than the ${leaseMs} ms lease: ` +
              'it cannot renew in time and will lose leadership between ticks. Lower maintenanceIntervalMs or raise leaseMs.',
          );
        }
        listening ??= startListening(docket);
        await listening;
      });

      docket.hooks.workerStopping.tapPromise(PLUGIN_NAME, async (worker: WorkerView) => {
        const lease = local(worker.id);
        lease.stopped = true;
        try {
          const term = await leaseRelease(docket.sql, docket.schema, { token: lease.token });
          if (term !== null) await docket.notify(RELEASE_TOPIC, term).catch(() => undefined);
        } finally {
          lose(docket, worker.id, lease, 'stopped', null);
          leases.delete(worker.id);
          if (--running === 0 && listening) {
            const off = await listening;
            listening = null;
            off?.();
          }
        }
      });
    },

    status(workerId: string): PrimaryStatus {
      const lease = leases.get(workerId);
      return lease ? answer(lease) : FOLLOWER;
    },

    current(): Promise<LeaseRecord | null> {
      const app = binding.app('current');
      return leaseRead(app.sql, app.schema);
    },
  };
}
