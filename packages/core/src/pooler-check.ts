import type postgres from 'postgres';
import { PoolerIncompatibleError } from './errors.js';

/**
 * Named prepared statements behind a pooler. A transaction-mode pooler (PgBouncer) hands each
 * transaction whichever server connection is free, and a statement prepared on one is missing on
 * the next. postgres.js prepares a missing statement again, but not inside a transaction: there the
 * first error aborts it, and a COMMIT that met a missing statement comes back as a rollback the
 * driver does not report — a push returned the id of a job that was never stored. So an app whose
 * statements are prepared checks, once, that it talks to PostgreSQL itself: a pooler answers the
 * connection's startup with a backend key of its own, which is not the pid of the server session
 * that runs the statements. Behind one, every call fails with DOCKET_POOLER_INCOMPATIBLE, saying to
 * set `prepare: false`. (A session-mode pooler would keep the statements, but cannot be told from
 * a transaction-mode one this way; `prepare: false` costs it little.)
 */
export class PoolerCheck {
  #checked: Promise<void> | null = null;
  #error: PoolerIncompatibleError | null = null;

  constructor(
    private readonly sql: postgres.Sql,
    /** Whether any statement Docket sends is prepared: its own (`prepare`) or the pool's internal ones (BEGIN, COMMIT). */
    private readonly prepared: boolean,
  ) {}

  /** The check's verdict once it found a pooler; null before, or when there is none. */
  get error(): PoolerIncompatibleError | null {
    return this.#error;
  }

  /**
   * Runs the check once and resolves when it is done. A check that could not run (the server is
   * unreachable) is tried again by the next call; the call's own statement reports the outage.
   */
  run(): Promise<void> {
    if (!this.prepared) return Promise.resolve();
    this.#checked ??= this.check().catch((error: unknown) => {
      if (error instanceof PoolerIncompatibleError) throw error;
      this.#checked = null;
    });
    return this.#checked;
  }

  private async check(): Promise<void> {
    const rows = await this.sql.unsafe<Array<{ pid: number }>>('SELECT pg_backend_pid() AS pid');
    const keyPid = (rows as unknown as { state?: { pid?: number } }).state?.pid;
    const serverPid = rows[0]?.pid;
    if (keyPid === undefined || serverPid === undefined || keyPid === serverPid) return;
    this.#error = new PoolerIncompatibleError(
      "Docket's connection goes through a connection pooler (PgBouncer?): the server session that runs its statements is not the one the connection was opened with. " +
        'In transaction mode a pooler loses named prepared statements between transactions, and a transaction whose COMMIT meets a lost one is rolled back without an error. ' +
        'Set `prepare: false` on the app (and on your own postgres.js pool, if you pass one); use `listen: { connection: <a URL straight to PostgreSQL> }` or `listen: false` too.',
      { details: { feature: 'prepared-statements', backendKeyPid: keyPid, serverPid } },
    );
    throw this.#error;
  }
}

/**
 * Makes the named async methods of `proto` wait for the pooler check (started by their first
 * call) and fail with its error: from the moment it is known, before they send anything; calls
 * already under way when it is found fail too, whatever their own statements did.
 */
export function checkPoolerBefore(proto: object, methods: readonly string[], checkOf: (self: object) => PoolerCheck): void {
  const target = proto as Record<string, unknown>;
  for (const name of methods) {
    const original = target[name] as (...args: unknown[]) => unknown;
    if (typeof original !== 'function') throw new Error(`checkPoolerBefore: no method ${name}`);
    target[name] = function (this: object, ...args: unknown[]) {
      const check = checkOf(this);
      if (check.error) return Promise.reject(check.error);
      const checked = check.run();
      const result = original.apply(this, args);
      if (result instanceof Promise) return Promise.all([checked, result]).then(([, value]) => value);
      checked.catch(() => {}); // the next call reports it
      return result;
    };
  }
}
