import type postgres from 'postgres';
import type { AppInternals, Docket } from '../app.js';
import { InvalidOptionError } from '../errors.js';
import { type ClaimContext, type CoreHooks, tapped, wanted } from '../hooks.js';
import { describe } from '../options.js';
import { type ClaimedRow, type ShapedClaim, toClaimedJob } from '../sql/jobs.js';
import type { ClaimedJob, RunningJob } from '../types.js';

/** What one claim of a queue runner brought back. */
export interface ClaimResult {
  readonly jobs: RunningJob[];
  /** A tap narrowed the claim (lower limit, left-out keys, per-key cap): fewer jobs is not "drained". */
  readonly shaped: boolean;
  /** The earliest time a tap asked to claim again (a rate window opens), or null. */
  readonly retryAt: Date | null;
}

/** Whether any `beforeClaim`/`afterClaim` tap shapes claims of `queue` (else: the plain statement). */
export function isShapedQueue(hooks: Pick<CoreHooks, 'beforeClaim' | 'afterClaim'>, queue: string): boolean {
  const { beforeClaim, afterClaim } = hooks;
  return (tapped(beforeClaim) && wanted(beforeClaim, queue)) || (tapped(afterClaim) && wanted(afterClaim, queue));
}

/**
 * A claim shaped by plugins: one transaction in which `beforeClaim` taps narrow it, the core's
 * claim statement runs as they shaped it, and `afterClaim` taps record what it took.
 */
export async function claimWithHooks(
  app: Docket,
  internals: AppInternals,
  params: { queue: string; limit: number; workerId: string; asyncCommit: boolean; keyCursor: unknown },
): Promise<ClaimResult & { keyCursor: unknown }> {
  const { hooks, jobs } = internals;
  return internals.workerSql().begin(async (tx) => {
    const request = new ClaimRequest(tx, app, params.queue, params.workerId, params.limit, internals.jobColumns);
    if (tapped(hooks.beforeClaim)) await hooks.beforeClaim.promise(request);
    const shape = request.shape();
    let rows: ClaimedRow[] = [];
    if (shape.limit > 0) {
      const fetch: ShapedClaim = {
        queue: params.queue,
        limit: shape.limit,
        workerId: params.workerId,
        asyncCommit: params.asyncCommit,
        exclude: shape.exclude,
        perKey: shape.perKey ? { ...shape.perKey, after: params.keyCursor } : null,
      };
      rows = await jobs.claimShaped(tx, fetch);
    }
    const claimed: ClaimedJob[] = rows.map((row) => ({
      job: toClaimedJob(row, params.queue, params.workerId),
      columns: pluginColumns(row, internals.jobColumns),
    }));
    if (claimed.length > 0 && tapped(hooks.afterClaim)) await hooks.afterClaim.promise(claimed, request);
    const { perKey } = shape;
    const keyCursor = perKey
      ? nextCursor(
          params.keyCursor,
          claimed.map((c) => c.columns[perKey.column]),
        )
      : params.keyCursor;
    return {
      jobs: claimed.map((c) => c.job),
      shaped: shape.limit < params.limit || shape.exclude.length > 0 || shape.perKey !== null,
      retryAt: shape.retryAt,
      keyCursor,
    };
  });
}

class ClaimRequest implements ClaimContext {
  #limit: number;
  readonly #exclude = new Map<string, unknown[]>();
  #perKey: { column: string; max: number } | null = null;
  /** Remaining budgets per key of the per-key column (keyed by the value as the statement sends it). */
  readonly #budgets = new Map<unknown, { value: unknown; remaining: number }>();
  #retryAt: Date | null = null;

  constructor(
    readonly sql: postgres.TransactionSql,
    readonly app: Docket,
    readonly queue: string,
    readonly workerId: string,
    limit: number,
    private readonly columns: ReadonlyArray<{ name: string }>,
  ) {
    this.#limit = limit;
  }

  get limit(): number {
    return this.#limit;
  }

  limitTo(limit: number): void {
    if (typeof limit !== 'number' || Number.isNaN(limit))
      throw new InvalidOptionError(`claim.limitTo(limit): limit must be a number, got ${describe(limit)}.`);
    this.#limit = Math.max(0, Math.min(this.#limit, Math.floor(limit)));
  }

  exclude(column: string, values: readonly unknown[]): void {
    this.#assertColumn('exclude', column);
    if (!Array.isArray(values)) throw new InvalidOptionError(`claim.exclude('${column}', values): values must be an array, got ${describe(values)}.`);
    // NULL is never left out; kept in the list, it would make `<> ALL(…)` unknown and leave out every job.
    const kept = values.filter((v) => v !== null && v !== undefined);
    if (kept.length === 0) return;
    const list = this.#exclude.get(column);
    if (list) list.push(...kept);
    else this.#exclude.set(column, kept);
  }

  perKey(column: string, max: number, budgets?: Iterable<readonly [unknown, number]>): void {
    this.#assertColumn('perKey', column);
    if (!Number.isInteger(max) || max < 1)
      throw new InvalidOptionError(`claim.perKey('${column}', max): max must be a positive integer, got ${describe(max)}.`);
    if (this.#perKey && this.#perKey.column !== column) {
      throw new InvalidOptionError(`claim.perKey: this claim is already capped per '${this.#perKey.column}'; one claim caps one column.`);
    }
    // Validate every entry before recording any, so a bad budget leaves the claim as it was.
    const entries: Array<readonly [unknown, number]> = [];
    if (budgets !== undefined) {
      if (budgets === null || typeof (budgets as Iterable<unknown>)[Symbol.iterator] !== 'function')
        throw new InvalidOptionError(
          `claim.perKey('${column}', max, budgets): budgets must be an iterable of [value, remaining] pairs (a Map), got ${describe(budgets)}.`,
        );
      for (const entry of budgets) {
        const [value, remaining] = Array.isArray(entry) ? entry : [];
        if (
          !Array.isArray(entry) ||
          entry.length !== 2 ||
          value === null ||
          value === undefined ||
          !Number.isInteger(remaining) ||
          (remaining as number) < 0
        ) {
          throw new InvalidOptionError(
            `claim.perKey('${column}', max, budgets): each budget must be a [value, remaining] pair with a non-null value and an integer remaining >= 0, got ${describe(entry)}.`,
          );
        }
        entries.push([value, remaining as number]);
      }
    }
    this.#perKey = { column, max: Math.min(max, this.#perKey?.max ?? max) };
    for (const [value, remaining] of entries) {
      const id = budgetId(value);
      const known = this.#budgets.get(id);
      if (known === undefined || remaining < known.remaining) this.#budgets.set(id, { value, remaining });
    }
  }

  retryAt(at: Date): void {
    if (!(at instanceof Date) || Number.isNaN(at.getTime()))
      throw new InvalidOptionError(`claim.retryAt(at): at must be a valid Date, got ${describe(at)}.`);
    if (this.#retryAt === null || at < this.#retryAt) this.#retryAt = at;
  }

  shape() {
    const exclude = new Map([...this.#exclude].map(([column, values]) => [column, [...values]]));
    let budgets: Array<{ value: unknown; remaining: number }> = [];
    if (this.#perKey) {
      const { column, max } = this.#perKey;
      // A key with nothing left is left out of the claim (it takes no lane); the others take at
      // most their budget, never more than `max`.
      const spent = [...this.#budgets.values()].filter((b) => b.remaining === 0).map((b) => b.value);
      if (spent.length > 0) exclude.set(column, [...(exclude.get(column) ?? []), ...spent]);
      budgets = [...this.#budgets.values()].filter((b) => b.remaining > 0 && b.remaining < max);
    }
    return {
      limit: this.#limit,
      exclude: [...exclude].map(([column, values]) => ({ column, values })),
      perKey: this.#perKey ? { ...this.#perKey, budgets } : null,
      retryAt: this.#retryAt,
    };
  }

  #assertColumn(method: string, column: string): void {
    if (!this.columns.some((c) => c.name === column)) {
      throw new InvalidOptionError(
        `claim.${method}('${column}', …): '${column}' is not a job column a plugin declared. Declare it with app.defineJobColumn() in the plugin's apply().`,
      );
    }
  }
}

/** One identity per key value for merging budgets: a Date and its ISO text are the same key, as in the statement. */
function budgetId(value: unknown): unknown {
  return value instanceof Date ? value.toISOString() : value;
}

function pluginColumns(row: ClaimedRow, columns: ReadonlyArray<{ name: string }>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { name } of columns) out[name] = row[name] ?? null;
  return out;
}

/**
 * Where the next per-key claim starts: after the greatest key this claim took past the previous
 * cursor, or, when it wrapped around, after the greatest key it took before the cursor.
 */
function nextCursor(previous: unknown, keys: readonly unknown[]): unknown {
  // A key is a plugin column's value (text, a number, a Date, …), compared with `>` as JavaScript does.
  let after: NonNullable<unknown> | null = null;
  let wrapped: NonNullable<unknown> | null = null;
  for (const key of keys) {
    if (key === null || key === undefined) continue;
    if (previous === null || previous === undefined || key > previous) {
      if (after === null || key > after) after = key;
    } else if (wrapped === null || key > wrapped) {
      wrapped = key;
    }
  }
  return wrapped ?? after ?? previous ?? null;
}
