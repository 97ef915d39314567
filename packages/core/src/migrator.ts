import type postgres from 'postgres';
import { MigrationFailedError, SchemaTooNewError } from './errors.js';
import type { Migration } from './plugin.js';
import { LedgerSql } from './sql/ledger.js';

export interface MigrationSet {
  readonly owner: string;
  readonly migrations: readonly Migration[];
}

/** A migration the database does not have yet, as `app.pendingMigrations()` lists it. */
export interface PendingMigration {
  owner: string;
  version: number;
  name: string;
}

/**
 * Applies migrations of the core and of each plugin, in one transaction under an advisory lock
 * (so concurrent migrate() calls from many processes apply each migration exactly once), and
 * records each in the ledger keyed by (owner, version).
 */
export class Migrator {
  private readonly ledger: LedgerSql;

  constructor(
    private readonly schema: string,
    private readonly sets: readonly MigrationSet[],
  ) {
    this.ledger = new LedgerSql(schema);
  }

  private plan(applied: ReadonlyArray<{ owner: string; version: number }>): PendingMigration[] {
    const pending: PendingMigration[] = [];
    for (const { owner, migrations } of this.sets) {
      const done = new Set(applied.filter((a) => a.owner === owner).map((a) => a.version));
      const known = Math.max(0, ...migrations.map((m) => m.version));
      const newest = Math.max(0, ...done);
      if (newest > known) {
        throw new SchemaTooNewError(
          `Schema ${this.schema} has migration ${owner}@${newest}, newer than this code knows (${owner}@${known}). Upgrade the code (or the plugin '${owner}') before running it against this database.`,
          { details: { owner, database: newest, code: known } },
        );
      }
      for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
        if (!done.has(m.version)) pending.push({ owner, version: m.version, name: m.name });
      }
    }
    return pending;
  }

  async pending(sql: postgres.Sql): Promise<PendingMigration[]> {
    return this.plan(await this.ledger.applied(sql));
  }

  async migrate(sql: postgres.Sql): Promise<PendingMigration[]> {
    return sql.begin(async (tx) => {
      // A migration may build an index on a large table or wait here for another process's
      // migration: an app's statementTimeoutMs is for queue statements, not for these.
      await tx.unsafe('SET LOCAL statement_timeout = 0');
      await this.ledger.lock(tx);
      await this.ledger.bootstrap(tx);
      const todo = this.plan(await this.ledger.applied(tx));
      for (const step of todo) {
        const migration = this.sets.find((s) => s.owner === step.owner)?.migrations.find((m) => m.version === step.version);
        // plan() takes its steps from these sets, so every step has its migration.
        if (!migration) throw new Error(`Docket migrator: planned migration ${step.owner}@${step.version} is not among the registered ones.`);
        try {
          await tx.unsafe(migration.up({ schema: this.schema }));
        } catch (error) {
          throw new MigrationFailedError(
            `Migration ${step.owner}@${step.version} (${step.name}) failed: ${(error as Error).message}. Nothing was applied.`,
            { cause: error, details: { ...step } },
          );
        }
        await this.ledger.record(tx, { owner: step.owner, version: step.version, name: step.name });
      }
      return todo;
    }) as Promise<PendingMigration[]>;
  }
}
