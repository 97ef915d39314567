import type postgres from 'postgres';

/** The migrations ledger: which (owner, version) pairs a schema has applied. */
export class LedgerSql {
  constructor(private readonly schema: string) {}

  bootstrap(sql: postgres.TransactionSql) {
    return sql.unsafe(`
      CREATE SCHEMA IF NOT EXISTS ${this.schema};
      CREATE TABLE IF NOT EXISTS ${this.schema}.migrations (
        owner       text NOT NULL,
        version     integer NOT NULL,
        name        text NOT NULL,
        applied_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (owner, version)
      );`);
  }

  /** Serialises migrate() across processes for this schema until the transaction ends. */
  lock(sql: postgres.TransactionSql) {
    return sql.unsafe(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`docket.migrate:${this.schema}`]);
  }

  async applied(sql: postgres.Sql | postgres.TransactionSql): Promise<Array<{ owner: string; version: number }>> {
    const [exists] = await sql.unsafe(`SELECT to_regclass($1) IS NOT NULL AS ok`, [`${this.schema}.migrations`]);
    if (!exists?.ok) return [];
    return sql.unsafe(`SELECT owner, version FROM ${this.schema}.migrations`) as never;
  }

  record(sql: postgres.TransactionSql, params: { owner: string; version: number; name: string }) {
    return sql.unsafe(`INSERT INTO ${this.schema}.migrations (owner, version, name) VALUES ($1, $2, $3)`, [
      params.owner,
      params.version,
      params.name,
    ]);
  }
}
